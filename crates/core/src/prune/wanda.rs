//! Wanda (Sun, Liu, Bair, Kolter, "A Simple and Effective Pruning Approach for Large Language
//! Models", ICLR 2024): a weight's importance is |W_ij| · ‖X_j‖₂, its magnitude times the norm of
//! the input feature it multiplies over the calibration tokens, compared within each output row
//! (unstructured) or within each group of m inputs (N:M). No weight update.

/// Which weights of `w` (`[rows, cols]`) Wanda keeps (`true`), given the per-input norms ‖X_j‖
/// (any positive scale). `Unstructured(s)` removes ⌊s · cols⌋ weights of every row; `NM(n, m)`
/// keeps `n` of every `m` consecutive inputs. Ties keep the earlier column.
pub fn keep_mask(w: &[f32], cols: usize, norms: &[f32], pattern: WandaPattern) -> Vec<bool> {
    let mut keep = vec![true; w.len()];
    if cols == 0 || norms.len() != cols {
        return keep;
    }
    let mut order: Vec<usize> = Vec::with_capacity(cols);
    let score = |row: &[f32], j: usize| row[j].abs() * norms[j];
    for (row, kept) in w.chunks_exact(cols).zip(keep.chunks_exact_mut(cols)) {
        match pattern {
            WandaPattern::Unstructured(s) => {
                let remove = ((s * cols as f64).floor() as usize).min(cols);
                order.clear();
                order.extend(0..cols);
                // Ascending score; among equals the later column goes first, so the earlier stays.
                order.sort_by(|&a, &b| score(row, a).total_cmp(&score(row, b)).then(b.cmp(&a)));
                for &j in &order[..remove] {
                    kept[j] = false;
                }
            }
            WandaPattern::NM { n, m } => {
                if m == 0 || n >= m || !cols.is_multiple_of(m) {
                    continue;
                }
                for g in (0..cols).step_by(m) {
                    order.clear();
                    order.extend(g..g + m);
                    order.sort_by(|&a, &b| score(row, b).total_cmp(&score(row, a)).then(a.cmp(&b)));
                    for &j in &order[n..] {
                        kept[j] = false;
                    }
                }
            }
        }
    }
    keep
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WandaPattern {
    /// Fraction of each output row removed.
    Unstructured(f64),
    NM {
        n: usize,
        m: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_norm_changes_which_weight_goes() {
        // Row [1, 2, 3, 4]: magnitude alone would drop columns 0 and 1.
        let w = [1.0, 2.0, 3.0, 4.0];
        let keep = keep_mask(&w, 4, &[10.0, 1.0, 1.0, 0.1], WandaPattern::Unstructured(0.5));
        // Scores 10, 2, 3, 0.4: columns 3 and 1 go.
        assert_eq!(keep, vec![true, false, true, false]);
        let keep = keep_mask(&w, 4, &[1.0; 4], WandaPattern::Unstructured(0.5));
        assert_eq!(keep, vec![false, false, true, true], "equal norms: magnitude pruning");
        let w2 = [1.0, 2.0, 3.0, 4.0, -5.0, 0.5, 0.5, 0.5];
        let keep = keep_mask(&w2, 8, &[1.0, 1.0, 1.0, 1.0, 1.0, 9.0, 1.0, 1.0], WandaPattern::NM { n: 2, m: 4 });
        assert_eq!(keep, vec![false, false, true, true, true, true, false, false]);
        let ties = keep_mask(&[1.0; 4], 4, &[1.0; 4], WandaPattern::Unstructured(0.5));
        assert_eq!(ties, vec![true, true, false, false], "ties keep the earlier column");
    }
}
