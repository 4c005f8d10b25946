import { describe, expect, it } from "vitest";
import type { QuantityView } from "../api/types";
import { explain, rangeText } from "./charts";

const q = (over: Partial<QuantityView>): QuantityView => ({
  value: 2884,
  unit: "tok/s",
  formula: "1 / step",
  sources: ["catalog"],
  estimate: true,
  range: null,
  ...over,
});

describe("the range a projected number carries", () => {
  it("is shown in the number's unit, bytes in binary units", () => {
    expect(rangeText(q({ range: [1074.5, 4578.3] }))).toBe("1,100–4,600 tok/s");
    expect(rangeText(q({ unit: "B", value: 2 ** 30, range: [2 ** 29, 2 ** 31] }))).toBe("512 MiB–2.00 GiB");
    expect(rangeText(q({}))).toBe("");
    // Ends that two digits would print alike get the digits that tell them apart.
    expect(rangeText(q({ unit: "ms", value: 50.03, range: [50.31, 51.34] }))).toBe("50–51 ms");
    expect(rangeText(q({ unit: "ms", value: 50.03, range: [50.01, 50.34] }))).toBe("50–50.3 ms");
    expect(rangeText(q({ unit: "ms", value: 0.032, range: [0.0218, 0.0931] }))).toBe("0.022–0.093 ms");
  });

  it("is said in the hover text before the formula, and only when there is one", () => {
    const text = explain(q({ range: [1074.5, 4578.3] }));
    expect(text.indexOf("80 % range 1,100 tok/s to 4,600 tok/s")).toBeGreaterThan(0);
    expect(text.indexOf("80 % range")).toBeLessThan(text.indexOf("= 1 / step"));
    expect(explain(q({}))).not.toContain("range");
  });
});
