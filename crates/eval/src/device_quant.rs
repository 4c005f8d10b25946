//! Quantization on a candle device (a GPU, or the CPU for tests).
//!
//! The codecs whose arithmetic is elementwise given a per-group scale ([`GroupArith`]: the integer
//! grids, FP8 E4M3, ggml Q8_0, Q4_0 and Q5_0) are rebuilt here from candle tensor operations, one IEEE operation
//! for each of the reference codec's, in the same order, so the codes are identical: divisions stay
//! divisions (never a multiply by a reciprocal), `rint` is the 1.5·2^23 add/subtract, `round` is
//! C's `roundf` on both backends, f16 rounding is to nearest even. The reductions are maxima and
//! minima, which do not depend on the order; Q4_0/Q5_0's "first weight of largest magnitude" is an
//! index minimum over the positions that reach it. Only the last step of FP8 (the E4M3 bit pattern)
//! and the byte layout of ggml blocks run on the host. Tests compare every byte with the CPU codecs.

use candle_core::{D, DType, Device, Tensor};
use half::f16;
use pareto_core::accel::{AccelError, Accelerator};
use pareto_formats::fp8::e4m3_from_f32;
use pareto_formats::{Format, GroupArith, QTensor};
use rayon::prelude::*;

use crate::device::DeviceSpec;
use crate::error::Result;

/// The codecs' `rint` (round half to even by adding and subtracting 1.5·2^23).
const RINT_MAGIC: f64 = pareto_formats::RINT_MAGIC as f64;

/// Runs the codecs it can on one candle device.
pub struct DeviceQuantizer {
    device: Device,
    name: String,
}

impl DeviceQuantizer {
    /// Opens `spec` (a clear error when the backend is not compiled in or the device is absent).
    pub fn open(spec: DeviceSpec) -> Result<Self> {
        Ok(Self { device: spec.open()?, name: spec.to_string() })
    }

    /// The accelerator a compress job on `spec` uses: `None` for the CPU, whose reference codecs are
    /// also its fastest path; a clear error when the device is not compiled in or absent.
    pub fn for_device(spec: DeviceSpec) -> Result<Option<std::sync::Arc<dyn Accelerator>>> {
        if spec == DeviceSpec::Cpu {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(Self::open(spec)?)))
    }

    /// The same path on an already open device (the CPU in tests).
    pub fn on(device: Device, name: impl Into<String>) -> Self {
        Self { device, name: name.into() }
    }

    /// `Ok(None)` when the reference codec must decide (shapes it handles differently, or a scale
    /// that overflows, which it reports as an error).
    fn run(
        &self,
        arith: GroupArith,
        fmt: &Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> candle_core::Result<Option<QTensor>> {
        match arith {
            GroupArith::IntGrid { bits, group, symmetric, qmin, qmax, denom } => {
                let g = if group == 0 { cols } else { group };
                if g == 0 || !cols.is_multiple_of(g) {
                    return Ok(None);
                }
                self.int_grid(w, rows, cols, g, bits, symmetric, qmin, qmax, denom)
            }
            GroupArith::Fp8E4m3 { per_tensor, max } => self.fp8(w, rows, cols, per_tensor, max).map(Some),
            GroupArith::Q8_0 => match fmt.ggml_type {
                Some(t) if cols.is_multiple_of(32) => self.q8_0(w, rows, cols, t),
                _ => Ok(None),
            },
            GroupArith::SignedMax { levels, qmax } => match fmt.ggml_type {
                Some(t) if cols.is_multiple_of(32) => self.signed_max(w, rows, cols, t, levels, qmax),
                _ => Ok(None),
            },
        }
    }

    fn scalar(&self, v: f64) -> candle_core::Result<Tensor> {
        Tensor::new(v as f32, &self.device)
    }

    /// The ggml block scales on the host and `id = d != 0 ? 1 / d : 0` on the device; `None` when
    /// a subnormal `d` makes `1 / d` overflow, a case the reference codec reproduces with C's
    /// conversions of the non-finite products.
    fn inverse_scales(d: &Tensor) -> candle_core::Result<Option<(Vec<f32>, Tensor)>> {
        let ds: Vec<f32> = d.flatten_all()?.to_vec1()?;
        if ds.iter().any(|&v| v != 0.0 && !(1.0 / v).is_finite()) {
            return Ok(None);
        }
        let id = d.ne(0.0)?.where_cond(&d.recip()?, &d.zeros_like()?)?;
        Ok(Some((ds, id)))
    }

    /// Signed integers in [-128, 127] (integral f32) to host i8, moved as u8 to keep the copy small.
    fn to_i8(t: &Tensor) -> candle_core::Result<Vec<i8>> {
        let u = t.affine(1.0, 128.0)?.to_dtype(DType::U8)?.flatten_all()?.to_vec1::<u8>()?;
        Ok(u.into_iter().map(|b| (b ^ 0x80) as i8).collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn int_grid(
        &self,
        w: &[f32],
        rows: usize,
        cols: usize,
        g: usize,
        bits: u8,
        symmetric: bool,
        qmin: f32,
        qmax: f32,
        denom: f32,
    ) -> candle_core::Result<Option<QTensor>> {
        let x = Tensor::from_slice(w, (rows, cols / g, g), &self.device)?;
        let (denom, eps) = (self.scalar(f64::from(denom))?, self.scalar(f64::from(f32::EPSILON))?);
        let (raw_scale, low) = if symmetric {
            (x.abs()?.max_keepdim(D::Minus1)?.broadcast_div(&denom)?, None)
        } else {
            let zero = self.scalar(0.0)?;
            let lo = x.min_keepdim(D::Minus1)?.broadcast_minimum(&zero)?;
            let hi = x.max_keepdim(D::Minus1)?.broadcast_maximum(&zero)?;
            ((hi - &lo)?.broadcast_div(&denom)?, Some(lo))
        };
        let s16 = raw_scale.broadcast_maximum(&eps)?.to_dtype(DType::F16)?;
        let scales: Vec<f16> = s16.flatten_all()?.to_vec1()?;
        if scales.iter().any(|s| !s.is_finite()) {
            return Ok(None);
        }
        let s = s16.to_dtype(DType::F32)?;
        let rint = |t: Tensor| t.affine(1.0, RINT_MAGIC)?.affine(1.0, -RINT_MAGIC);
        let qmin64 = f64::from(qmin);
        let zero = match low {
            // qmin - min / s, clamped, rounded: the negation is exact, so affine(-1, qmin) is the subtraction.
            Some(lo) => Some(rint(lo.broadcast_div(&s)?.affine(-1.0, qmin64)?.clamp(qmin, qmax)?)?),
            None => None,
        };
        let mut y = x.broadcast_div(&s)?;
        if let Some(z) = &zero {
            y = y.broadcast_add(z)?;
        }
        let codes = rint(y.clamp(qmin - 1.0, qmax + 1.0)?)?.clamp(qmin, qmax)?;
        Ok(Some(QTensor::Int {
            rows,
            cols,
            bits,
            group: g,
            codes: Self::to_i8(&codes)?,
            scales,
            zeros: zero.as_ref().map(Self::to_i8).transpose()?,
        }))
    }

    fn fp8(&self, w: &[f32], rows: usize, cols: usize, per_tensor: bool, max: f32) -> candle_core::Result<QTensor> {
        let x = Tensor::from_slice(w, (rows, cols), &self.device)?;
        let amax = if per_tensor { x.abs()?.max_keepdim(0)?.max_keepdim(1)? } else { x.abs()?.max_keepdim(1)? };
        let s = amax
            .broadcast_div(&self.scalar(f64::from(max))?)?
            .broadcast_maximum(&self.scalar(f64::from(f32::EPSILON))?)?;
        let scaled: Vec<f32> = x.broadcast_div(&s)?.flatten_all()?.to_vec1()?;
        let scales: Vec<f32> = s.flatten_all()?.to_vec1()?;
        let codes: Vec<u8> = scaled.par_iter().map(|&v| e4m3_from_f32(v)).collect();
        Ok(QTensor::Fp8E4m3 { rows, cols, codes, scales })
    }

    fn q8_0(&self, w: &[f32], rows: usize, cols: usize, ggml_type: u32) -> candle_core::Result<Option<QTensor>> {
        let x = Tensor::from_slice(w, (rows, cols / 32, 32), &self.device)?;
        let d = x.abs()?.max_keepdim(D::Minus1)?.broadcast_div(&self.scalar(127.0)?)?;
        let Some((ds, id)) = Self::inverse_scales(&d)? else { return Ok(None) };
        let q = Self::to_i8(&x.broadcast_mul(&id)?.round()?)?;
        let mut bytes = vec![0u8; ds.len() * 34];
        bytes.par_chunks_mut(34).zip(ds.par_iter()).zip(q.par_chunks(32)).for_each(|((b, &d), q)| {
            b[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
            for (o, &c) in b[2..].iter_mut().zip(q) {
                *o = c as u8;
            }
        });
        Ok(Some(QTensor::Blocks { rows, cols, ggml_type, bytes }))
    }
}

impl DeviceQuantizer {
    /// ggml Q4_0 / Q5_0 ([`GroupArith::SignedMax`]).
    fn signed_max(
        &self,
        w: &[f32],
        rows: usize,
        cols: usize,
        ggml_type: u32,
        levels: f32,
        qmax: f32,
    ) -> candle_core::Result<Option<QTensor>> {
        let x = Tensor::from_slice(w, (rows, cols / 32, 32), &self.device)?;
        let a = x.abs()?;
        let amax = a.max_keepdim(D::Minus1)?;
        // The first position whose magnitude is the maximum: the smallest index among the hits.
        let index = Tensor::arange(0u32, 32, &self.device)?.to_dtype(DType::F32)?.broadcast_as(a.shape())?;
        let past_end = Tensor::full(32f32, a.shape(), &self.device)?;
        let first = a.broadcast_eq(&amax)?.where_cond(&index, &past_end)?.min_keepdim(D::Minus1)?;
        let m = x.gather(&first.to_dtype(DType::U32)?, D::Minus1)?;
        // All-zero blocks: ggml's running maximum stays +0.0, even when the block holds -0.0.
        let m = amax.eq(0.0)?.where_cond(&amax.zeros_like()?, &m)?;
        let d = m.broadcast_div(&self.scalar(-f64::from(levels))?)?;
        let Some((ds, id)) = Self::inverse_scales(&d)? else { return Ok(None) };
        let y = x.broadcast_mul(&id)?.affine(1.0, f64::from(levels) + 0.5)?;
        let q = y.floor()?.clamp(0f32, qmax)?.to_dtype(DType::U8)?.flatten_all()?.to_vec1::<u8>()?;
        let five_bit = qmax > 15.0;
        let block = if five_bit { 22 } else { 18 };
        let mut bytes = vec![0u8; ds.len() * block];
        bytes.par_chunks_mut(block).zip(ds.par_iter()).zip(q.par_chunks(32)).for_each(|((b, &d), q)| {
            b[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
            let qs = if five_bit { 6 } else { 2 };
            let mut qh = 0u32;
            for j in 0..16 {
                b[qs + j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
                qh |= u32::from(q[j] >> 4) << j | u32::from(q[j + 16] >> 4) << (j + 16);
            }
            if five_bit {
                b[2..6].copy_from_slice(&qh.to_le_bytes());
            }
        });
        Ok(Some(QTensor::Blocks { rows, cols, ggml_type, bytes }))
    }
}

impl Accelerator for DeviceQuantizer {
    fn device(&self) -> String {
        self.name.clone()
    }

    fn quantize(
        &self,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> Option<std::result::Result<QTensor, AccelError>> {
        let arith = fmt.group_arith()?;
        if rows.checked_mul(cols) != Some(w.len()) || cols == 0 {
            return None;
        }
        match self.run(arith, fmt, w, rows, cols) {
            Ok(q) => q.map(Ok),
            Err(e) => {
                let detail = e.to_string();
                Some(Err(
                    if detail.contains("OUT_OF_MEMORY") || detail.to_ascii_lowercase().contains("out of memory") {
                        // Input, codes and a few group-sized temporaries live on the device at once.
                        AccelError::OutOfMemory { needed_bytes: (w.len() as u64) * 12, detail }
                    } else {
                        AccelError::Device(detail)
                    },
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows with very different magnitudes, exact zeros, exact group maxima of both signs and
    /// values on rounding ties of the grids.
    fn weights(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..rows * cols)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                let row_scale = [1e-3, 0.02, 1.0, 37.0][(i / cols) % 4];
                match i % 61 {
                    0 => 0.0,
                    7 => row_scale * 0.5,
                    13 => -row_scale * 7.5 / 7.5,
                    _ => u * row_scale,
                }
            })
            .collect()
    }

    #[test]
    fn candle_path_equals_the_reference_codecs_byte_for_byte() {
        let dev = DeviceQuantizer::on(Device::Cpu, "cpu (candle path)");
        let (rows, cols) = (64, 512);
        let mut covered = Vec::new();
        for fmt in pareto_formats::registry() {
            if fmt.group_arith().is_none() {
                continue;
            }
            for seed in 1..4 {
                let mut w = weights(rows, cols, seed);
                if seed == 3 {
                    w[..cols].fill(0.0); // an all-zero row: the EPS / d == 0 branches
                }
                let reference = fmt.quantize(&w, rows, cols).unwrap();
                let got = dev.quantize(fmt, &w, rows, cols).expect("implemented").unwrap();
                assert!(got == reference, "{}: candle path differs from the codec (seed {seed})", fmt.id);
            }
            covered.push(fmt.id);
        }
        for id in
            ["int8_channel", "int4_g128_sym", "int4_g32_asym", "fp8_e4m3", "fp8_e4m3_tensor", "q8_0", "q4_0", "q5_0"]
        {
            assert!(covered.contains(&id), "{id} not covered: {covered:?}");
        }
    }

    #[test]
    fn signed_maximum_ties_and_signed_zeros_follow_ggml() {
        let dev = DeviceQuantizer::on(Device::Cpu, "cpu (candle path)");
        let mut w = weights(8, 64, 5);
        // Block 0: -m before +m; block 1: +m before -m; block 2: -0.0 only; block 3: +0.0 and -0.0;
        // block 4: the maximum last; blocks 5..: pseudo-random.
        let block = |b: usize| b * 32..b * 32 + 32;
        let r = block(0);
        w[r.start + 3] = -9.0;
        w[r.start + 20] = 9.0;
        let r = block(1);
        w[r.start + 1] = 9.0;
        w[r.start + 30] = -9.0;
        let r = block(2);
        w[r].fill(-0.0);
        let r = block(3);
        for (i, v) in w[r].iter_mut().enumerate() {
            *v = if i % 2 == 0 { 0.0 } else { -0.0 };
        }
        let r = block(4);
        w[r.end - 1] = -20.0;
        for id in ["q4_0", "q5_0"] {
            let fmt = pareto_formats::lookup(id).unwrap();
            let reference = fmt.quantize(&w, 8, 64).unwrap();
            let got = dev.quantize(fmt, &w, 8, 64).expect("implemented").unwrap();
            assert!(got == reference, "{id}: candle path differs from the codec");
        }
    }

    #[test]
    fn searched_formats_and_odd_shapes_are_left_to_the_cpu_codec() {
        let dev = DeviceQuantizer::on(Device::Cpu, "cpu");
        let w = weights(2, 64, 1);
        for id in ["q4_k", "q6_k", "nf4"] {
            assert!(dev.quantize(pareto_formats::lookup(id).unwrap(), &w, 2, 64).is_none(), "{id}");
        }
        let odd = weights(3, 40, 2);
        assert!(dev.quantize(pareto_formats::lookup("q8_0").unwrap(), &odd, 3, 40).is_none());
        assert!(dev.quantize(pareto_formats::lookup("int4_g32_sym").unwrap(), &odd, 3, 40).is_none());
    }
}
