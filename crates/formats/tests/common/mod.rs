//! Deterministic inputs shared by the tests. `golden_inputs` mirrors the C
//! generator used to make tests/golden/*.bin (see tests/golden/README.md): only
//! exact or singly rounded IEEE ops in a fixed order, so both produce the same bits.

#![allow(dead_code)]

pub struct Rng(pub u64);

impl Rng {
    /// splitmix64.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform [0, 1) with 24 random bits (exact).
    pub fn unif(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Irwin-Hall(4) rescaled to unit variance: close to N(0, 1), no libm.
    pub fn gauss(&mut self) -> f32 {
        let (a, b, c, d) = (self.unif(), self.unif(), self.unif(), self.unif());
        (((a + b) + c) + d - 2.0) * 1.732_050_8
    }
}

pub const G_ROWS: usize = 16;
pub const G_COLS: usize = 256;

/// The 16 x 256 golden rows: zeros, constants, gaussian, a huge outlier,
/// subnormals, signed zeros, exact rounding ties, small integers, heavy tail,
/// tiny/huge scales, one-signed rows, a near-empty row, per-sub-block scales.
pub fn golden_inputs() -> Vec<f32> {
    let mut r = Rng(0x5EED_0001);
    let mut x = vec![0.0f32; G_ROWS * G_COLS];
    for i in 0..G_ROWS {
        for j in 0..G_COLS {
            x[i * G_COLS + j] = match i {
                0 => 0.0,
                1 => 0.5,
                2 => -3.25,
                3 => r.gauss(),
                4 if j == 77 => 10000.0,
                4 => r.gauss(),
                5 => r.gauss() * 1e-39,
                6 => match j % 4 {
                    0 => 0.0,
                    1 => -0.0,
                    _ => r.gauss() * 0.01,
                },
                7 if j % 32 == 0 => 127.0,
                7 => ((j * 37 % 255) as i32 - 127) as f32 * 0.5,
                8 if j % 32 == 0 => -8.0,
                8 => ((j * 13 % 16) as i32 - 8) as f32,
                9 => {
                    let g = r.gauss();
                    if r.next_u64() >> 59 == 0 { g * 50.0 } else { g }
                }
                10 => r.gauss() * 1e-3,
                11 => r.gauss() * 1e3,
                12 => r.unif(),
                13 => -r.unif() - 0.5,
                14 if j == 100 => 0.75,
                14 if j == 200 => -1e-3,
                14 => 0.0,
                _ => r.gauss() * ((1u32 << (j / 32)) as f32 / 256.0),
            };
        }
    }
    x
}

/// `rows x cols` approximately N(0, 1) weights.
pub fn gaussian(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..rows * cols).map(|_| r.gauss()).collect()
}

/// Relative RMS error ||a - b|| / ||b||.
pub fn rel_rms(a: &[f32], b: &[f32]) -> f32 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += f64::from(x - y).powi(2);
        den += f64::from(y).powi(2);
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt() as f32
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
