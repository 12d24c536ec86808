//! The rules that refine by nesting or by panels, beside Gauss–Legendre and the Riemann family:
//! Clenshaw–Curtis, tanh–sinh (double exponential) and composite Gauss–Kronrod (G7/K15 panels).
//! Nodes are computed so that a refined rule contains the coarser one's nodes bit for bit where
//! the rule nests (Clenshaw–Curtis and tanh–sinh at n → 2n − 1), which lets a driver that caches
//! integrand values by `alpha.to_bits()` reuse every point.

use super::kronrod::{equal_panels, kronrod_nodes};
use std::f64::consts::PI;

/// The most points these rules are built for (Clenshaw–Curtis weights cost O(n²)).
pub const MAX_POINTS: usize = 16_385;

/// Half-width of the tanh–sinh window in t: the outermost nodes sit at t = ±3, where
/// α = 1/(1 + e^{π sinh 3}) ≈ 2e−14 and the weight is ≈ 7e−13·h, below what f64 sums resolve.
pub const TANH_SINH_T: f64 = 3.0;

/// Clenshaw–Curtis on [0, 1] with n ≥ 2 points: α_k = sin²(kπ / 2N), N = n − 1 (the Chebyshev
/// extrema, both ends included), and the classical weights
/// w_k = c_k/(2N) · (1 − Σ_{j=1}^{⌊N/2⌋} b_j cos(2jkπ/N) / (4j² − 1)), c = 1 at the ends and 2
/// inside, b_j = 1 for j = N/2 and 2 otherwise. Exact for polynomials of degree ≤ n − 1, and
/// (like Gauss–Legendre) nearly as accurate as a Gauss rule for smooth integrands; it nests:
/// the nodes at n are among those at 2n − 1.
pub fn clenshaw_curtis(n: usize) -> (Vec<f64>, Vec<f64>) {
    let big_n = n - 1;
    let nf = big_n as f64;
    let alphas = (0..n)
        .map(|k| {
            // The same expression at every level: kπ/(2N) = (2k)π/(4N) bit for bit.
            let s = ((k as f64) * PI / (2.0 * nf)).sin();
            s * s
        })
        .collect();
    let weights = (0..n)
        .map(|k| {
            let mut s = 0.0;
            for j in 1..=big_n / 2 {
                let b = if 2 * j == big_n { 1.0 } else { 2.0 };
                // cos(2jkπ/N) with the angle reduced mod 2π exactly in integers.
                let m = (2 * j * k) % (2 * big_n);
                s += b * ((m as f64) * PI / nf).cos() / (4.0 * (j * j) as f64 - 1.0);
            }
            let c = if k == 0 || k == big_n { 1.0 } else { 2.0 };
            c / (2.0 * nf) * (1.0 - s)
        })
        .collect();
    (alphas, weights)
}

/// tanh–sinh (double exponential) on [0, 1] with n ≥ 3 points: the trapezoid rule in t on
/// t_k = (2k − N)·T/N, k = 0..N (N = n − 1, T = [`TANH_SINH_T`]) after the substitution
/// α = ½(1 + tanh(½π sinh t)), so w_k = h · ¼π cosh t_k / cosh²(½π sinh t_k) with h = 2T/N. The
/// nodes crowd towards both ends of the path double-exponentially (the first one at α ≈ 2e−14),
/// where a zero baseline entering a norm layer makes F jump; it nests at n → 2n − 1.
pub fn tanh_sinh(n: usize) -> (Vec<f64>, Vec<f64>) {
    let big_n = (n - 1) as f64;
    let h = 2.0 * TANH_SINH_T / big_n;
    let mut alphas = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for k in 0..n {
        let t = ((2 * k) as f64 - big_n) * TANH_SINH_T / big_n;
        let u = 0.5 * PI * t.sinh();
        // ½(1 + tanh u) = 1/(1 + e^{−2u}); computed from the small side to keep its digits.
        let e = (-2.0 * u.abs()).exp();
        let small = e / (1.0 + e);
        alphas.push(if u >= 0.0 { 1.0 - small } else { small });
        // sech²u = 4e^{−2|u|}/(1 + e^{−2|u|})²; dα/dt = ½ · ½π cosh t · sech²u.
        let sech2 = 4.0 * e / ((1.0 + e) * (1.0 + e));
        weights.push(h * 0.25 * PI * t.cosh() * sech2);
    }
    (alphas, weights)
}

/// Panels of the composite Gauss–Kronrod rule asked for n points: round(n/15), at least one.
pub fn kronrod_panels(n: usize) -> usize {
    ((n + 7) / 15).max(1)
}

/// Composite Gauss–Kronrod: the 15-point Kronrod rule on each of `panels` equal panels of
/// [0, 1] (15·panels points, ascending).
pub fn composite_kronrod(panels: usize) -> (Vec<f64>, Vec<f64>) {
    kronrod_nodes(&equal_panels(panels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quad(nw: &(Vec<f64>, Vec<f64>), f: impl Fn(f64) -> f64) -> f64 {
        nw.0.iter().zip(&nw.1).map(|(&a, &w)| w * f(a)).sum()
    }

    #[test]
    fn clenshaw_curtis_is_exact_to_degree_n_minus_1_and_nests() {
        for n in [2usize, 3, 5, 9, 17, 33] {
            let nw = clenshaw_curtis(n);
            for d in 0..n {
                let exact = 1.0 / (d as f64 + 1.0);
                let q = quad(&nw, |a| a.powi(d as i32));
                assert!(
                    (q - exact).abs() < 1e-13,
                    "n {n} degree {d}: {q} vs {exact}"
                );
            }
            assert!(nw.0.windows(2).all(|w| w[0] < w[1]));
            assert_eq!((nw.0[0], nw.0[n - 1]), (0.0, 1.0));
            let fine = clenshaw_curtis(2 * n - 1);
            for (k, a) in nw.0.iter().enumerate() {
                assert_eq!(a.to_bits(), fine.0[2 * k].to_bits(), "n {n} node {k}");
            }
        }
    }

    #[test]
    fn tanh_sinh_converges_double_exponentially_and_nests() {
        // An integrand with end-point singularities of the derivative: ∫ √(α(1 − α)) = π/8.
        let f = |a: f64| (a * (1.0 - a)).sqrt();
        let mut errs = Vec::new();
        for n in [7usize, 13, 25, 49, 97] {
            let nw = tanh_sinh(n);
            assert!(nw.0.windows(2).all(|w| w[0] < w[1]));
            errs.push((quad(&nw, f) - PI / 8.0).abs());
            let fine = tanh_sinh(2 * n - 1);
            for (k, a) in nw.0.iter().enumerate() {
                assert_eq!(a.to_bits(), fine.0[2 * k].to_bits(), "n {n} node {k}");
            }
        }
        assert!(errs[4] < 1e-12, "{errs:?}");
        // Each doubling at least squares the error's relative size once past the start.
        assert!(
            errs[3] < errs[2] * 1e-2 && errs[2] < errs[1] * 1e-1,
            "{errs:?}"
        );
        // Σw → 1.
        let s: f64 = tanh_sinh(97).1.iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn composite_kronrod_is_exact_for_degree_22_per_panel() {
        assert_eq!(kronrod_panels(4), 1);
        assert_eq!(kronrod_panels(22), 1);
        assert_eq!(kronrod_panels(23), 2);
        assert_eq!(kronrod_panels(50), 3);
        for p in [1usize, 3] {
            let nw = composite_kronrod(p);
            assert_eq!(nw.0.len(), 15 * p);
            let q = quad(&nw, |a| a.powi(22));
            assert!((q - 1.0 / 23.0).abs() < 1e-14);
        }
    }
}
