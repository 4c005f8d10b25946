import { ApiFailure, toFailure } from "../api/api";

/** A readable error: the message and each cause on its own line. */
export function ErrorBox({ error, onClose }: { error: unknown; onClose?: () => void }) {
  if (!error) return null;
  const f: ApiFailure = toFailure(error);
  return (
    <div class="error" role="alert" data-testid="error">
      <strong>{f.message}</strong>
      {f.causes.length > 0 && (
        <ul>
          {f.causes.map((c, i) => (
            <li key={i}>caused by: {c}</li>
          ))}
        </ul>
      )}
      {onClose && (
        <button class="link" onClick={onClose} aria-label="dismiss">
          dismiss
        </button>
      )}
    </div>
  );
}
