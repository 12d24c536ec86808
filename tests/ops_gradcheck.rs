//! f64 central finite-difference gradient check for every op of the catalogue.
//!
//! The table is `cases_for(kind)` in `tests/op_cases/` (shared with `device_parity`), an exhaustive
//! `match` over [`OpKind`]: adding an op kind without a case does not compile, and
//! `every_kind_has_a_case` fails if a kind yields no case.
//!
//! For each case: inputs are tape variables, the output y gets a random (non-trivial) cotangent c,
//! and the analytic gradient of L = ⟨c, y⟩ with respect to every input is compared with
//! (L(x + εe) − L(x − εe)) / 2ε, ε = 1e-6, on every element (or a random sample of 40 for large
//! inputs). Tolerance: |analytic − numeric| ≤ 1e-6·(1 + |numeric|). Rationale: the truncation error
//! of the central difference is O(ε²·f''') ≈ 1e-12 and the rounding error ≈ 1e-16·|L|/ε ≈ 1e-10·|L|,
//! both far below 1e-6 for these O(1)–O(100) losses; a wrong rule is off by O(1).
//!
//! The same cases then run in f32 and must agree with f64 (forward and gradients) to
//! 2e-4 × max(1, max|f64 value|): f32 carries ~7 significant digits, and these graphs lose at most
//! two or three of them (softmax and normalisation of sums over ≤ 100 terms).

mod common;
mod op_cases;

use common::rng;
use gradpath::autodiff::OpKind;
use gradpath::{DType, Tape, Tensor, Var};
use op_cases::{all_cases, cases_for, seed_for, Case};
use rand::Rng;

/// L = ⟨c, f(inputs)⟩ with constants only (no tape).
fn loss(c: &Case, inputs: &[Tensor], seed: &[f64]) -> f64 {
    let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
    let y = (c.f)(&vars).unwrap().into_value().to_vec_f64().unwrap();
    y.iter().zip(seed).map(|(a, b)| a * b).sum()
}

/// Runs the graph on a tape in `dtype`; returns (output, gradient of ⟨seed, y⟩ for every input).
fn analytic(c: &Case, dtype: DType, seed: &[f64]) -> (Tensor, Vec<Tensor>) {
    let tape = Tape::new();
    let vars: Vec<Var> = c
        .inputs
        .iter()
        .map(|x| tape.var(x.to_dtype(dtype).unwrap()))
        .collect();
    let y = (c.f)(&vars).unwrap_or_else(|e| panic!("{}: forward failed: {e}", c.name));
    let s = Tensor::from_f64(seed, y.shape(), dtype).unwrap();
    let refs: Vec<&Var> = vars.iter().collect();
    let g = tape
        .grad(&[&y], &[s], &refs)
        .unwrap_or_else(|e| panic!("{}: backward failed: {e}", c.name));
    let grads = g
        .into_iter()
        .zip(&c.inputs)
        .map(|(g, x)| g.unwrap_or_else(|| Tensor::zeros(x.shape(), dtype)))
        .collect();
    (y.into_value(), grads)
}

#[test]
fn every_kind_has_a_case() {
    let mut r = rng(1);
    for &k in OpKind::ALL {
        assert!(
            !cases_for(k, &mut r).is_empty(),
            "op kind {} has no gradient-check case",
            k.name()
        );
    }
}

#[test]
fn finite_differences_f64_every_op() {
    let eps = 1e-6;
    let mut r = rng(11);
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for (kind, c) in all_cases() {
        let seed = seed_for(&c, &mut r);
        let (_, grads) = analytic(&c, DType::F64, &seed);
        for (i, x) in c.inputs.iter().enumerate() {
            let data = x.to_vec_f64().unwrap();
            let ga = grads[i].to_vec_f64().unwrap();
            let idx: Vec<usize> = if data.len() <= 64 {
                (0..data.len()).collect()
            } else {
                (0..40).map(|_| r.gen_range(0..data.len())).collect()
            };
            for j in idx {
                let mut plus = data.clone();
                plus[j] += eps;
                let mut minus = data.clone();
                minus[j] -= eps;
                let mut ip = c.inputs.clone();
                ip[i] = Tensor::from_f64(&plus, x.shape(), DType::F64).unwrap();
                let mut im = c.inputs.clone();
                im[i] = Tensor::from_f64(&minus, x.shape(), DType::F64).unwrap();
                let num = (loss(&c, &ip, &seed) - loss(&c, &im, &seed)) / (2.0 * eps);
                checked += 1;
                if (ga[j] - num).abs() > 1e-6 * (1.0 + num.abs()) {
                    failures.push(format!(
                        "{} [{}] input {i} elem {j}: analytic {:.10e} numeric {:.10e}",
                        c.name,
                        kind.name(),
                        ga[j],
                        num
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} gradient entries disagree:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "checked {checked} gradient entries over {} op kinds",
        OpKind::ALL.len()
    );
}

#[test]
fn f32_agrees_with_f64_every_op() {
    let mut r = rng(13);
    let mut failures = Vec::new();
    for (kind, c) in all_cases() {
        let seed = seed_for(&c, &mut r);
        let (y64, g64) = analytic(&c, DType::F64, &seed);
        let (y32, g32) = analytic(&c, DType::F32, &seed);
        assert_eq!(
            y32.dtype(),
            DType::F32,
            "{}: f32 run did not stay in f32",
            c.name
        );
        let pairs = std::iter::once(("output".to_string(), &y32, &y64)).chain(
            g32.iter()
                .zip(&g64)
                .enumerate()
                .map(|(i, (a, b))| (format!("grad {i}"), a, b)),
        );
        for (what, a, b) in pairs {
            let bv = b.to_vec_f64().unwrap();
            let scale = bv
                .iter()
                .filter(|x| x.is_finite())
                .fold(1.0f64, |m, x| m.max(x.abs()));
            let av = a.to_vec_f64().unwrap();
            let diff = av
                .iter()
                .zip(&bv)
                .filter(|(x, y)| !(x.is_infinite() && x == y))
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            if diff > 2e-4 * scale || diff.is_nan() {
                failures.push(format!(
                    "{} [{}] {what}: max diff {diff:.3e} (scale {scale:.3e})",
                    c.name,
                    kind.name()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "f32 vs f64:\n{}", failures.join("\n"));
}
