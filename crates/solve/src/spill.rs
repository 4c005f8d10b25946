//! Solved arrays held on disk until the export asks for them: a sequential calibration of a
//! 32-layer 8B model produces 7 GB of GPTQ codes (a byte a weight) before the export starts, and
//! SparseGPT four bytes a weight. They go to one unnamed temporary file (unlinked at creation, so
//! a killed run leaves nothing behind) and are read back tensor by tensor. A calibration kept in
//! the cache is the same arrays copied into a file of its own, read in place.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use half::f16;
use pareto_formats::QTensor;
use serde::{Deserialize, Serialize};

/// Where an array lies in the spill file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Extent {
    offset: u64,
    len: usize,
}

impl Extent {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len as u64)
    }
}

/// An append-only temporary file of arrays, or the arrays of a kept calibration (read only).
#[derive(Debug)]
pub(crate) struct Spill {
    file: File,
    /// Where the arrays start in the file (a kept calibration has its magic before them).
    base: u64,
    end: Mutex<u64>,
    kept: bool,
}

impl Spill {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Spill { file: tempfile::tempfile()?, base: 0, end: Mutex::new(0), kept: false })
    }

    /// The `len` bytes of arrays at `base` in a kept file.
    pub(crate) fn kept(file: File, base: u64, len: u64) -> Self {
        Spill { file, base, end: Mutex::new(len), kept: true }
    }

    fn put(&self, bytes: &[u8]) -> io::Result<Extent> {
        if self.kept {
            return Err(io::Error::other("a kept calibration is read, never written"));
        }
        let mut end = self.end.lock().map_err(|_| io::Error::other("spill file state poisoned"))?;
        self.file.write_all_at(bytes, *end)?;
        let e = Extent { offset: *end, len: bytes.len() };
        *end += bytes.len() as u64;
        Ok(e)
    }

    /// Whether `e` lies inside the arrays (a kept index is checked before anything is read, so a
    /// damaged one sizes no allocation).
    pub(crate) fn holds(&self, e: Extent) -> bool {
        e.end().is_some_and(|end| end <= self.bytes())
    }

    fn at(&self, e: Extent) -> io::Result<u64> {
        if !self.holds(e) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "an array lies outside the spill file"));
        }
        Ok(self.base + e.offset)
    }

    fn get(&self, e: Extent) -> io::Result<Vec<u8>> {
        let at = self.at(e)?;
        let mut buf = vec![0u8; e.len];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(buf)
    }

    /// Copies every array written so far to `out` (a cache entry's body), in order, so the
    /// extents handed out stay valid against the copy.
    pub(crate) fn copy_to(&self, out: &mut impl Write) -> io::Result<u64> {
        let end = self.bytes();
        let mut buf = vec![0u8; 8 << 20];
        let mut at = 0u64;
        while at < end {
            let n = buf.len().min((end - at) as usize);
            self.file.read_exact_at(&mut buf[..n], self.base + at)?;
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        Ok(end)
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.end.lock().map_or(0, |e| *e)
    }

    pub(crate) fn put_f32(&self, v: &[f32]) -> io::Result<Extent> {
        self.put(bytemuck::cast_slice(v))
    }

    pub(crate) fn get_f32(&self, e: Extent) -> io::Result<Vec<f32>> {
        let at = self.at(e)?;
        let mut v = vec![0f32; e.len / 4];
        self.file.read_exact_at(bytemuck::cast_slice_mut(&mut v), at)?;
        Ok(v)
    }

    pub(crate) fn put_u64(&self, v: &[u64]) -> io::Result<Extent> {
        self.put(bytemuck::cast_slice(v))
    }

    pub(crate) fn get_u64(&self, e: Extent) -> io::Result<Vec<u64>> {
        let at = self.at(e)?;
        let mut v = vec![0u64; e.len / 8];
        self.file.read_exact_at(bytemuck::cast_slice_mut(&mut v), at)?;
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
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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

    /// Whether the codes are in `grid`'s layout: its bits, its group length, zero points exactly
    /// when it is asymmetric (a kept index that says otherwise is not trusted).
    pub(crate) fn is_of(&self, grid: &pareto_formats::IntGrid) -> bool {
        self.bits == grid.bits() && self.group == grid.group_len(self.cols) && self.zeros.is_some() != grid.symmetric()
    }

    /// Whether every array lies in `spill` with the lengths the shape implies.
    pub(crate) fn fits(&self, spill: &Spill) -> bool {
        let n = self.rows.checked_mul(self.cols);
        let groups = self.rows.checked_mul(self.cols.checked_div(self.group).unwrap_or(0));
        n.is_some_and(|n| self.codes.len == n)
            && groups.is_some_and(|g| self.scales.len == 2 * g && self.zeros.is_none_or(|z| z.len == g))
            && [Some(self.codes), Some(self.scales), self.zeros].into_iter().flatten().all(|e| spill.holds(e))
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
