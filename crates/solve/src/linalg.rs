//! Dense symmetric positive-definite algebra for GPTQ, row-major f64: Cholesky, triangular
//! inverse, and the upper Cholesky factor of the inverse that GPTQ's column sweep reads.

/// In-place lower Cholesky of the `n × n` matrix `a` (only the lower triangle is read; the upper
/// is zeroed). `Err(i)`: the leading minor of order `i + 1` is not positive definite.
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), usize> {
    for j in 0..n {
        let lj: Vec<f64> = a[j * n..j * n + j].to_vec();
        let d = a[j * n + j] - lj.iter().map(|v| v * v).sum::<f64>();
        if d.is_nan() || d <= 0.0 {
            return Err(j);
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        a[j * n + j + 1..(j + 1) * n].fill(0.0);
        for i in j + 1..n {
            let row = &mut a[i * n..i * n + j + 1];
            let dot: f64 = row[..j].iter().zip(&lj).map(|(x, y)| x * y).sum();
            row[j] = (row[j] - dot) / d;
        }
    }
    Ok(())
}

/// The inverse of a lower-triangular `l` (lower triangular too).
pub fn invert_lower(l: &[f64], n: usize) -> Vec<f64> {
    let mut x = vec![0.0; n * n];
    let mut acc = vec![0.0; n];
    for i in 0..n {
        // Row i of L·X = I: Σ_k L[i][k] X[k][j] = δ_ij, solved for X[i][..=i] given rows < i.
        acc[..i].fill(0.0);
        for k in 0..i {
            let lik = l[i * n + k];
            if lik != 0.0 {
                for (a, &v) in acc[..=k].iter_mut().zip(&x[k * n..k * n + k + 1]) {
                    *a += lik * v;
                }
            }
        }
        let d = l[i * n + i];
        for j in 0..i {
            x[i * n + j] = -acc[j] / d;
        }
        x[i * n + i] = 1.0 / d;
    }
    x
}

/// `U` (upper triangular, row-major) with `H⁻¹ = Uᵀ U`, from a positive-definite `h`; `Err(i)` as
/// in [`cholesky`] when `h` (or, numerically, its inverse) is not positive definite.
pub fn inverse_upper_factor(h: &[f64], n: usize) -> Result<Vec<f64>, usize> {
    let mut l = h.to_vec();
    cholesky(&mut l, n)?;
    let x = invert_lower(&l, n);
    // H⁻¹ = Xᵀ X with X = L⁻¹: accumulate row k's outer product into the lower triangle.
    let mut inv = vec![0.0; n * n];
    for k in 0..n {
        let xk = &x[k * n..k * n + k + 1];
        for (a, &xa) in xk.iter().enumerate() {
            if xa != 0.0 {
                for (dst, &xb) in inv[a * n..a * n + a + 1].iter_mut().zip(xk) {
                    *dst += xa * xb;
                }
            }
        }
    }
    cholesky(&mut inv, n)?;
    // inv now holds M (lower) with H⁻¹ = M Mᵀ; U = Mᵀ.
    let mut u = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            u[j * n + i] = inv[i * n + j];
        }
    }
    Ok(u)
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
    fn indefinite_is_reported_at_its_pivot() {
        let mut a = vec![4.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&mut a, 2), Err(1));
        let mut z = vec![0.0; 4];
        assert_eq!(cholesky(&mut z, 2), Err(0));
    }
}
