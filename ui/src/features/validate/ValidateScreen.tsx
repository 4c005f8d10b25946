import { useSession } from "../../context";

/**
 * Validation (perplexity / STS / KL vs the original, measured speed) comes from the pareto-eval crate,
 * which this build of the app does not link yet. The screen says so instead of showing numbers.
 */
export function ValidateScreen() {
  const s = useSession();
  return (
    <section class="screen" id="screen-validate">
      <h2>Validate</h2>
      <div class="notice" id="validate-unavailable">
        <strong>Not built yet.</strong> Measured validation (perplexity, KL divergence and top-1 agreement for decoders, STS Spearman for encoders, and measured speed of
        original vs compressed) is not wired into this build of the studio. Until it is, use the CLI: <code>pareto eval &lt;model&gt; --compressed &lt;output&gt;</code>.
      </div>
      {s.runs.length > 0 && (
        <p class="muted">
          The Run screen shows the weight-space error of each tensor (relative error, SNR, cosine), which is a proxy for accuracy, not a measurement of it.
        </p>
      )}
    </section>
  );
}
