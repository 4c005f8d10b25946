//! Unit checks of the fp8 E4M3 and NF4 primitives.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use pareto_formats::fp8::{E4M3_MAX, e4m3_from_f32, e4m3_to_f32};
use pareto_formats::nf4::NF4_LUT;
use pareto_formats::{QTensor, lookup};

#[test]
fn e4m3_all_256_codes_round_trip() {
    for c in 0..=255u8 {
        let v = e4m3_to_f32(c);
        if c & 0x7f == 0x7f {
            assert!(v.is_nan(), "{c:#04x}");
            assert_eq!(e4m3_from_f32(v), c, "NaN keeps its sign");
        } else {
            assert!(v.is_finite());
            assert_eq!(e4m3_from_f32(v), c, "{c:#04x} -> {v}");
        }
    }
}

#[test]
fn e4m3_known_values() {
    assert_eq!(e4m3_to_f32(0x7e), 448.0);
    assert_eq!(e4m3_to_f32(0x08), 2f32.powi(-6)); // smallest normal
    assert_eq!(e4m3_to_f32(0x01), 2f32.powi(-9)); // smallest subnormal
    assert_eq!(e4m3_to_f32(0x38), 1.0);
    assert_eq!(e4m3_to_f32(0xb8), -1.0);
    assert_eq!(e4m3_to_f32(0x80).to_bits(), (-0.0f32).to_bits());
    // Saturation instead of inf/NaN for finite overflow.
    assert_eq!(e4m3_from_f32(1e9), 0x7e);
    assert_eq!(e4m3_from_f32(-f32::INFINITY), 0xfe);
    assert_eq!(e4m3_from_f32(E4M3_MAX * 1.03), 0x7e);
}

#[test]
fn e4m3_rounds_to_nearest_even_everywhere() {
    // Between every pair of adjacent positive codes: the midpoint goes to the
    // even code, a hair either side goes to the nearer one.
    for c in 0..0x7eu8 {
        let (lo, hi) = (e4m3_to_f32(c), e4m3_to_f32(c + 1));
        let mid = (lo + hi) / 2.0; // exact in f32
        let even = if c % 2 == 0 { c } else { c + 1 };
        assert_eq!(e4m3_from_f32(mid), even, "mid of {c:#04x}");
        assert_eq!(e4m3_from_f32(-mid), even | 0x80);
        assert_eq!(e4m3_from_f32(f32::from_bits(mid.to_bits() - 1)), c);
        assert_eq!(e4m3_from_f32(f32::from_bits(mid.to_bits() + 1)), c + 1);
    }
    // Below half the smallest subnormal: zero (sign kept).
    assert_eq!(e4m3_from_f32(2f32.powi(-11)), 0x00);
    assert_eq!(e4m3_from_f32(-2f32.powi(-11)), 0x80);
    assert_eq!(e4m3_from_f32(f32::from_bits(1)), 0x00);
}

#[test]
fn e4m3_encode_is_nearest_by_brute_force() {
    let table: Vec<f32> = (0..0x7fu8).map(e4m3_to_f32).collect();
    let mut x = 1e-4f32;
    while x < 448.0 {
        let c = e4m3_from_f32(x);
        let best = (e4m3_to_f32(c) - x).abs();
        assert!(table.iter().all(|&t| (t - x).abs() >= best), "{x}");
        x *= 1.0009;
    }
}

#[test]
fn fp8_scales_and_layout() {
    let w: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) / 10.0).collect();
    let f = lookup("fp8_e4m3").unwrap();
    let QTensor::Fp8E4m3 { codes, scales, .. } = f.quantize(&w, 2, 128).unwrap() else { panic!() };
    assert_eq!(scales, vec![12.8 / 448.0, 12.7 / 448.0]);
    assert_eq!(codes.len(), 256);
    assert_eq!(codes[0], 0xfe); // -amax -> -448
    let t = lookup("fp8_e4m3_tensor").unwrap();
    let QTensor::Fp8E4m3 { scales, .. } = t.quantize(&w, 2, 128).unwrap() else { panic!() };
    assert_eq!(scales, vec![12.8 / 448.0]);
}

#[test]
fn nf4_lut_is_bitsandbytes_and_codes_are_nearest() {
    assert_eq!(NF4_LUT[0], -1.0);
    assert_eq!(NF4_LUT[7], 0.0);
    assert_eq!(NF4_LUT[15], 1.0);
    assert!(NF4_LUT.windows(2).all(|p| p[0] < p[1]));
    let f = lookup("nf4").unwrap();
    // One block whose absmax is 1: codes are the nearest LUT entries.
    let mut w: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 32.0).collect();
    w[0] = -1.0;
    let QTensor::Nf4 { codes, absmax, .. } = f.quantize(&w, 1, 64).unwrap() else { panic!() };
    assert_eq!(absmax, vec![1.0]);
    for (&c, &x) in codes.iter().zip(&w) {
        let d = (NF4_LUT[c as usize] - x).abs();
        assert!(NF4_LUT.iter().all(|&l| (l - x).abs() >= d - 1e-7), "{x}");
    }
}
