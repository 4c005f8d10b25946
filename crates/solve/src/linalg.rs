//! Dense symmetric positive-definite algebra for GPTQ, row-major f64: Cholesky, triangular
//! inverse, and the upper Cholesky factor of the inverse that GPTQ's column sweep reads.

use rayon::prelude::*;

/// Below this order the loops run on one thread (rayon's hand-off costs more than the work).
const PARALLEL_FROM: usize = 256;

/// Σ aᵢbᵢ with eight independent partial sums, so the compiler vectorises it.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// Columns per panel of the blocked factorisation: the panel (rows × BLOCK f64) stays in cache
/// while the trailing matrix is updated from it.
const BLOCK: usize = 64;

/// In-place lower Cholesky of the `n × n` matrix `a` (only the lower triangle is read; the upper
/// is zeroed). `Err(i)`: the leading minor of order `i + 1` is not positive definite.
///
/// Right-looking and blocked: factor a diagonal block, solve the panel below it, subtract the
/// panel's outer product from the trailing matrix; the last two steps run row-parallel, and every
/// inner loop is a dot product of two contiguous slices.
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), usize> {
    for k0 in (0..n).step_by(BLOCK) {
        let k1 = (k0 + BLOCK).min(n);
        let b = k1 - k0;
        // 1. The diagonal block.
        for j in k0..k1 {
            let d = a[j * n + j] - dot(&a[j * n + k0..j * n + j], &a[j * n + k0..j * n + j]);
            if d.is_nan() || d <= 0.0 {
                return Err(j);
            }
            let d = d.sqrt();
            a[j * n + j] = d;
            for i in j + 1..k1 {
                let (top, bottom) = a.split_at_mut(i * n);
                let lj = &top[j * n + k0..j * n + j];
                let row = &mut bottom[..n];
                row[j] = (row[j] - dot(&row[k0..j], lj)) / d;
            }
        }
        if k1 == n {
            break;
        }
        let diag: Vec<f64> = (k0..k1).flat_map(|j| a[j * n + k0..j * n + k1].to_vec()).collect();
        let (_, rest) = a.split_at_mut(k1 * n);
        // 2. The panel below it: row i solves L[i, k0..k1] · Lkkᵀ = A[i, k0..k1].
        let panel_row = |row: &mut [f64]| {
            for j in 0..b {
                let lj = &diag[j * b..j * b + j];
                row[k0 + j] = (row[k0 + j] - dot(&row[k0..k0 + j], lj)) / diag[j * b + j];
            }
        };
        par_rows(rest, n, panel_row);
        let panel: Vec<f64> = rest.chunks(n).flat_map(|r| r[k0..k1].to_vec()).collect();
        // 3. The trailing matrix: A[i][j] -= L[i, panel] · L[j, panel] for k1 ≤ j ≤ i.
        let trailing = |(r, row): (usize, &mut [f64])| {
            let li = &panel[r * b..(r + 1) * b];
            for (c, v) in row[k1..=k1 + r].iter_mut().enumerate() {
                *v -= dot(li, &panel[c * b..(c + 1) * b]);
            }
        };
        if n - k1 > PARALLEL_FROM {
            rest.par_chunks_mut(n).enumerate().for_each(trailing);
        } else {
            rest.chunks_mut(n).enumerate().for_each(trailing);
        }
    }
    for i in 0..n {
        a[i * n + i + 1..(i + 1) * n].fill(0.0);
    }
    Ok(())
}

fn par_rows(rows: &mut [f64], n: usize, f: impl Fn(&mut [f64]) + Sync + Send) {
    if rows.len() / n.max(1) > PARALLEL_FROM {
        rows.par_chunks_mut(n).for_each(f);
    } else {
        rows.chunks_mut(n).for_each(f);
    }
}

/// Overwrites the lower-triangular `a` with its inverse X (lower triangular too), by the row
/// recurrence `X[r] = (e_r − Σ_{k<r} L[r][k] X[k]) / L[r][r]`, a block of rows at a time: the rows of
/// a block are computed in a scratch of `BLOCK × n` (they still need their own row of L) and then
/// copied over it, so the inverse needs no second n × n matrix. The sum over earlier blocks runs
/// row-parallel, reading each finished row of X once per block.
pub fn invert_lower_in_place(a: &mut [f64], n: usize) {
    let mut scratch = vec![0.0; BLOCK.min(n) * n];
    for i0 in (0..n).step_by(BLOCK) {
        let i1 = (i0 + BLOCK).min(n);
        let block = &mut scratch[..(i1 - i0) * n];
        block.fill(0.0);
        let (done, rest) = a.split_at(i0 * n);
        let l = &rest[..(i1 - i0) * n];
        // Contributions of the finished rows 0..i0 (X[k] is zero beyond column k).
        let earlier = |(r, acc): (usize, &mut [f64])| {
            for (k, &lk) in l[r * n..r * n + i0].iter().enumerate() {
                if lk != 0.0 {
                    for (a, &v) in acc[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                        *a -= lk * v;
                    }
                }
            }
        };
        if i0 > PARALLEL_FROM {
            block.par_chunks_mut(n).enumerate().for_each(earlier);
        } else {
            block.chunks_mut(n).enumerate().for_each(earlier);
        }
        // Rows of this block, in order.
        for r in i0..i1 {
            let (prev, cur) = block.split_at_mut((r - i0) * n);
            let row = &mut cur[..n];
            row[r] += 1.0;
            for k in i0..r {
                let lk = l[(r - i0) * n + k];
                if lk != 0.0 {
                    for (a, &v) in row[..=k].iter_mut().zip(&prev[(k - i0) * n..(k - i0) * n + k + 1]) {
                        *a -= lk * v;
                    }
                }
            }
            let d = l[(r - i0) * n + r];
            for v in &mut row[..=r] {
                *v /= d;
            }
        }
        a[i0 * n..i1 * n].copy_from_slice(block);
    }
}

/// `U` (upper triangular, row-major) with `H⁻¹ = Uᵀ U`, from a positive-definite `h`; `Err(i)` as
/// in [`cholesky`] when `h` is not positive definite.
///
/// With J the order-reversing permutation, factor `J H J = L Lᵀ`; then `H = R Rᵀ` for the upper
/// triangular `R = J L J`, so `H⁻¹ = R⁻ᵀ R⁻¹` and `U = R⁻¹ = J L⁻¹ J`: one factorisation and one
/// triangular inverse.
pub fn inverse_upper_factor(h: &[f64], n: usize) -> Result<Vec<f64>, usize> {
    let mut u = h.to_vec();
    inverse_upper_factor_in_place(&mut u, n)?;
    Ok(u)
}

/// [`inverse_upper_factor`] in `h`'s own storage: J H J is `h` with its row-major elements
/// reversed, the factor and its inverse overwrite it, and reversing again gives U — one n × n
/// matrix alive throughout. On `Err` the factorisation has written only the lower triangle of J H J
/// (the upper of `h`): `h`'s strict lower triangle still holds the input, and
/// [`restore_after_failure`] rebuilds the rest.
pub fn inverse_upper_factor_in_place(h: &mut [f64], n: usize) -> Result<(), usize> {
    h.reverse();
    if let Err(i) = cholesky(h, n) {
        h.reverse();
        return Err(n - 1 - i);
    }
    invert_lower_in_place(h, n);
    h.reverse();
    Ok(())
}

/// Rebuilds a symmetric `h` whose factorisation failed in place: its strict upper triangle from
/// the untouched lower one, its diagonal from `diagonal`.
pub fn restore_after_failure(h: &mut [f64], n: usize, diagonal: &[f64]) {
    for i in 0..n {
        for j in i + 1..n {
            h[i * n + j] = h[j * n + i];
        }
        h[i * n + i] = diagonal[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Vec<f64> {
        // B Bᵀ + n I for a fixed B: symmetric positive definite.
        let b: Vec<f64> = (0..n * n).map(|i| ((i * 7919 % 101) as f64 / 50.0) - 1.0).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>() + if i == j { n as f64 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn factor_times_transpose_is_the_inverse() {
        let n = 17;
        let h = spd(n);
        let u = inverse_upper_factor(&h, n).unwrap();
        // H · (Uᵀ U) = I.
        for i in 0..n {
            for j in 0..n {
                let inv_kj = |k: usize| (0..n).map(|m| u[m * n + k] * u[m * n + j]).sum::<f64>();
                let v: f64 = (0..n).map(|k| h[i * n + k] * inv_kj(k)).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i},{j}) = {v}");
            }
        }
        for i in 0..n {
            for j in 0..i {
                assert_eq!(u[i * n + j], 0.0, "upper triangular");
            }
        }
    }

    #[test]
    fn the_parallel_path_agrees_with_a_direct_check() {
        // Above PARALLEL_FROM: H · H⁻¹ = I checked on a few rows.
        let n = 300;
        let h = spd(n);
        let u = inverse_upper_factor(&h, n).unwrap();
        for i in [0, 1, 150, 299] {
            for j in [0, 7, 150, 298, 299] {
                let inv_kj = |k: usize| (0..n).map(|m| u[m * n + k] * u[m * n + j]).sum::<f64>();
                let v: f64 = (0..n).map(|k| h[i * n + k] * inv_kj(k)).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn a_failed_factorisation_in_place_can_be_restored_and_retried() {
        // Indefinite at a late pivot (after a block update), then positive definite once damped.
        let n = 150;
        let mut h = spd(n);
        let k = 140;
        h[k * n + k] = -1e6;
        let original = h.clone();
        let diagonal: Vec<f64> = (0..n).map(|i| h[i * n + i]).collect();
        assert!(inverse_upper_factor_in_place(&mut h, n).is_err());
        restore_after_failure(&mut h, n, &diagonal);
        assert_eq!(h, original, "the matrix is as it was");
        h[k * n + k] = 2e6;
        let want = inverse_upper_factor(&h, n).unwrap();
        inverse_upper_factor_in_place(&mut h, n).unwrap();
        assert_eq!(h, want);
    }

    #[test]
    fn indefinite_is_reported_at_its_pivot() {
        let mut a = vec![4.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut a, 2), Err(1));
        let mut z = vec![0.0; 4];
        assert_eq!(cholesky(&mut z, 2), Err(0));
    }
}
