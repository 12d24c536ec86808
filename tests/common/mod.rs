//! Test helpers: seeded random tensors and closeness checks that print the first mismatches.
#![allow(dead_code)]

use gradpath::{DType, Tensor};

/// The tiny model fixture of every family (`tests/fixtures/models/<name>`): the encoders, then the
/// decoders.
pub const FAMILY_FIXTURES: [&str; 7] = [
    "tiny-bert",
    "tiny-roberta",
    "tiny-distilbert",
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-qwen2",
];
use rand::{rngs::StdRng, Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform values in [lo, hi).
pub fn uniform(rng: &mut StdRng, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
    Tensor::from_f64(&v, shape, DType::F64).unwrap()
}

/// Uniform values with |x| in [min_abs, max_abs), random sign (keeps away from kinks at 0).
pub fn away_from_zero(rng: &mut StdRng, shape: &[usize], min_abs: f64, max_abs: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let m = rng.gen_range(min_abs..max_abs);
            if rng.gen_bool(0.5) {
                m
            } else {
                -m
            }
        })
        .collect();
    Tensor::from_f64(&v, shape, DType::F64).unwrap()
}

/// Asserts `|a − b| ≤ atol + rtol·|b|` elementwise; prints the first 5 mismatches and the max diff.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    let av = a.to_vec_f64().unwrap();
    let bv = b.to_vec_f64().unwrap();
    let mut bad = Vec::new();
    let mut max_diff: f64 = 0.0;
    for (i, (x, y)) in av.iter().zip(&bv).enumerate() {
        let d = (x - y).abs();
        let ok = d <= atol + rtol * y.abs() || (x.is_infinite() && x == y);
        if !d.is_nan() {
            max_diff = max_diff.max(d);
        }
        if !ok {
            bad.push((i, *x, *y, d));
        }
    }
    if !bad.is_empty() {
        let first: Vec<String> = bad
            .iter()
            .take(5)
            .map(|(i, x, y, d)| format!("[{i}] got {x:.12e} want {y:.12e} (diff {d:.3e})"))
            .collect();
        panic!("{what}: {} of {} elements differ (atol {atol:e}, rtol {rtol:e}); max diff {max_diff:.3e}\n  {}", bad.len(), av.len(), first.join("\n  "));
    }
}

/// Asserts max |got − want| ≤ tol · max(1, max |want|); returns that max diff over the scale.
#[track_caller]
pub fn check_rel(what: &str, got: &Tensor, want: &Tensor, tol: f64) -> f64 {
    let g = got.to_vec_f64().unwrap();
    let w = want.to_vec_f64().unwrap();
    assert_eq!(
        g.len(),
        w.len(),
        "{what}: {} values, golden has {} ({:?} vs {:?})",
        g.len(),
        w.len(),
        got.shape(),
        want.shape()
    );
    let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let diff = g
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff <= tol * scale,
        "{what}: max diff {diff:.3e} > {tol:e} × scale {scale:.3e}; first values got {:?} want {:?}\nHINT: the goldens come from tests/reference/*.py",
        &g[..3.min(g.len())],
        &w[..3.min(w.len())]
    );
    diff / scale
}

/// Token IG at `hook_embed` from the embeddings of `base_ids` to those of `ids`.
pub fn token_ig(
    model: &dyn gradpath::models::Model,
    ids: &[usize],
    base: &Tensor,
    target: &gradpath::attribution::Target,
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
) -> gradpath::attribution::IgResult {
    let types = vec![0; ids.len()];
    let x = model.word_embeddings(ids).unwrap();
    let p = gradpath::attribution::PathProblem {
        model,
        ids,
        type_ids: &types,
        boundary: "hook_embed",
        input: &x,
        baseline: base,
        target,
    };
    gradpath::attribution::integrated_gradients(&p, alphas, weights, batch, &mut |_, _| {}).unwrap()
}

/// First value of golden tensor `key`.
pub fn golden_scalar(g: &gradpath::io::Weights, key: &str) -> f64 {
    g.get(key).unwrap().to_vec_f64().unwrap()[0]
}

/// An IG run against Captum's `{key}.attr` (per coordinate, `tol` of the scale) and `{key}.delta`
/// (1e-8 relative); returns the relative attribution diff.
#[track_caller]
pub fn check_captum(
    what: &str,
    r: &gradpath::attribution::IgResult,
    g: &gradpath::io::Weights,
    key: &str,
    shape: &[usize],
    tol: f64,
) -> f64 {
    let got = Tensor::from_f64(r.per_coordinate.as_ref().unwrap(), shape, DType::F64).unwrap();
    let want = g
        .get(&format!("{key}.attr"))
        .unwrap()
        .reshape(shape)
        .unwrap();
    let d = check_rel(&format!("{what} {key} attributions"), &got, &want, tol);
    let delta = golden_scalar(g, &format!("{key}.delta"));
    assert!(
        (r.delta - delta).abs() <= 1e-8 * (1.0 + delta.abs()),
        "{what} {key}: delta {} vs Captum {delta}",
        r.delta
    );
    d
}
