//! The exact global magnitude threshold over many tensors in bounded memory.
//!
//! For non-negative floats the IEEE bit pattern orders like the value, so the k-th smallest |w|
//! is found with two 65,536-bin histograms: one over the high 16 bits of |w|, then one over the
//! low 16 bits inside the bin that holds the k-th value. Two streaming passes, 1 MiB of counts,
//! no copy of the weights, and the result is exact (not a sampled estimate).

const BINS: usize = 1 << 16;

#[derive(Debug, Clone)]
pub struct GlobalThreshold {
    k: u64,
    total: u64,
    high: Vec<u64>,
    /// After the first pass: the high bin holding the k-th value and the count below that bin.
    pivot: Option<(u32, u64)>,
    low: Vec<u64>,
}

/// The result: prune |w| < `threshold`, plus the first `ties` weights equal to it (in tensor order).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub threshold: f32,
    pub ties: u64,
    pub k: u64,
    pub total: u64,
}

impl GlobalThreshold {
    pub fn new() -> Self {
        GlobalThreshold { k: 0, total: 0, high: vec![0; BINS], pivot: None, low: vec![0; BINS] }
    }

    /// First pass: feed every targeted tensor.
    pub fn observe(&mut self, w: &[f32]) {
        for x in w {
            self.high[(x.abs().to_bits() >> 16) as usize] += 1;
        }
        self.total += w.len() as u64;
    }

    /// Ends the first pass. Returns false when nothing is to be pruned (no second pass needed).
    pub fn set_sparsity(&mut self, sparsity: f64) -> bool {
        self.k = ((self.total as f64) * sparsity).floor() as u64;
        if self.k == 0 {
            return false;
        }
        let mut below = 0u64;
        for (bin, &count) in self.high.iter().enumerate() {
            if below + count >= self.k {
                self.pivot = Some((bin as u32, below));
                break;
            }
            below += count;
        }
        true
    }

    /// Second pass: feed the same tensors again.
    pub fn refine(&mut self, w: &[f32]) {
        let Some((pivot, _)) = self.pivot else { return };
        for x in w {
            let bits = x.abs().to_bits();
            if bits >> 16 == pivot {
                self.low[(bits & 0xFFFF) as usize] += 1;
            }
        }
    }

    pub fn finish(&self) -> Option<Threshold> {
        let (pivot, mut below) = self.pivot?;
        for (lo, &count) in self.low.iter().enumerate() {
            if below + count >= self.k {
                return Some(Threshold {
                    threshold: f32::from_bits((pivot << 16) | lo as u32),
                    ties: self.k - below,
                    k: self.k,
                    total: self.total,
                });
            }
            below += count;
        }
        None
    }
}

impl Default for GlobalThreshold {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::prune_below;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn matches_a_full_sort_across_tensors() {
        let mut seed = 7;
        let tensors: Vec<Vec<f32>> =
            (0..3).map(|i| (0..1000 * (i + 1)).map(|_| lcg(&mut seed) * (i as f32 + 1.0)).collect()).collect();
        let mut g = GlobalThreshold::new();
        tensors.iter().for_each(|t| g.observe(t));
        assert!(g.set_sparsity(0.37));
        tensors.iter().for_each(|t| g.refine(t));
        let th = g.finish().unwrap();
        let mut all: Vec<f32> = tensors.iter().flatten().map(|x| x.abs()).collect();
        all.sort_by(f32::total_cmp);
        let k = (all.len() as f64 * 0.37).floor() as usize;
        assert_eq!(th.threshold, all[k - 1]);
        let mut ties = th.ties as usize;
        let zeroed: usize = tensors.clone().iter_mut().map(|t| prune_below(t, th.threshold, &mut ties)).sum();
        assert_eq!(zeroed, k);
    }
}
