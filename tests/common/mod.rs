//! Test helpers: seeded random tensors and closeness checks that print the first mismatches.
#![allow(dead_code)]

use gradpath::{DType, Tensor};
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
