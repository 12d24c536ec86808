//! The hand-checkable test vectors of LIG_SPEC §10.2 (TV1–TV8), through
//! `attribution::lig::set_map_ig`: the set-to-set IG definition on maps small enough to
//! integrate by hand. "exact" is the true integral (Gauss–Legendre 4 and 32 points must equal it
//! to 1e-6 where LIG_SPEC says so); CT-n is Captum's `riemann_trapezoid` with n points (its
//! α = 0 node contributes 0, so a linear map gets exactly (2n−3)/(2n) × exact). The spec gives
//! six decimals; the tolerance is 1e-6 absolute.

use gradpath::attribution::lig::{set_map_ig, LigConfig, TokenReduce};
use gradpath::integrate::Rule;
use gradpath::{DType, Result, Tensor, Var};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

fn c(v: &[f64], shape: &[usize]) -> Var {
    Var::constant(t(v, shape))
}

/// Column `j` of the map (every source i) under `cfg`.
fn column(
    f: &dyn Fn(&Var) -> Result<Var>,
    x: &Tensor,
    baseline: &Tensor,
    j: usize,
    cfg: &LigConfig,
    reduce: TokenReduce,
) -> (Vec<f64>, f64) {
    let m = set_map_ig(f, x, std::slice::from_ref(baseline), &[j], cfg, reduce).unwrap();
    (m.matrix.iter().map(|r| r[j]).collect(), m.target_norm[0])
}

fn gl(n: usize) -> LigConfig {
    LigConfig::new(Rule::GaussLegendre, n).unwrap()
}

fn ct(n: usize) -> LigConfig {
    LigConfig::new(Rule::CaptumTrapezoid, n).unwrap()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
    }
}

/// Checks exact (GL-4 and GL-32, and the column sum = g_j(X) for Sum), CT-32 and optional CT-4.
#[allow(clippy::too_many_arguments)]
fn check(
    name: &str,
    f: &dyn Fn(&Var) -> Result<Var>,
    x: &Tensor,
    baseline: &Tensor,
    j: usize,
    exact: &[f64],
    ct32: &[f64],
    ct4: Option<&[f64]>,
    gl4_tol: f64,
    reduce: TokenReduce,
) {
    let (g32, norm) = column(f, x, baseline, j, &gl(32), reduce);
    close(&g32, exact, 1e-6, &format!("{name} GL-32"));
    let (g4, _) = column(f, x, baseline, j, &gl(4), reduce);
    close(&g4, exact, gl4_tol, &format!("{name} GL-4"));
    if reduce == TokenReduce::Sum {
        let s: f64 = g32.iter().sum();
        assert!((s - norm).abs() <= 1e-6, "{name}: Σ = {s}, g_j(X) = {norm}");
    }
    let (c32, _) = column(f, x, baseline, j, &ct(32), reduce);
    close(&c32, ct32, 1e-6, &format!("{name} CT-32"));
    if let Some(w) = ct4 {
        let (c4, _) = column(f, x, baseline, j, &ct(4), reduce);
        close(&c4, w, 1e-6, &format!("{name} CT-4"));
    }
}

/// F_j = y_1 + y_2 for every j (T = 2, d = 2).
fn sum_map(y: &Var) -> Result<Var> {
    c(&[1.0; 4], &[2, 2]).matmul(y)
}

#[test]
fn tv1_linear_zero_baseline() {
    let x = t(&[3.0, 0.0, 0.0, 4.0], &[2, 2]);
    let zero = t(&[0.0; 4], &[2, 2]);
    check(
        "TV1",
        &sum_map,
        &x,
        &zero,
        0,
        &[1.8, 3.2],
        &[1.715625, 3.05],
        Some(&[1.125, 2.0]),
        1e-6,
        TokenReduce::Sum,
    );
    // the closed form of §10.1: CT-n is exactly (2n−3)/(2n) × exact on a linear map
    let (c32, _) = column(&sum_map, &x, &zero, 1, &ct(32), TokenReduce::Sum);
    close(
        &c32,
        &[1.8 * 61.0 / 64.0, 3.2 * 61.0 / 64.0],
        1e-6,
        "TV1 ratio",
    );
}

#[test]
fn tv2_linear_itb_baseline() {
    // ITB for target 0: every row of X′ is x_0, so source 0 moves nowhere and gets exactly 0.
    let x = t(&[3.0, 0.0, 0.0, 4.0], &[2, 2]);
    let itb = t(&[3.0, 0.0, 3.0, 0.0], &[2, 2]);
    check(
        "TV2",
        &sum_map,
        &x,
        &itb,
        0,
        &[0.0, 5.0],
        &[0.0, 4.765625],
        Some(&[0.0, 3.125]),
        1e-6,
        TokenReduce::Sum,
    );
    let (g, _) = column(&sum_map, &x, &itb, 0, &gl(8), TokenReduce::Sum);
    assert_eq!(g[0], 0.0, "ITB self term is exactly 0");
}

#[test]
fn tv3_negative_message_and_the_l2_reduction() {
    let x = t(&[1.0, 0.0, -3.0, 1.0], &[2, 2]);
    let zero = t(&[0.0; 4], &[2, 2]);
    let s5 = 5f64.sqrt();
    check(
        "TV3",
        &sum_map,
        &x,
        &zero,
        0,
        &[-2.0 / s5, 7.0 / s5],
        &[-0.852501, 2.983753],
        None,
        1e-6,
        TokenReduce::Sum,
    );
    // TV3n: the per-token L2 norm (the package's encoder ATT reduction) is ≥ 0 and breaks
    // completeness: Σ = 3.614721 ≠ √5.
    check(
        "TV3n",
        &sum_map,
        &x,
        &zero,
        0,
        &[0.894427, 2.720294],
        &[0.852501, 2.592780],
        None,
        1e-6,
        TokenReduce::L2,
    );
    let (n, _) = column(&sum_map, &x, &zero, 0, &gl(32), TokenReduce::L2);
    assert!((n.iter().sum::<f64>() - 3.614721).abs() < 1e-6);
}

#[test]
fn tv4_fixed_attention_linear_head() {
    // F_j = Σ_i a_i W y_i with a = (0.25, 0.75), W = [[1,2],[0,1]]: rows of A·Y·Wᵀ.
    let f = |y: &Var| -> Result<Var> {
        c(&[0.25, 0.75, 0.25, 0.75], &[2, 2])
            .matmul(y)?
            .matmul(&c(&[1.0, 0.0, 2.0, 1.0], &[2, 2]))
    };
    let x = t(&[1.0, 1.0, 2.0, -1.0], &[2, 2]);
    let zero = t(&[0.0; 4], &[2, 2]);
    check(
        "TV4",
        &f,
        &x,
        &zero,
        0,
        &[0.485363, 0.416025],
        &[0.462611, 0.396524],
        None,
        1e-6,
        TokenReduce::Sum,
    );
}

#[test]
fn tv5_nonlinear_scalar_tokens() {
    // F_j(y) = (y_1, y_2²) for every j, scalar tokens: exact (asinh 1, √2 − asinh 1).
    let f = |y: &Var| -> Result<Var> {
        let y1 = y.narrow(0, 0, 1)?;
        let y2 = y.narrow(0, 1, 1)?;
        let row = Var::concat(&[&y1, &y2.mul(&y2)?], 1)?; // [1, 2]
        c(&[1.0, 1.0], &[2, 1]).matmul(&row)
    };
    let x = t(&[1.0, 1.0], &[2, 1]);
    let zero = t(&[0.0, 0.0], &[2, 1]);
    let a = 1f64.asinh();
    check(
        "TV5",
        &f,
        &x,
        &zero,
        0,
        &[a, 2f64.sqrt() - a],
        &[0.838176, 0.516367],
        None,
        1e-5, // LIG_SPEC: GL-4 = (0.881375, 0.532836)
        TokenReduce::Sum,
    );
    let (g4, _) = column(&f, &x, &zero, 0, &gl(4), TokenReduce::Sum);
    close(&g4, &[0.881375, 0.532836], 1e-6, "TV5 GL-4");
}

#[test]
fn tv6_product() {
    // F_j = y_1·y_2 (scalar output), X = (2, 3): (3, 3); CT-32 = 3·31/32 each.
    let f = |y: &Var| -> Result<Var> {
        let p = y.narrow(0, 0, 1)?.mul(&y.narrow(0, 1, 1)?)?; // [1, 1]
        c(&[1.0, 1.0], &[2, 1]).matmul(&p)
    };
    let x = t(&[2.0, 3.0], &[2, 1]);
    let zero = t(&[0.0, 0.0], &[2, 1]);
    check(
        "TV6",
        &f,
        &x,
        &zero,
        1,
        &[3.0, 3.0],
        &[2.90625, 2.90625],
        None,
        1e-6,
        TokenReduce::Sum,
    );
}

/// softmax(Y·Yᵀ/√2)·Y: one head with W_Q = W_K = W_V = I (T = 3, d = 2, no mask).
fn attention(y: &Var) -> Result<Var> {
    y.matmul_t(y, false, true)?
        .scale(1.0 / 2f64.sqrt())?
        .softmax(None)?
        .matmul(y)
}

#[test]
fn tv7_softmax_attention_zero_baseline() {
    let x = t(&[1.0, 0.0, 0.5, 1.0, -1.0, 0.5], &[3, 2]);
    let zero = t(&[0.0; 6], &[3, 2]);
    check(
        "TV7",
        &attention,
        &x,
        &zero,
        1,
        &[0.117436, 0.549682, 0.023673],
        &[0.112114, 0.526826, 0.022107],
        None,
        1e-6,
        TokenReduce::Sum,
    );
    let (g, norm) = column(&attention, &x, &zero, 1, &gl(32), TokenReduce::Sum);
    assert!((norm - 0.690791).abs() < 1e-6);
    assert!((g.iter().sum::<f64>() - 0.690791).abs() < 1e-6);
}

#[test]
fn tv8_softmax_attention_itb_baseline() {
    let x = t(&[1.0, 0.0, 0.5, 1.0, -1.0, 0.5], &[3, 2]);
    let itb = t(&[0.5, 1.0, 0.5, 1.0, 0.5, 1.0], &[3, 2]);
    check(
        "TV8",
        &attention,
        &x,
        &itb,
        1,
        &[0.188551, 0.0, 0.240646],
        &[0.179758, 0.0, 0.226644],
        None,
        1e-6,
        TokenReduce::Sum,
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let x = t(&[3.0, 0.0, 0.0, 4.0], &[2, 2]);
    let zero = t(&[0.0; 4], &[2, 2]);
    let cfg = gl(4);
    // target out of range
    assert!(set_map_ig(
        &sum_map,
        &x,
        std::slice::from_ref(&zero),
        &[2],
        &cfg,
        TokenReduce::Sum
    )
    .is_err());
    // two baselines for one target
    assert!(set_map_ig(
        &sum_map,
        &x,
        &[zero.clone(), zero.clone()],
        &[0],
        &cfg,
        TokenReduce::Sum
    )
    .is_err());
    // a baseline of the wrong shape
    let bad = t(&[0.0; 6], &[3, 2]);
    assert!(set_map_ig(&sum_map, &x, &[bad], &[0], &cfg, TokenReduce::Sum).is_err());
    // a map that drops the token axis
    let sum_all = |y: &Var| y.sum(&[0], true);
    assert!(set_map_ig(&sum_all, &x, &[zero], &[0], &cfg, TokenReduce::Sum).is_err());
}
