import { useApi } from "../context";
import type { PickOptions } from "../api/api";

/** A typed path plus a Browse button for the native dialog (WebDriver tests type; people may browse). */
export function PathField(props: {
  id: string;
  label: string;
  value: string;
  onInput: (v: string) => void;
  pick: PickOptions;
  placeholder?: string;
  onEnter?: () => void;
  onError: (e: unknown) => void;
}) {
  const api = useApi();
  const browse = async () => {
    try {
      const p = await api.pickPath(props.pick);
      if (p) props.onInput(p);
    } catch (e) {
      props.onError(e);
    }
  };
  return (
    <label class="path-field">
      <span>{props.label}</span>
      <input
        id={props.id}
        type="text"
        spellcheck={false}
        value={props.value}
        placeholder={props.placeholder}
        onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && props.onEnter) props.onEnter();
        }}
      />
      <button type="button" onClick={browse}>
        Browse…
      </button>
    </label>
  );
}
