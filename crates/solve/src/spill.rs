//! Solved arrays held on disk until the export asks for them: a sequential calibration of a
//! 32-layer 8B model produces 7 GB of GPTQ codes (a byte a weight) before the export starts, and
//! SparseGPT four bytes a weight. They go to one unnamed temporary file (unlinked at creation, so
//! a killed run leaves nothing behind) and are read back tensor by tensor.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use half::f16;
use pareto_formats::QTensor;

/// Where an array lies in the spill file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Extent {
    offset: u64,
    len: usize,
}

/// An append-only temporary file of arrays.
#[derive(Debug)]
pub(crate) struct Spill {
    file: File,
    end: Mutex<u64>,
}

impl Spill {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Spill { file: tempfile::tempfile()?, end: Mutex::new(0) })
    }

    fn put(&self, bytes: &[u8]) -> io::Result<Extent> {
        let mut end = self.end.lock().map_err(|_| io::Error::other("spill file state poisoned"))?;
        self.file.write_all_at(bytes, *end)?;
        let e = Extent { offset: *end, len: bytes.len() };
        *end += bytes.len() as u64;
        Ok(e)
    }

    fn get(&self, e: Extent) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; e.len];
        self.file.read_exact_at(&mut buf, e.offset)?;
        Ok(buf)
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.end.lock().map_or(0, |e| *e)
    }

    pub(crate) fn put_f32(&self, v: &[f32]) -> io::Result<Extent> {
        self.put(bytemuck::cast_slice(v))
    }

    pub(crate) fn get_f32(&self, e: Extent) -> io::Result<Vec<f32>> {
        let mut v = vec![0f32; e.len / 4];
        self.file.read_exact_at(bytemuck::cast_slice_mut(&mut v), e.offset)?;
        Ok(v)
    }

    /// Writes an integer-grid tensor's arrays; other kinds are not spilled (`None`).
    pub(crate) fn put_int(&self, q: &QTensor) -> io::Result<Option<SpilledInt>> {
        let QTensor::Int { rows, cols, bits, group, codes, scales, zeros } = q else { return Ok(None) };
        let scale_bits: Vec<u16> = scales.iter().map(|s| s.to_bits()).collect();
        Ok(Some(SpilledInt {
            rows: *rows,
            cols: *cols,
            bits: *bits,
            group: *group,
            codes: self.put(bytemuck::cast_slice(codes))?,
            scales: self.put(bytemuck::cast_slice(&scale_bits))?,
            zeros: zeros.as_ref().map(|z| self.put(bytemuck::cast_slice(z))).transpose()?,
        }))
    }

    pub(crate) fn get_int(&self, s: &SpilledInt) -> io::Result<QTensor> {
        let signed = |bytes: Vec<u8>| -> Vec<i8> { bytes.into_iter().map(|b| b as i8).collect() };
        let scales =
            self.get(s.scales)?.chunks_exact(2).map(|b| f16::from_bits(u16::from_ne_bytes([b[0], b[1]]))).collect();
        Ok(QTensor::Int {
            rows: s.rows,
            cols: s.cols,
            bits: s.bits,
            group: s.group,
            codes: signed(self.get(s.codes)?),
            scales,
            zeros: s.zeros.map(|z| self.get(z).map(signed)).transpose()?,
        })
    }
}

/// An integer-grid tensor whose arrays are in the spill file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpilledInt {
    rows: usize,
    cols: usize,
    bits: u8,
    group: usize,
    codes: Extent,
    scales: Extent,
    zeros: Option<Extent>,
}

impl SpilledInt {
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_come_back_as_they_went_in() {
        let spill = Spill::new().unwrap();
        for name in ["int4_g32_asym", "int4_g32_sym", "int8_channel"] {
            let fmt = pareto_formats::lookup(name).unwrap();
            let w: Vec<f32> = (0..4 * 64).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
            let q = fmt.quantize(&w, 4, 64).unwrap();
            let s = spill.put_int(&q).unwrap().unwrap();
            assert_eq!(spill.get_int(&s).unwrap(), q, "{name}");
        }
        let v = vec![1.5f32, -0.0, f32::MIN_POSITIVE, 3.25e7];
        let e = spill.put_f32(&v).unwrap();
        assert_eq!(spill.get_f32(e).unwrap(), v);
        assert!(spill.bytes() > 0);
        let blocks = pareto_formats::lookup("q8_0").unwrap().quantize(&[0.5; 32], 1, 32).unwrap();
        assert!(spill.put_int(&blocks).unwrap().is_none(), "only integer grids are spilled");
    }
}
