import { describe, expect, it } from "vitest";
import { bytes, count, duration, fixed, num, pct, signedPct, whole } from "./format";

describe("formatters on edge values", () => {
  it("never print NaN or Infinity", () => {
    for (const f of [bytes, count, (v: number) => num(v), (v: number) => pct(v), (v: number) => signedPct(v), whole, duration, (v: number) => fixed(v, 2)]) {
      expect(f(Number.NaN)).toBe("–");
      expect(f(Number.POSITIVE_INFINITY)).toBe("–");
    }
  });
  it("zero", () => {
    expect(bytes(0)).toBe("0 B");
    expect(num(0)).toBe("0");
    expect(pct(0)).toBe("0.0%");
    expect(signedPct(0)).toBe("0.00%");
    expect(signedPct(-1e-7)).toBe("0.00%");
    expect(whole(0)).toBe("0");
    expect(duration(0)).toBe("0 ms");
  });
  it("tiny values keep their magnitude", () => {
    expect(num(1e-9)).toBe("1.00e-9");
    expect(num(9.37e-5)).toBe("9.37e-5");
    expect(signedPct(0.004)).toBe("+0.40%");
    expect(signedPct(-0.0125)).toBe("-1.25%");
  });
  it("huge values get units or exponents, not spurious digits", () => {
    expect(num(1e12)).toBe("1.00e+12");
    expect(num(3326.906, 1)).toBe("3,326.9");
    expect(bytes(1e12)).toBe("931 GiB");
    expect(count(1e12)).toBe("1000.00 B");
    expect(whole(1e12)).toBe("1,000,000,000,000");
    expect(duration(7500)).toBe("2 h 05 min");
    expect(duration(4.213)).toBe("4.21 s");
    expect(duration(37.52)).toBe("37.5 s");
  });
});
