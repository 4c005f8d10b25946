//! Nonlinear least squares for the projection's fitted constants: Levenberg–Marquardt with a
//! forward-difference Jacobian and a Cholesky solve of the damped normal equations. The problems
//! here are small (tens of parameters, a few hundred residuals), so dense `Vec<Vec<f64>>` is enough.

/// Minimises `Σ res(x)²` from `start`; stops when a step no longer lowers the sum measurably or
/// after `iterations` accepted steps.
pub fn levenberg_marquardt(start: &[f64], res: &dyn Fn(&[f64]) -> Vec<f64>, iterations: usize) -> Vec<f64> {
    const H: f64 = 1e-6;
    let n = start.len();
    let cost = |r: &[f64]| r.iter().map(|v| v * v).sum::<f64>();
    let mut x = start.to_vec();
    let mut r = res(&x);
    let mut c = cost(&r);
    let mut mu = 1e-2;
    for _ in 0..iterations {
        let cols: Vec<Vec<f64>> = (0..n)
            .map(|j| {
                let mut xj = x.clone();
                xj[j] += H;
                res(&xj).iter().zip(&r).map(|(a, b)| (a - b) / H).collect()
            })
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        let jtj: Vec<Vec<f64>> = (0..n).map(|i| (0..n).map(|k| dot(&cols[i], &cols[k])).collect()).collect();
        let down: Vec<f64> = (0..n).map(|i| -dot(&cols[i], &r)).collect();
        let mut progressed = false;
        // Raise the damping until a step lowers the cost (a gradient step in the limit).
        for _ in 0..20 {
            let mut a = jtj.clone();
            for (i, row) in a.iter_mut().enumerate() {
                row[i] += mu * (jtj[i][i] + 1e-9);
            }
            let Some(step) = solve_spd(&a, &down) else {
                mu *= 10.0;
                continue;
            };
            let xn: Vec<f64> = x.iter().zip(&step).map(|(a, b)| a + b).collect();
            let rn = res(&xn);
            let cn = cost(&rn);
            if cn < c {
                progressed = c - cn > 1e-12 * c;
                (x, r, c) = (xn, rn, cn);
                mu = (mu * 0.3).max(1e-12);
                break;
            }
            mu *= 10.0;
        }
        if !progressed {
            break;
        }
    }
    x
}

/// Solves `a·x = b` for a symmetric positive definite `a`; `None` when the factorisation fails.
pub fn solve_spd(a: &[Vec<f64>], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_and_refuses_an_indefinite_matrix() {
        let a = vec![vec![4.0, 2.0, 0.6], vec![2.0, 5.0, 1.0], vec![0.6, 1.0, 3.0]];
        let x = [1.0, -2.0, 0.5];
        let b: Vec<f64> = a.iter().map(|row| row.iter().zip(&x).map(|(p, q)| p * q).sum()).collect();
        let got = solve_spd(&a, &b).expect("positive definite");
        assert!(got.iter().zip(&x).all(|(g, w)| (g - w).abs() < 1e-12), "{got:?}");
        assert!(solve_spd(&[vec![1.0, 2.0], vec![2.0, 1.0]], &[1.0, 1.0]).is_none());
    }

    #[test]
    fn recovers_the_constants_of_a_curve_with_a_kink() {
        // y = max(a·t, b) + c: the shape of a roofline step (a bound that switches, plus a fixed cost).
        let (a, b, c) = (2.5, 7.0, 0.8);
        let ts: Vec<f64> = (1..40).map(|i| i as f64 * 0.25).collect();
        let ys: Vec<f64> = ts.iter().map(|t| (a * t).max(b) + c).collect();
        let res = |p: &[f64]| -> Vec<f64> {
            let (pa, pb, pc) = (p[0].exp(), p[1].exp(), p[2].exp());
            ts.iter().zip(&ys).map(|(t, y)| (((pa * t).max(pb) + pc) / y).ln()).collect()
        };
        let p = levenberg_marquardt(&[0.0, 0.0, 0.0], &res, 500);
        let got = [p[0].exp(), p[1].exp(), p[2].exp()];
        for (g, w) in got.iter().zip([a, b, c]) {
            assert!((g - w).abs() < 1e-3 * w, "{got:?}");
        }
    }
}
