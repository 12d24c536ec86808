//! Quadrature rules, Captum's exact numbers, batching and the adaptive driver (`gradpath::integrate`).
//!
//! Reference values were printed with numpy 2.4.6 (`numpy.polynomial.legendre.leggauss`) and
//! torch 2.5.1 (`torch.linspace`, float32) from the reference environment (.refenv, scripts/setup-refenv.sh).

use gradpath::integrate::{
    captum_exact, captum_name, chunks, refine, torch_linspace_f32, uniform_panels, Rule, Stop,
};
use gradpath::Error;

const TEXTBOOK: [Rule; 5] = [
    Rule::GaussLegendre,
    Rule::RiemannLeft,
    Rule::RiemannRight,
    Rule::RiemannMiddle,
    Rule::RiemannTrapezoid,
];

fn quad(rule: Rule, n: usize, f: impl Fn(f64) -> f64) -> f64 {
    let (a, w) = rule.nodes_weights(n).unwrap();
    a.iter().zip(&w).map(|(&a, &w)| w * f(a)).sum()
}

fn exp_error(rule: Rule, n: usize) -> f64 {
    (quad(rule, n, f64::exp) - (std::f64::consts::E - 1.0)).abs()
}

fn assert_invalid<T: std::fmt::Debug>(r: gradpath::Result<T>, needle: &str) {
    match r {
        Err(Error::Invalid { detail, .. }) => {
            assert!(
                detail.contains(needle),
                "message {detail:?} lacks {needle:?}"
            )
        }
        other => panic!("expected Error::Invalid containing {needle:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- names

#[test]
fn names_round_trip_and_default() {
    for r in Rule::ALL {
        assert_eq!(Rule::parse(r.name()).unwrap(), r);
        assert_eq!(r.name().parse::<Rule>().unwrap(), r);
        assert_eq!(r.to_string(), r.name());
    }
    assert_eq!(Rule::default(), Rule::GaussLegendre);
    assert_eq!(Rule::GaussLegendre.name(), "gauss-legendre");
    assert_eq!(Rule::CaptumTrapezoid.name(), "captum-trapezoid");
    assert_eq!(
        captum_name(Rule::CaptumTrapezoid),
        Some("riemann_trapezoid")
    );
    assert_eq!(captum_name(Rule::RiemannTrapezoid), None);
}

// ---------------------------------------------------------------- (a) weight sums, nodes

#[test]
fn textbook_weights_sum_to_one() {
    for rule in TEXTBOOK {
        for n in [rule.min_points(), 2, 3, 7, 10, 20, 50, 128, 1000] {
            let (a, w) = rule.nodes_weights(n).unwrap();
            assert_eq!((a.len(), w.len()), (n, n));
            let s: f64 = w.iter().sum();
            assert!((s - 1.0).abs() < 1e-13, "{rule} n={n}: Σw = {s}");
            assert!(w.iter().all(|&w| w > 0.0));
            assert!(
                a.windows(2).all(|p| p[0] < p[1]),
                "{rule} n={n}: nodes not ascending"
            );
            assert!(a[0] >= 0.0 && a[n - 1] <= 1.0);
        }
    }
}

#[test]
fn captum_trapezoid_weights_sum_to_n_minus_1_over_n() {
    for n in [2usize, 3, 10, 20, 50, 1000] {
        let (a, w) = Rule::CaptumTrapezoid.nodes_weights(n).unwrap();
        let s: f64 = w.iter().sum();
        let want = (n as f64 - 1.0) / n as f64;
        assert!((s - want).abs() < 1e-13, "n={n}: Σw = {s}, want {want}");
        assert_eq!(w[0], 0.5 / n as f64);
        assert_eq!(w[n - 1], 0.5 / n as f64);
        // Same nodes as the textbook trapezoid, which it equals times (n−1)/n.
        let (ta, tw) = Rule::RiemannTrapezoid.nodes_weights(n).unwrap();
        assert_eq!(a, ta);
        for (c, t) in w.iter().zip(&tw) {
            assert!((c - t * want).abs() < 1e-16);
        }
    }
    // The figures METHODS.md quotes.
    let sum = |n| {
        Rule::CaptumTrapezoid
            .nodes_weights(n)
            .unwrap()
            .1
            .iter()
            .sum::<f64>()
    };
    assert!((sum(50) - 0.98).abs() < 1e-14 && (sum(20) - 0.95).abs() < 1e-14);
}

#[test]
fn riemann_nodes_are_the_formulas() {
    let n = 8;
    let (l, _) = Rule::RiemannLeft.nodes_weights(n).unwrap();
    let (r, _) = Rule::RiemannRight.nodes_weights(n).unwrap();
    let (m, _) = Rule::RiemannMiddle.nodes_weights(n).unwrap();
    let (t, tw) = Rule::RiemannTrapezoid.nodes_weights(n).unwrap();
    for k in 0..n {
        let kf = k as f64;
        assert_eq!(l[k], kf / 8.0);
        assert_eq!(r[k], (kf + 1.0) / 8.0);
        assert_eq!(m[k], (kf + 0.5) / 8.0);
        assert_eq!(t[k], kf / 7.0);
    }
    assert_eq!(tw[0], 0.5 / 7.0);
    assert_eq!(tw[3], 1.0 / 7.0);
}

// ---------------------------------------------------------------- (b) Gauss–Legendre vs numpy

/// `numpy.polynomial.legendre.leggauss(n)` printed with `repr`, (ξ, ω) on [−1, 1].
const LEGGAUSS: [(usize, &[f64], &[f64]); 4] = [
    (1, &[0.0], &[2.0]),
    (2, &[-0.5773502691896257, 0.5773502691896257], &[1.0, 1.0]),
    (
        3,
        &[-0.7745966692414834, 0.0, 0.7745966692414834],
        &[0.5555555555555557, 0.8888888888888888, 0.5555555555555557],
    ),
    (
        5,
        &[
            -0.906179845938664,
            -0.5384693101056831,
            0.0,
            0.5384693101056831,
            0.906179845938664,
        ],
        &[
            0.23692688505618928,
            0.4786286704993663,
            0.5688888888888887,
            0.4786286704993663,
            0.23692688505618928,
        ],
    ),
];

#[test]
fn gauss_legendre_matches_numpy_small_n() {
    for (n, xi, omega) in LEGGAUSS {
        let (a, w) = Rule::GaussLegendre.nodes_weights(n).unwrap();
        for k in 0..n {
            let (na, nw) = (0.5 * (1.0 + xi[k]), 0.5 * omega[k]);
            assert!(
                (a[k] - na).abs() <= 2.3e-16,
                "n={n} k={k}: α {} vs numpy {na}",
                a[k]
            );
            assert!(
                (w[k] - nw).abs() <= 2.3e-16,
                "n={n} k={k}: w {} vs numpy {nw}",
                w[k]
            );
        }
    }
    // Closed forms, within 2 ulps: α = ½(1 ∓ 1/√3); ½(1 ∓ √(3/5)), w = 5/18, 8/18.
    let close = |x: f64, y: f64| (x - y).abs() <= 2.0 * f64::EPSILON * y.abs();
    let (a, w) = Rule::GaussLegendre.nodes_weights(2).unwrap();
    assert!(close(a[0], 0.5 * (1.0 - 1.0 / 3f64.sqrt())) && close(w[0], 0.5) && close(w[1], 0.5));
    let (a, w) = Rule::GaussLegendre.nodes_weights(3).unwrap();
    assert_eq!(a[1], 0.5);
    assert!(close(a[2], 0.5 * (1.0 + 0.6f64.sqrt())));
    assert!(
        close(w[0], 5.0 / 18.0) && close(w[1], 8.0 / 18.0) && w[0] == w[2],
        "{w:?}"
    );
}

#[test]
fn gauss_legendre_matches_numpy_n50() {
    // (index, α = ½(1+ξ), w = ½ω) from numpy's leggauss(50).
    let want: [(usize, f64, f64); 6] = [
        (0, 0.0005667977899644905, 0.0014543112765789633),
        (1, 0.002984015283954644, 0.003379899597872283),
        (24, 0.48445083083640555, 0.031088308327673515),
        (25, 0.5155491691635944, 0.031088308327673515),
        (48, 0.9970159847160454, 0.003379899597872283),
        (49, 0.9994332022100355, 0.0014543112765789633),
    ];
    let (a, w) = Rule::GaussLegendre.nodes_weights(50).unwrap();
    for (k, na, nw) in want {
        assert!((a[k] - na).abs() <= 2.3e-16, "k={k}: α {} vs {na}", a[k]);
        // numpy's own weights are off by up to 1e−12 relative at the outermost nodes (see
        // gauss_legendre_against_40_digit_references); in the interior we agree to ulps.
        let tol = if k == 0 || k == 49 {
            2e-12
        } else if k == 1 || k == 48 {
            3e-13
        } else {
            1e-14
        };
        assert!(((w[k] - nw) / nw).abs() <= tol, "k={k}: w {} vs {nw}", w[k]);
    }
    // The range METHODS.md states: α ∈ [0.000567, 0.999433] (n = 50), [0.00344, 0.99656] (n = 20).
    assert!((a[0] - 0.000567).abs() < 5e-7 && (a[49] - 0.999433).abs() < 5e-7);
    let (a20, _) = Rule::GaussLegendre.nodes_weights(20).unwrap();
    assert!((a20[0] - 0.00344).abs() < 5e-6 && (a20[19] - 0.99656).abs() < 5e-6);
    // Exact symmetry, as numpy symmetrises: α_k + α_{n−1−k} = 1, w_k = w_{n−1−k}.
    for k in 0..50 {
        assert!((a[k] + a[49 - k] - 1.0).abs() <= 1.2e-16);
        assert_eq!(w[k], w[49 - k]);
    }
}

/// (n, k, α, w) from a 40-digit Newton iteration in mpmath (printed to 30 digits).
#[allow(clippy::excessive_precision)] // the full 30-digit references, on purpose
const MP_REFERENCE: [(usize, usize, f64, f64); 9] = [
    (
        50,
        0,
        0.000566797789964474907270277512891,
        0.00145431127657757047920036217143,
    ),
    (
        50,
        1,
        0.00298401528395464370744589978965,
        0.00337989959787270075138943908899,
    ),
    (
        50,
        24,
        0.484450830836405561943835505167,
        0.0310883083276736311605165536803,
    ),
    (
        500,
        0,
        0.00000577162389352167477771791130515,
        0.0000148118222427414185757527368397,
    ),
    (
        500,
        249,
        0.498430776259467066941333083218,
        0.00313843717659996514995294468785,
    ),
    (
        2000,
        0,
        0.000000361268414844329811684960750275,
        0.000000927131305106636409861209596244,
    ),
    (
        2000,
        1,
        0.00000190350077908730109310027212881,
        0.00000215818298047033245957039230874,
    ),
    (
        2000,
        500,
        0.146793804156612587875272946036,
        0.000555766228253298264603705090524,
    ),
    (
        2000,
        1000,
        0.500392600878860723621757897338,
        0.00078520159635149559075567558681,
    ),
];

#[test]
fn gauss_legendre_against_40_digit_references() {
    for (n, k, ra, rw) in MP_REFERENCE {
        let (a, w) = Rule::GaussLegendre.nodes_weights(n).unwrap();
        assert!(
            (a[k] - ra).abs() <= 1.2e-16,
            "n={n} k={k}: α off by {:e}",
            a[k] - ra
        );
        let rel = ((w[k] - rw) / rw).abs();
        // Interior: ulps. Outermost nodes: the root's rounding limits the weight to ~n²·1e−18.
        let tol = if k < 2 {
            3e-18 * (n * n) as f64 + 2e-14
        } else {
            2e-14
        };
        assert!(
            rel <= tol,
            "n={n} k={k}: relative weight error {rel:e} > {tol:e}"
        );
        // Absolute accuracy is ~1e−15 or better everywhere.
        assert!((w[k] - rw).abs() < 1e-16);
    }
}

#[test]
fn gauss_legendre_large_n() {
    for n in [500usize, 2000] {
        let (a, w) = Rule::GaussLegendre.nodes_weights(n).unwrap();
        assert!(a.windows(2).all(|p| p[0] < p[1]));
        assert!(a[0] > 0.0 && a[n - 1] < 1.0);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-13);
        // Still integrates smooth things to machine precision.
        let q: f64 = a.iter().zip(&w).map(|(&a, &w)| w * (3.0 * a).cos()).sum();
        assert!((q - 3f64.sin() / 3.0).abs() < 1e-14, "n={n}: {q}");
    }
}

// ---------------------------------------------------------------- (c) exactness

#[test]
fn gauss_legendre_is_exact_for_degree_2n_minus_1() {
    for n in 1..=20usize {
        let d = 2 * n - 1;
        let q = quad(Rule::GaussLegendre, n, |x| x.powi(d as i32));
        let exact = 1.0 / (d as f64 + 1.0);
        assert!(
            (q - exact).abs() < 1e-14,
            "n={n}: ∫x^{d} = {q}, want {exact}"
        );
        // …and not for degree 2n (the error (n!)⁴/((2n+1)((2n)!)²) is still visible up to n = 8).
        if n <= 8 {
            let q2 = quad(Rule::GaussLegendre, n, |x| x.powi(2 * n as i32));
            assert!((q2 - 1.0 / (2.0 * n as f64 + 1.0)).abs() > 1e-10, "n={n}");
        }
    }
}

#[test]
fn midpoint_and_trapezoid_are_exact_for_linear() {
    for n in [2usize, 5, 9] {
        for rule in [Rule::RiemannMiddle, Rule::RiemannTrapezoid] {
            let q = quad(rule, n, |x| 3.0 * x - 1.0);
            assert!((q - 0.5).abs() < 1e-15, "{rule} n={n}: {q}");
        }
    }
}

// ---------------------------------------------------------------- (d) convergence on ∫₀¹ eˣ

#[test]
fn convergence_orders_on_exp() {
    let table: Vec<(Rule, [f64; 3])> = TEXTBOOK
        .iter()
        .chain([Rule::CaptumTrapezoid].iter())
        .map(|&r| (r, [10, 20, 50].map(|n| exp_error(r, n))))
        .collect();
    println!(
        "|∫₀¹ eˣ dx − Q_n|:\n{:<18} {:>10} {:>10} {:>10}",
        "rule", "n=10", "n=20", "n=50"
    );
    for (r, e) in &table {
        println!(
            "{:<18} {:>10.3e} {:>10.3e} {:>10.3e}",
            r.name(),
            e[0],
            e[1],
            e[2]
        );
    }
    for n in 1..=6 {
        println!(
            "gauss-legendre n={n}: {:.3e}",
            exp_error(Rule::GaussLegendre, n)
        );
    }
    let ratio = |r: Rule, n: usize| exp_error(r, n) / exp_error(r, 2 * n);
    for n in [10usize, 20, 40] {
        // First order: halving h halves the error; second order: quarters it.
        for r in [Rule::RiemannLeft, Rule::RiemannRight] {
            let q = ratio(r, n);
            assert!((q - 2.0).abs() < 0.1, "{r} n={n}: ratio {q}");
        }
        let q = ratio(Rule::RiemannMiddle, n);
        assert!((q - 4.0).abs() < 0.05, "middle n={n}: ratio {q}");
    }
    // Trapezoid on h = 1/(n−1): the error scales with (n−1)², compare n−1 = 10 → 20 → 40.
    for m in [10usize, 20] {
        let q =
            exp_error(Rule::RiemannTrapezoid, m + 1) / exp_error(Rule::RiemannTrapezoid, 2 * m + 1);
        assert!((q - 4.0).abs() < 0.05, "trapezoid h=1/{m}: ratio {q}");
    }
    // Leading terms: left/right error ≈ (e−1)/(2n); midpoint ≈ (e−1)/(24n²); trapezoid ≈ (e−1)/(12(n−1)²).
    let e1 = std::f64::consts::E - 1.0;
    assert!((exp_error(Rule::RiemannLeft, 50) / (e1 / 100.0) - 1.0).abs() < 0.02);
    assert!((exp_error(Rule::RiemannMiddle, 50) / (e1 / (24.0 * 2500.0)) - 1.0).abs() < 0.01);
    assert!(
        (exp_error(Rule::RiemannTrapezoid, 50) / (e1 / (12.0 * 49.0 * 49.0)) - 1.0).abs() < 0.01
    );
    // Gauss–Legendre: spectral. Each extra point buys more than an order of magnitude until
    // round-off; by n = 8 it is at machine precision.
    let gl: Vec<f64> = (1..=5).map(|n| exp_error(Rule::GaussLegendre, n)).collect();
    for p in gl.windows(2) {
        assert!(p[1] < p[0] / 30.0, "GL errors {gl:?}");
    }
    for n in [8usize, 10, 20, 50] {
        assert!(exp_error(Rule::GaussLegendre, n) < 2e-15, "GL n={n}");
    }
    // Captum's trapezoid is biased low by (e−1)/n.
    for n in [10usize, 20, 50] {
        let q = quad(Rule::CaptumTrapezoid, n, f64::exp);
        let t = quad(Rule::RiemannTrapezoid, n, f64::exp);
        assert!((q - t * (n as f64 - 1.0) / n as f64).abs() < 1e-14);
        assert!(((e1 - q) / (e1 / n as f64) - 1.0).abs() < 0.02, "n={n}");
    }
}

// ---------------------------------------------------------------- Captum's exact numbers

/// `torch.linspace(start, end, 50)` (float32) bit patterns, torch 2.5.1, for Captum's four Riemann
/// ranges at its default n_steps = 50.
const TORCH_LINSPACE_50: [(Rule, [u32; 50]); 4] = [
    (
        Rule::RiemannLeft,
        [
            0x00000000, 0x3ca3d70a, 0x3d23d70a, 0x3d75c28f, 0x3da3d70a, 0x3dcccccc, 0x3df5c28f,
            0x3e0f5c29, 0x3e23d70a, 0x3e3851eb, 0x3e4ccccc, 0x3e6147ae, 0x3e75c28f, 0x3e851eb8,
            0x3e8f5c29, 0x3e999999, 0x3ea3d70a, 0x3eae147b, 0x3eb851eb, 0x3ec28f5c, 0x3ecccccc,
            0x3ed70a3d, 0x3ee147ae, 0x3eeb851e, 0x3ef5c28f, 0x3f000000, 0x3f051eb9, 0x3f0a3d71,
            0x3f0f5c29, 0x3f147ae2, 0x3f19999a, 0x3f1eb852, 0x3f23d70b, 0x3f28f5c3, 0x3f2e147b,
            0x3f333334, 0x3f3851ec, 0x3f3d70a4, 0x3f428f5d, 0x3f47ae15, 0x3f4ccccd, 0x3f51eb86,
            0x3f570a3e, 0x3f5c28f6, 0x3f6147ae, 0x3f666667, 0x3f6b851f, 0x3f70a3d7, 0x3f75c290,
            0x3f7ae148,
        ],
    ),
    (
        Rule::RiemannRight,
        [
            0x3ca3d70a, 0x3d23d70a, 0x3d75c28f, 0x3da3d70a, 0x3dcccccc, 0x3df5c28f, 0x3e0f5c29,
            0x3e23d70a, 0x3e3851eb, 0x3e4ccccc, 0x3e6147ae, 0x3e75c28f, 0x3e851eb8, 0x3e8f5c29,
            0x3e999999, 0x3ea3d70a, 0x3eae147b, 0x3eb851eb, 0x3ec28f5c, 0x3ecccccc, 0x3ed70a3d,
            0x3ee147ae, 0x3eeb851e, 0x3ef5c28f, 0x3f000000, 0x3f051eb8, 0x3f0a3d71, 0x3f0f5c29,
            0x3f147ae1, 0x3f19999a, 0x3f1eb852, 0x3f23d70a, 0x3f28f5c3, 0x3f2e147b, 0x3f333333,
            0x3f3851ec, 0x3f3d70a4, 0x3f428f5c, 0x3f47ae15, 0x3f4ccccd, 0x3f51eb85, 0x3f570a3e,
            0x3f5c28f6, 0x3f6147ae, 0x3f666666, 0x3f6b851f, 0x3f70a3d7, 0x3f75c28f, 0x3f7ae148,
            0x3f800000,
        ],
    ),
    (
        Rule::RiemannMiddle,
        [
            0x3c23d70a, 0x3cf5c28f, 0x3d4ccccc, 0x3d8f5c29, 0x3db851eb, 0x3de147ae, 0x3e051eb8,
            0x3e199999, 0x3e2e147b, 0x3e428f5c, 0x3e570a3d, 0x3e6b851e, 0x3e800000, 0x3e8a3d70,
            0x3e947ae1, 0x3e9eb852, 0x3ea8f5c2, 0x3eb33333, 0x3ebd70a4, 0x3ec7ae14, 0x3ed1eb85,
            0x3edc28f5, 0x3ee66666, 0x3ef0a3d7, 0x3efae147, 0x3f028f5c, 0x3f07ae15, 0x3f0ccccd,
            0x3f11eb85, 0x3f170a3e, 0x3f1c28f6, 0x3f2147ae, 0x3f266667, 0x3f2b851f, 0x3f30a3d7,
            0x3f35c290, 0x3f3ae148, 0x3f400000, 0x3f451eb9, 0x3f4a3d71, 0x3f4f5c29, 0x3f547ae2,
            0x3f59999a, 0x3f5eb852, 0x3f63d70a, 0x3f68f5c3, 0x3f6e147b, 0x3f733333, 0x3f7851ec,
            0x3f7d70a4,
        ],
    ),
    (
        Rule::CaptumTrapezoid,
        [
            0x00000000, 0x3ca72f05, 0x3d272f05, 0x3d7ac688, 0x3da72f05, 0x3dd0fac6, 0x3dfac688,
            0x3e124924, 0x3e272f05, 0x3e3c14e6, 0x3e50fac6, 0x3e65e0a7, 0x3e7ac688, 0x3e87d634,
            0x3e924924, 0x3e9cbc15, 0x3ea72f05, 0x3eb1a1f5, 0x3ebc14e6, 0x3ec687d6, 0x3ed0fac6,
            0x3edb6db7, 0x3ee5e0a7, 0x3ef05397, 0x3efac688, 0x3f029cbc, 0x3f07d634, 0x3f0d0fad,
            0x3f124925, 0x3f17829d, 0x3f1cbc15, 0x3f21f58d, 0x3f272f05, 0x3f2c687e, 0x3f31a1f6,
            0x3f36db6e, 0x3f3c14e6, 0x3f414e5e, 0x3f4687d6, 0x3f4bc14e, 0x3f50fac7, 0x3f56343f,
            0x3f5b6db7, 0x3f60a72f, 0x3f65e0a7, 0x3f6b1a1f, 0x3f705398, 0x3f758d10, 0x3f7ac688,
            0x3f800000,
        ],
    ),
];

#[test]
fn captum_riemann_alphas_are_torch_f32_linspace() {
    for (rule, bits) in TORCH_LINSPACE_50 {
        let (a, w) = captum_exact(rule, 50).unwrap();
        let mut naive_differs = 0;
        let (ideal, _) = rule.nodes_weights(50).unwrap();
        for k in 0..50 {
            let t = f32::from_bits(bits[k]);
            assert_eq!(a[k], t as f64, "{rule} k={k}");
            if (ideal[k] as f32) != t {
                naive_differs += 1;
            }
        }
        // torch's f32 linspace is not the f32 rounding of k/n: a port that rounds k/n misses.
        assert!(naive_differs >= 9, "{rule}: {naive_differs}");
        let w32 = (1.0f64 / 50.0) as f32 as f64;
        assert_ne!(w32, 1.0 / 50.0);
        if rule == Rule::CaptumTrapezoid {
            let e32 = (0.5f64 / 50.0) as f32 as f64;
            assert_eq!((w[0], w[49]), (e32, e32));
            assert!(w[1..49].iter().all(|&x| x == w32));
        } else {
            assert!(w.iter().all(|&x| x == w32), "{rule}");
        }
    }
    // The raw linspace, directly.
    let l = torch_linspace_f32(0.0, 1.0 - 1.0 / 50.0, 50);
    assert_eq!(
        l.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        TORCH_LINSPACE_50[0].1
    );
}

#[test]
fn captum_gauss_legendre_rounds_weights_not_alphas() {
    let n = 50;
    let (a, w) = captum_exact(Rule::GaussLegendre, n).unwrap();
    let (ia, iw) = Rule::GaussLegendre.nodes_weights(n).unwrap();
    assert_eq!(a, ia, "Captum's GL alphas are numpy f64, not rounded");
    let mut rounded = 0;
    for k in 0..n {
        assert_eq!(w[k], iw[k] as f32 as f64);
        if w[k] != iw[k] {
            rounded += 1;
        }
    }
    assert!(
        rounded > 40,
        "f32 rounding changes (almost) every weight: {rounded}"
    );
    // numpy's n=50 weights, rounded to f32, give the same values.
    assert_eq!(w[0], 0.0014543112765789633f64 as f32 as f64);
    assert_eq!(w[24], 0.031088308327673515f64 as f32 as f64);
    // The f32 weights no longer sum to 1 exactly (they are off by ~1e-9 here).
    let s: f64 = w.iter().sum();
    assert!((s - 1.0).abs() < 1e-7);
}

#[test]
fn captum_exact_errors() {
    assert_invalid(captum_exact(Rule::RiemannTrapezoid, 50), "captum-trapezoid");
    assert_invalid(captum_exact(Rule::GaussLegendre, 0), "n ≥ 1");
    for r in [
        Rule::RiemannLeft,
        Rule::RiemannRight,
        Rule::RiemannMiddle,
        Rule::CaptumTrapezoid,
    ] {
        assert_invalid(captum_exact(r, 1), "n ≥ 2");
        assert!(captum_exact(r, 2).is_ok());
    }
    assert!(captum_exact(Rule::GaussLegendre, 1).is_ok());
}

// ---------------------------------------------------------------- composite Gauss–Legendre

#[test]
fn composite_gauss_legendre() {
    // Exact per panel: 3 points integrate a piecewise quintic whose kink sits on a panel edge.
    let f = |x: f64| if x < 0.3 { x.powi(5) } else { 1.0 - x };
    let exact = 0.3f64.powi(6) / 6.0 + 0.7 * 0.7 / 2.0;
    let (a, w) = Rule::composite_gauss_legendre(&[(0.0, 0.3), (0.3, 1.0)], 3).unwrap();
    assert_eq!(a.len(), 6);
    assert!(a.windows(2).all(|p| p[0] < p[1]));
    let q: f64 = a.iter().zip(&w).map(|(&a, &w)| w * f(a)).sum();
    assert!((q - exact).abs() < 1e-15, "{q} vs {exact}");
    // The plain rule with the same number of points cannot resolve the kink.
    assert!((quad(Rule::GaussLegendre, 6, f) - exact).abs() > 1e-4);
    // One panel [0, 1] is the plain rule; uniform panels cover [0, 1] with weights summing to 1.
    assert_eq!(
        Rule::composite_gauss_legendre(&[(0.0, 1.0)], 7).unwrap(),
        Rule::GaussLegendre.nodes_weights(7).unwrap()
    );
    let (_, w) = Rule::composite_gauss_legendre(&uniform_panels(4).unwrap(), 5).unwrap();
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    // Bad panels.
    assert_invalid(Rule::composite_gauss_legendre(&[], 3), "no panels");
    assert_invalid(
        Rule::composite_gauss_legendre(&[(0.5, 0.2)], 3),
        "subinterval",
    );
    assert_invalid(
        Rule::composite_gauss_legendre(&[(0.0, 1.5)], 3),
        "subinterval",
    );
    assert_invalid(
        Rule::composite_gauss_legendre(&[(0.0, 0.6), (0.5, 1.0)], 3),
        "before",
    );
    assert_invalid(Rule::composite_gauss_legendre(&[(0.0, 1.0)], 0), "n ≥ 1");
    assert_invalid(uniform_panels(0), "panel");
}

// ---------------------------------------------------------------- batching

#[test]
fn chunking() {
    let c = chunks(10, 4).unwrap();
    assert_eq!(c, vec![0..4, 4..8, 8..10]);
    assert_eq!(chunks(8, 4).unwrap(), vec![0..4, 4..8]);
    assert_eq!(chunks(3, 100).unwrap(), vec![0..3]);
    assert_eq!(chunks(5, 1).unwrap().len(), 5);
    assert!(chunks(0, 4).unwrap().is_empty());
    for (n, b) in [(50usize, 7usize), (1, 1), (1000, 33)] {
        let c = chunks(n, b).unwrap();
        assert_eq!(c.first().unwrap().start, 0);
        assert_eq!(c.last().unwrap().end, n);
        assert!(c.windows(2).all(|p| p[0].end == p[1].start));
        assert!(c.iter().all(|r| !r.is_empty() && r.len() <= b));
    }
}

// ---------------------------------------------------------------- (e) errors

#[test]
fn bad_arguments_are_errors() {
    for r in Rule::ALL {
        assert_invalid(r.nodes_weights(0), "got n = 0");
    }
    assert_invalid(Rule::RiemannTrapezoid.nodes_weights(1), "n ≥ 2");
    assert_invalid(Rule::CaptumTrapezoid.nodes_weights(1), "n ≥ 2");
    for r in [
        Rule::GaussLegendre,
        Rule::RiemannLeft,
        Rule::RiemannRight,
        Rule::RiemannMiddle,
    ] {
        let (a, w) = r.nodes_weights(1).unwrap();
        assert_eq!(w, vec![1.0]);
        assert!((0.0..=1.0).contains(&a[0]));
    }
    assert_invalid(Rule::GaussLegendre.nodes_weights(1 << 20), "n ≤");
    assert_invalid(chunks(10, 0), "batch size");
    for bad in [
        "",
        "gauss",
        "gausslegendre",
        "riemann_trapezoid",
        "Gauss-Legendre",
        "trapezoid",
    ] {
        match Rule::parse(bad) {
            Err(Error::Unknown { what, value, valid }) => {
                assert_eq!((what, value.as_str()), ("quadrature rule", bad));
                for r in Rule::ALL {
                    assert!(
                        valid.iter().any(|v| v == r.name()),
                        "{valid:?} should list {}",
                        r.name()
                    );
                }
            }
            other => panic!("{bad:?} parsed as {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- (f) adaptive refinement

/// g(α) = cos(3α) + α⁷·20, ∫₀¹ = sin(3)/3 + 2.5. Smooth but needs several GL points.
fn synth(a: f64) -> f64 {
    (3.0 * a).cos() + 20.0 * a.powi(7)
}
fn synth_exact() -> f64 {
    3f64.sin() / 3.0 + 2.5
}

#[test]
fn refine_gauss_legendre_reaches_tolerance() {
    let mut calls = Vec::new();
    let r = refine(
        Rule::GaussLegendre,
        2,
        1000,
        1e-12,
        Stop::Completeness {
            exact: synth_exact(),
        },
        |al| {
            calls.push(al.len());
            Ok(al.iter().map(|&a| synth(a)).collect())
        },
    )
    .unwrap();
    assert!(r.converged && r.delta <= 1e-12, "{r:?}");
    assert_eq!(r.rule, Rule::GaussLegendre);
    // 2 → 4 → 8 → 16: GL with 8 points is exact for the α⁷ part, cos needs ~8 as well.
    let ns: Vec<usize> = r.trajectory.iter().map(|t| t.n).collect();
    assert_eq!(ns[0], 2);
    assert!(ns.windows(2).all(|p| p[1] == 2 * p[0]), "{ns:?}");
    assert_eq!(r.n, *ns.last().unwrap());
    assert!(r.n <= 16, "{ns:?}");
    // GL nodes never nest: every attempt costs its full n, and the count adds up.
    assert_eq!(calls, ns);
    assert_eq!(r.points_used, ns.iter().sum::<usize>());
    assert_eq!(r.trajectory.last().unwrap().points_used, r.points_used);
    // The trajectory's deltas fall, and the last one is the reported delta.
    assert!(r.trajectory.windows(2).all(|p| p[1].delta < p[0].delta));
    assert_eq!(r.trajectory.last().unwrap().delta, r.delta);
    assert_eq!(
        (r.alphas.len(), r.weights.len(), r.values.len()),
        (r.n, r.n, r.n)
    );
    assert!((r.estimate - synth_exact()).abs() < 1e-11);
}

#[test]
fn refine_reuses_nested_points() {
    // Trapezoid: 3 → 5 → 9 → 17 → … nodes nest, so each attempt evaluates only the new midpoints.
    let mut seen: Vec<f64> = Vec::new();
    let r = refine(
        Rule::RiemannTrapezoid,
        3,
        10_000,
        1e-6,
        Stop::Completeness {
            exact: synth_exact(),
        },
        |al| {
            for a in al {
                assert!(!seen.contains(a), "α = {a} evaluated twice");
                seen.push(*a);
            }
            Ok(al.iter().map(|&a| synth(a)).collect())
        },
    )
    .unwrap();
    assert!(r.converged);
    assert_eq!(r.points_used, r.n, "nested: total cost = final n");
    assert_eq!(seen.len(), r.n);
    for t in r.trajectory.windows(2) {
        assert_eq!(t[1].n, 2 * t[0].n - 1);
        assert_eq!(t[1].new_points, t[0].n - 1);
    }
    // Left and middle rules nest too (2n and 3n).
    for (rule, mult) in [(Rule::RiemannLeft, 2usize), (Rule::RiemannMiddle, 3)] {
        let r = refine(
            rule,
            4,
            100_000,
            1e-4,
            Stop::Completeness {
                exact: synth_exact(),
            },
            |al| Ok(al.iter().map(|&a| synth(a)).collect()),
        )
        .unwrap();
        assert!(r.converged, "{rule}: {:?}", r.trajectory);
        assert_eq!(r.points_used, r.n, "{rule}");
        assert!(r.trajectory.windows(2).all(|t| t[1].n == mult * t[0].n));
    }
}

#[test]
fn refine_stops_at_the_budget() {
    // Tolerance far below what f64 can resolve for a first-order rule: unreachable.
    let mut evaluated = 0;
    let r = refine(
        Rule::RiemannLeft,
        10,
        500,
        1e-15,
        Stop::Completeness {
            exact: synth_exact(),
        },
        |al| {
            evaluated += al.len();
            Ok(al.iter().map(|&a| synth(a)).collect())
        },
    )
    .unwrap();
    assert!(!r.converged);
    assert!(r.delta > 1e-15);
    assert_eq!(evaluated, r.points_used);
    assert!(r.points_used <= 500);
    // 10 → 20 → 40 → 80 → 160 → 320 (320 points); 640 would need 320 more.
    assert_eq!(r.n, 320);
    assert_eq!(r.points_used, 320);
    // Gauss–Legendre with an integrand whose delta never drops (noise): 4+8+16+32 = 60 ≤ 100.
    let mut k = 0u32;
    let r = refine(
        Rule::GaussLegendre,
        4,
        100,
        1e-9,
        Stop::Completeness { exact: 1.0 },
        |al| {
            Ok(al
                .iter()
                .map(|_| {
                    k += 1;
                    1.0 + if k.is_multiple_of(2) { 1e-3 } else { -2e-3 }
                })
                .collect())
        },
    )
    .unwrap();
    assert!(!r.converged);
    assert_eq!(
        r.trajectory.iter().map(|t| t.n).collect::<Vec<_>>(),
        vec![4, 8, 16, 32]
    );
    assert_eq!(r.points_used, 60);
}

#[test]
fn refine_successive_criterion() {
    let r = refine(
        Rule::GaussLegendre,
        2,
        1000,
        1e-13,
        Stop::Successive,
        |al| Ok(al.iter().map(|&a| synth(a)).collect()),
    )
    .unwrap();
    assert!(r.converged);
    assert_eq!(r.trajectory[0].delta, f64::INFINITY);
    assert!(r.trajectory.len() >= 2);
    assert!((r.estimate - synth_exact()).abs() < 1e-12);
}

#[test]
fn refine_errors() {
    let ok =
        |al: &[f64]| -> gradpath::Result<Vec<f64>> { Ok(al.iter().map(|&a| synth(a)).collect()) };
    let stop = Stop::Completeness { exact: 1.0 };
    assert_invalid(
        refine(Rule::GaussLegendre, 4, 100, 0.0, stop, ok),
        "tolerance",
    );
    assert_invalid(
        refine(Rule::GaussLegendre, 4, 100, f64::NAN, stop, ok),
        "tolerance",
    );
    assert_invalid(refine(Rule::GaussLegendre, 0, 100, 1e-3, stop, ok), "start");
    assert_invalid(
        refine(Rule::RiemannTrapezoid, 1, 100, 1e-3, stop, ok),
        "start",
    );
    assert_invalid(
        refine(Rule::GaussLegendre, 64, 50, 1e-3, stop, ok),
        "budget",
    );
    let nan_stop = Stop::Completeness {
        exact: f64::INFINITY,
    };
    assert_invalid(
        refine(Rule::GaussLegendre, 4, 100, 1e-3, nan_stop, ok),
        "not finite",
    );
    assert_invalid(
        refine(Rule::GaussLegendre, 4, 100, 1e-3, stop, |_| Ok(vec![1.0])),
        "values for",
    );
    assert_invalid(
        refine(Rule::GaussLegendre, 4, 100, 1e-3, stop, |al| {
            Ok(vec![f64::NAN; al.len()])
        }),
        "integrand",
    );
    // The caller's own error passes through untouched.
    let r = refine(Rule::GaussLegendre, 4, 100, 1e-3, stop, |_| {
        Err(Error::Internal("model failed".into()))
    });
    assert!(matches!(r, Err(Error::Internal(m)) if m == "model failed"));
}

mod kronrod {
    use gradpath::integrate::kronrod::kronrod15;
    use gradpath::integrate::{refine_panels, Stop};

    #[test]
    fn k15_and_g7_are_exact_to_their_degrees() {
        // K15 is exact for degree ≤ 22, G7 for degree ≤ 13 (on [0.2, 0.9]: ∫ x^k = (b^{k+1} − a^{k+1})/(k+1)).
        let (a, b) = (0.2f64, 0.9f64);
        let (x, wk, wg) = kronrod15(a, b);
        for k in 0..=22 {
            let exact = (b.powi(k + 1) - a.powi(k + 1)) / (k + 1) as f64;
            let qk: f64 = x.iter().zip(&wk).map(|(x, w)| w * x.powi(k)).sum();
            assert!(
                (qk - exact).abs() < 1e-15,
                "K15 degree {k}: {qk} vs {exact}"
            );
            if k <= 13 {
                let qg: f64 = x.iter().zip(&wg).map(|(x, w)| w * x.powi(k)).sum();
                assert!((qg - exact).abs() < 1e-15, "G7 degree {k}: {qg} vs {exact}");
            }
        }
        assert!(x.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn panels_concentrate_where_the_integrand_bends() {
        // A steep logistic step at α = 0.35 (like F along a real path): exact integral known.
        let s = 60.0;
        let g = |a: f64| s * (-(s * (a - 0.35))).exp() / (1.0 + (-(s * (a - 0.35))).exp()).powi(2);
        let exact = 1.0 / (1.0 + (-(s * 0.65f64)).exp()) - 1.0 / (1.0 + (s * 0.35f64).exp());
        let r = refine_panels(1, 2000, 1e-8, Stop::Completeness { exact }, |al| {
            Ok(al.iter().map(|&a| g(a)).collect())
        })
        .unwrap();
        assert!(r.converged && r.delta <= 1e-8, "delta {}", r.delta);
        // Nodes are denser at the step than far from it (α = 0.9): the panel holding it is
        // narrower, or extended to Patterson's 31 nodes, or both.
        let density_at = |x: f64| {
            r.panels
                .iter()
                .zip(&r.panel_nodes)
                .find(|((a, b), _)| *a <= x && x <= *b)
                .map(|((a, b), &n)| n as f64 / (b - a))
                .unwrap()
        };
        assert!(
            r.panels.len() >= 3 && density_at(0.35) >= 4.0 * density_at(0.9),
            "{:?} {:?}",
            r.panels,
            r.panel_nodes
        );
        assert_eq!(r.alphas.len(), r.panel_nodes.iter().sum::<usize>());
        let wsum: f64 = r.weights.iter().sum();
        assert!((wsum - 1.0).abs() < 1e-14);
        // Budget too small: reported as not converged.
        let r = refine_panels(1, 45, 1e-12, Stop::Completeness { exact }, |al| {
            Ok(al.iter().map(|&a| g(a)).collect())
        })
        .unwrap();
        assert!(!r.converged && r.points_used <= 45);
        assert!(
            refine_panels(0, 100, 1e-3, Stop::Successive, |al| Ok(vec![0.0; al.len()])).is_err()
        );
    }
}
