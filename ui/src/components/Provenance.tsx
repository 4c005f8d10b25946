// How a number on screen was obtained. Measured numbers carry no mark; a projection (a model of the
// hardware and the traffic) and a proxy (weight error standing in for accuracy) say so on the number
// itself — a superscript drawn by CSS, so the number's text stays the number — and in its hover text.
import type { ComponentChildren } from "preact";

export type Provenance = "projected" | "proxy";

export const PROVENANCE_TEXT: Record<Provenance, string> = {
  projected: "projected, not measured yet: computed from the hardware catalog and the traffic scenario (Validate's speed run or `pareto eval --speed` measures it)",
  proxy: "proxy, not a measured accuracy: the weights' error after compression (Validate measures accuracy on samples)",
};

/** A number marked with how it was obtained; `detail` (a formula, sources) follows the mark's text. */
export function Marked({ kind, detail, id, children }: { kind: Provenance; detail?: string; id?: string; children: ComponentChildren }) {
  return (
    <span class={`q ${kind}`} data-provenance={kind} title={detail ? `${PROVENANCE_TEXT[kind]}\n${detail}` : PROVENANCE_TEXT[kind]} id={id}>
      {children}
    </span>
  );
}

/** The key to the marks, under a view that shows them. */
export function ProvenanceKey({ kinds }: { kinds: Provenance[] }) {
  return (
    <p class="small muted provenance-key">
      {kinds.map((k) => (
        <span key={k} class={`q ${k}`} data-provenance={k} title={PROVENANCE_TEXT[k]}>
          {k === "projected" ? "projected — not measured yet" : "proxy — weight error, not accuracy"}
        </span>
      ))}
    </p>
  );
}
