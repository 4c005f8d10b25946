//! The int8/int4 grid conventions (compressed-tensors compatible).

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use half::f16;
use pareto_formats::{QTensor, lookup};

fn int_parts(id: &str, w: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f16>, Option<Vec<i8>>, usize) {
    match lookup(id).unwrap().quantize(w, rows, cols).unwrap() {
        QTensor::Int { codes, scales, zeros, group, .. } => (codes, scales, zeros, group),
        other => panic!("{other:?}"),
    }
}

#[test]
fn int4_sym_follows_compressed_tensors() {
    let w = common::gaussian(4, 256, 11);
    for (id, g) in [("int4_g32_sym", 32), ("int4_g64_sym", 64), ("int4_g128_sym", 128)] {
        let (codes, scales, zeros, group) = int_parts(id, &w, 4, 256);
        assert_eq!((group, zeros), (g, None));
        assert_eq!(scales.len(), 4 * 256 / g);
        for (gi, xs) in w.chunks(g).enumerate() {
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let s = f16::from_f32(amax / 7.5);
            assert_eq!(scales[gi], s);
            for (j, &x) in xs.iter().enumerate() {
                let want = (x / s.to_f32()).round_ties_even().clamp(-8.0, 7.0) as i8;
                assert_eq!(codes[gi * g + j], want);
            }
        }
        assert!(codes.iter().all(|c| (-8..=7).contains(c)));
    }
}

#[test]
fn int4_asym_follows_compressed_tensors() {
    let mut w = common::gaussian(2, 128, 12);
    for v in &mut w[..64] {
        *v = v.abs() + 0.5; // all-positive groups: min widened to 0
    }
    let (codes, scales, zeros, _) = int_parts("int4_g32_asym", &w, 2, 128);
    let zeros = zeros.expect("asym has zero points");
    for (gi, xs) in w.chunks(32).enumerate() {
        let mn = xs.iter().fold(0.0f32, |m, &v| m.min(v));
        let mx = xs.iter().fold(0.0f32, |m, &v| m.max(v));
        let s = f16::from_f32((mx - mn) / 15.0);
        assert_eq!(scales[gi], s);
        let z = (-8.0 - mn / s.to_f32()).clamp(-8.0, 7.0).round_ties_even();
        assert_eq!(zeros[gi], z as i8);
        for (j, &x) in xs.iter().enumerate() {
            let want = (x / s.to_f32() + z).round_ties_even().clamp(-8.0, 7.0) as i8;
            assert_eq!(codes[gi * 32 + j], want);
        }
    }
    assert_eq!(&zeros[..2], &[-8, -8]);
}

#[test]
fn int8_channel_uses_rounded_f16_scale() {
    let w = common::gaussian(3, 1000, 13);
    let (codes, scales, _, group) = int_parts("int8_channel", &w, 3, 1000);
    assert_eq!((group, scales.len()), (1000, 3));
    let d = lookup("int8_channel")
        .unwrap()
        .dequantize(&lookup("int8_channel").unwrap().quantize(&w, 3, 1000).unwrap())
        .unwrap();
    for r in 0..3 {
        let amax = w[r * 1000..(r + 1) * 1000].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_eq!(scales[r], f16::from_f32(amax / 127.0));
        for j in 0..1000 {
            let c = codes[r * 1000 + j];
            assert!((-127..=127).contains(&c));
            assert_eq!(d[r * 1000 + j], f32::from(c) * scales[r].to_f32());
        }
    }
}
