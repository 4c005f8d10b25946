import { render } from "preact";
import { describe, expect, it } from "vitest";
import { Marked, PROVENANCE_TEXT, ProvenanceKey } from "./Provenance";

describe("Provenance marks", () => {
  it("mark the number without changing its text, and explain it first in the hover text", () => {
    const root = document.createElement("div");
    render(
      <div>
        <Marked kind="projected" detail={"= weights / bandwidth"} id="a">
          1,234
        </Marked>
        <Marked kind="proxy">0.01</Marked>
        <ProvenanceKey kinds={["projected", "proxy"]} />
      </div>,
      root,
    );
    const a = root.querySelector<HTMLElement>("#a")!;
    expect(a.textContent).toBe("1,234");
    expect(a.className).toBe("q projected");
    expect(a.getAttribute("title")).toBe(`${PROVENANCE_TEXT.projected}\n= weights / bandwidth`);
    const proxy = root.querySelector<HTMLElement>("[data-provenance=proxy]")!;
    expect(proxy.getAttribute("title")).toBe(PROVENANCE_TEXT.proxy);
    expect(root.querySelector(".provenance-key")?.textContent).toBe("projected — not measured yetproxy — weight error, not accuracy");
  });
});
