//! Unstructured magnitude pruning of one tensor.

/// Zeroes exactly `floor(sparsity · n)` weights of smallest magnitude. Ties at the threshold are
/// broken by position (earlier first) so the count is exact and the result deterministic.
/// Returns the number of weights zeroed.
pub fn prune_magnitude(w: &mut [f32], sparsity: f64) -> usize {
    let k = ((w.len() as f64) * sparsity).floor() as usize;
    if k == 0 {
        return 0;
    }
    let mut mags: Vec<f32> = w.iter().map(|x| x.abs()).collect();
    let (_, &mut threshold, _) = mags.select_nth_unstable_by(k - 1, f32::total_cmp);
    drop(mags);
    let below = w.iter().filter(|x| x.abs() < threshold).count();
    let mut ties = k - below;
    prune_below(w, threshold, &mut ties)
}

/// Zeroes every weight with |w| < `threshold`, and the first `ties` weights with |w| == threshold
/// (decrementing `ties`). Returns the number zeroed.
pub fn prune_below(w: &mut [f32], threshold: f32, ties: &mut usize) -> usize {
    let mut zeroed = 0;
    for x in w.iter_mut() {
        let a = x.abs();
        if a < threshold || (a == threshold && *ties > 0) {
            if a == threshold {
                *ties -= 1;
            }
            *x = 0.0;
            zeroed += 1;
        }
    }
    zeroed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_count_and_smallest_first() {
        let mut w = vec![0.5, -0.1, 0.3, -0.9, 0.2, 0.0, 0.7, -0.4];
        assert_eq!(prune_magnitude(&mut w, 0.5), 4);
        assert_eq!(w, vec![0.5, 0.0, 0.0, -0.9, 0.0, 0.0, 0.7, -0.4]);
    }

    #[test]
    fn ties_are_broken_by_position() {
        let mut w = vec![1.0; 10];
        assert_eq!(prune_magnitude(&mut w, 0.3), 3);
        assert_eq!(&w[..4], &[0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn zero_sparsity_is_a_no_op() {
        let mut w = vec![1.0, 2.0];
        assert_eq!(prune_magnitude(&mut w, 0.0), 0);
        assert_eq!(w, vec![1.0, 2.0]);
    }
}
