//! N:M semi-structured pruning (e.g. 2:4, the pattern sparse tensor cores accelerate).

/// In every group of `m` consecutive weights along each row, keeps the `n` largest magnitudes
/// (earlier position wins a tie) and zeroes the rest. `cols % m == 0` is checked by the plan.
pub fn prune_n_m(w: &mut [f32], cols: usize, n: usize, m: usize) -> usize {
    if m == 0 || n >= m || !cols.is_multiple_of(m) {
        return 0;
    }
    let mut zeroed = 0;
    let mut order: Vec<usize> = Vec::with_capacity(m);
    for group in w.chunks_exact_mut(m) {
        order.clear();
        order.extend(0..m);
        // Stable sort by descending magnitude keeps earlier positions first among equals.
        order.sort_by(|&a, &b| group[b].abs().total_cmp(&group[a].abs()));
        for &i in &order[n..] {
            if group[i] != 0.0 {
                zeroed += 1;
            }
            group[i] = 0.0;
        }
    }
    zeroed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_of_four() {
        let mut w = vec![0.1, -0.9, 0.5, 0.2, 1.0, 1.0, 1.0, 1.0];
        prune_n_m(&mut w, 8, 2, 4);
        assert_eq!(w, vec![0.0, -0.9, 0.5, 0.0, 1.0, 1.0, 0.0, 0.0]);
        for g in w.chunks(4) {
            assert!(g.iter().filter(|x| **x != 0.0).count() <= 2);
        }
    }
}
