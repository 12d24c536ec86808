//! Property test of the op catalogue over random shapes (proptest): for every [`OpKind`], random
//! small shapes (each dim 1..=5, every rank the op allows, broadcasting pairs, batch dims, odd and a
//! few larger sizes that reach the blocked / lane-wise kernel paths) and random f64 values kept away
//! from kinks and singularities build a graph y = op(inputs); with a random cotangent c the tape's
//! gradient of L = ⟨c, y⟩ for every input is compared with the f64 central difference
//!
//!   (L(x + εe_j) − L(x − εe_j)) / 2ε,  ε = 1e-6,  |analytic − numeric| ≤ 1e-6·(1 + |numeric|)
//!
//! on every element of an input of at most 30 elements and on 30 distinct random elements of a
//! larger one (same ε and tolerance as `ops_gradcheck`, whose doc gives the rationale). The
//! difference is evaluated as Σ_i c_i·(y⁺_i − y⁻_i) / 2ε, i.e. the per-element differences are
//! formed before the sum, so that the rounding error of the sum of ⟨c, y⟩ over up to a few thousand
//! outputs does not cancel into the quotient. The same graph then runs in f32 and must agree with
//! the f64 run (forward and gradients) to 2e-4 × max(1, max |f64 value|), as in `ops_gradcheck`.
//! Each case also checks that the tape recorded the kind under test and that the forward on the tape
//! is bit-identical to the forward on constants. Failures are shrunk and print the op kind, shapes,
//! parameters and the worst element.
//!
//! `strategy_for(kind)` is an exhaustive `match` over [`OpKind`]: a new op kind does not compile
//! until it has a property here, and `every_kind_has_a_property_test` fails if it has no `#[test]`.
//!
//! Determinism: each kind's runner is seeded from a fixed ChaCha seed derived from the kind's name
//! (`TestRunner::new_with_rng`), cases, seed, forking, timeouts and shrink limits are set explicitly
//! (no `PROPTEST_*` variable changes them), and failure persistence is off (nothing is written into
//! the repository). Cases per kind: `DEFAULT_CASES`, or `GRADPATH_PROPTEST_CASES` locally;
//! `GRADPATH_PROPTEST_SEED` (a u64, default 0) mixes into the seeds to explore other inputs.

mod common;

use gradpath::autodiff::OpKind;
use gradpath::{DType, Result, Tape, Tensor, Var};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::{
    Config, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRng, TestRunner,
};
use rand::{seq::index::sample, Rng};
use std::fmt;
use std::sync::Arc;

/// Random cases per op kind in CI.
const DEFAULT_CASES: u32 = 128;
/// Central-difference step.
const EPS: f64 = 1e-6;
/// |analytic − numeric| ≤ GRAD_TOL·(1 + |numeric|).
const GRAD_TOL: f64 = 1e-6;
/// f32 vs f64: max diff ≤ F32_TOL × max(1, max |f64 value|).
const F32_TOL: f64 = 2e-4;
/// Finite differences on at most this many elements of each input.
const MAX_FD_ELEMS: usize = 30;

type GraphFn = Arc<dyn Fn(&[Var]) -> Result<Var>>;

/// One generated graph: f64 inputs on the CPU and y = f(inputs).
#[derive(Clone)]
struct PCase {
    desc: String,
    inputs: Vec<Tensor>,
    f: GraphFn,
}

impl fmt::Debug for PCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.desc)?;
        for (i, x) in self.inputs.iter().enumerate() {
            let v = x.to_vec_f64().unwrap_or_default();
            write!(f, "\n    input {i} {:?}", x.shape())?;
            if v.len() <= 24 {
                write!(f, " = {v:?}")?;
            }
        }
        Ok(())
    }
}

fn pcase(desc: String, inputs: Vec<Tensor>, f: impl Fn(&[Var]) -> Result<Var> + 'static) -> PCase {
    PCase {
        desc,
        inputs,
        f: Arc::new(f),
    }
}

fn t64(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

/// A case constant (mask, RoPE table) in the dtype and on the device of the input `x`.
fn like(c: &Tensor, x: &Var) -> Result<Tensor> {
    c.to_dtype(x.dtype())?.to_device(x.device())
}

// === Value and shape strategies ===

/// How the values of an input are drawn.
#[derive(Clone, Copy, Debug)]
enum D {
    /// Uniform in [lo, hi).
    U(f64, f64),
    /// |x| uniform in [lo, hi), random sign (away from a kink or pole at 0).
    Away(f64, f64),
    /// Mostly U(-4, 4), some elements with |x| in [5, 30) (saturated regions).
    Wide,
}

fn values(n: usize, d: D) -> BoxedStrategy<Vec<f64>> {
    match d {
        D::U(lo, hi) => vec(lo..hi, n).boxed(),
        D::Away(lo, hi) => vec((lo..hi, any::<bool>()), n)
            .prop_map(|v| v.into_iter().map(|(m, s)| if s { m } else { -m }).collect())
            .boxed(),
        D::Wide => vec(
            prop_oneof![
                3 => -4.0..4.0,
                1 => (5.0..30.0f64, any::<bool>()).prop_map(|(m, s)| if s { m } else { -m }),
            ],
            n,
        )
        .boxed(),
    }
}

fn tensor(shape: Vec<usize>, d: D) -> BoxedStrategy<Tensor> {
    let n: usize = shape.iter().product();
    values(n, d).prop_map(move |v| t64(&v, &shape)).boxed()
}

/// A dimension: 1..=5.
fn dim() -> std::ops::RangeInclusive<usize> {
    1..=5
}

/// A dimension that is usually small and sometimes large (blocked GEMM / lane-wise row kernels).
fn dim_odd(big: usize) -> BoxedStrategy<usize> {
    prop_oneof![4 => 1..=5usize, 1 => 6..=big].boxed()
}

fn shape(ranks: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<usize>> {
    vec(dim(), ranks).boxed()
}

/// A shape that broadcasts to `out`: a suffix of its axes, each kept or set to 1.
fn broadcast_to(out: &[usize]) -> BoxedStrategy<Vec<usize>> {
    let out = out.to_vec();
    let r = out.len();
    (
        prop_oneof![3 => Just(r), 1 => 0..=r],
        vec(prop::bool::weighted(0.7), r),
    )
        .prop_map(move |(rk, keep)| {
            (r - rk..r)
                .map(|a| if keep[a] { out[a] } else { 1 })
                .collect()
        })
        .boxed()
}

fn unravel(mut j: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        idx[a] = j % shape[a];
        j /= shape[a];
    }
    idx
}

/// A mask over `shape` (additive, constant): 0, −∞ or a moderate finite bias in [−3, 0].
fn mask_values(shape: Vec<usize>) -> BoxedStrategy<Tensor> {
    let n: usize = shape.iter().product();
    vec(
        prop_oneof![
            5 => Just(0.0),
            3 => Just(f64::NEG_INFINITY),
            2 => -3.0..0.0f64,
        ],
        n,
    )
    .prop_map(move |v| t64(&v, &shape))
    .boxed()
}

/// Adds a ramp to every row (last axis) whose variance is below 0.05, so that LayerNorm's
/// 1/σ stays moderate and its finite differences accurate.
fn spread_rows(v: &mut [f64], c: usize) {
    for row in v.chunks_mut(c) {
        loop {
            let m = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / c as f64;
            if c < 2 || var >= 0.05 {
                break;
            }
            for (i, x) in row.iter_mut().enumerate() {
                *x += i as f64 - (c - 1) as f64 / 2.0;
            }
        }
    }
}

// === Per-kind strategies ===

fn unary(
    name: &'static str,
    ranks: std::ops::RangeInclusive<usize>,
    d: D,
    f: fn(&Var) -> Result<Var>,
) -> BoxedStrategy<PCase> {
    shape(ranks)
        .prop_flat_map(move |s| tensor(s, d))
        .prop_map(move |x| {
            pcase(format!("{name} {d:?} {:?}", x.shape()), vec![x], move |v| {
                f(&v[0])
            })
        })
        .boxed()
}

fn binary(kind: OpKind) -> BoxedStrategy<PCase> {
    prop_oneof![1 => shape(0..=0), 6 => shape(1..=4)]
        .prop_flat_map(|out| (broadcast_to(&out), broadcast_to(&out)))
        .prop_flat_map(move |(sa, sb)| {
            // b is a divisor for Div; the other ops take any b.
            let db = if kind == OpKind::Div {
                D::Away(0.5, 2.0)
            } else {
                D::U(-2.0, 2.0)
            };
            (tensor(sa, D::U(-2.0, 2.0)), tensor(sb, db))
        })
        .prop_map(move |(a, b)| {
            pcase(
                format!("{} {:?} {:?}", kind.name(), a.shape(), b.shape()),
                vec![a, b],
                move |v| match kind {
                    OpKind::Add => v[0].add(&v[1]),
                    OpKind::Sub => v[0].sub(&v[1]),
                    OpKind::Mul => v[0].mul(&v[1]),
                    _ => v[0].div(&v[1]),
                },
            )
        })
        .boxed()
}

fn matmul() -> BoxedStrategy<PCase> {
    (
        vec(1..=4usize, 0..=2),
        (dim_odd(40), dim_odd(40), dim_odd(40)),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_flat_map(|(batch, (m, k, n), (ta, tb, shared))| {
            let shared = shared || batch.is_empty();
            let mut sa = batch.clone();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = if shared { vec![] } else { batch.clone() };
            sb.extend(if tb { [n, k] } else { [k, n] });
            (
                tensor(sa, D::U(-1.0, 1.0)),
                tensor(sb, D::U(-1.0, 1.0)),
                Just((ta, tb)),
            )
        })
        .prop_map(|(a, b, (ta, tb))| {
            pcase(
                format!("matmul_t ta={ta} tb={tb} {:?} · {:?}", a.shape(), b.shape()),
                vec![a, b],
                move |v| v[0].matmul_t(&v[1], ta, tb),
            )
        })
        .boxed()
}

fn reduce(kind: OpKind) -> BoxedStrategy<PCase> {
    shape(1..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            (
                tensor(s, D::U(-1.0, 1.0)),
                subsequence((0..r).collect::<Vec<_>>(), 0..=r),
                any::<bool>(),
            )
        })
        .prop_map(move |(x, axes, keep)| {
            let mean = kind == OpKind::Mean;
            pcase(
                format!(
                    "{} axes {axes:?} keepdim={keep} {:?}",
                    kind.name(),
                    x.shape()
                ),
                vec![x],
                move |v| {
                    if mean {
                        v[0].mean(&axes, keep)
                    } else {
                        v[0].sum(&axes, keep)
                    }
                },
            )
        })
        .boxed()
}

/// Max over one axis. Values are a shuffled grid plus a small jitter, so all are distinct by more
/// than 1e-3 and no ±ε perturbation changes the argmax.
fn max() -> BoxedStrategy<PCase> {
    shape(1..=4)
        .prop_flat_map(|s| {
            let n: usize = s.iter().product();
            let r = s.len();
            (
                Just(s),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                vec(0.0..0.5f64, n),
                0..r,
                any::<bool>(),
            )
        })
        .prop_map(|(s, perm, jit, axis, keep)| {
            let n = perm.len() as f64;
            let v: Vec<f64> = perm
                .iter()
                .zip(&jit)
                .map(|(&p, j)| -1.0 + 2.0 * (p as f64 + j) / n)
                .collect();
            let x = t64(&v, &s);
            pcase(
                format!("Max axis {axis} keepdim={keep} {s:?}"),
                vec![x],
                move |v| v[0].max(axis, keep),
            )
        })
        .boxed()
}

fn softmax(log: bool) -> BoxedStrategy<PCase> {
    (shape(0..=3), dim_odd(70))
        .prop_flat_map(|(mut s, last)| {
            s.push(last);
            let ms = prop_oneof![Just(None), broadcast_to(&s).prop_map(Some)];
            let d = prop_oneof![Just(D::U(-2.0, 2.0)), Just(D::Wide)];
            (Just(s), d, ms)
        })
        .prop_flat_map(|(s, d, ms)| {
            (
                tensor(s, d),
                match ms {
                    None => Just(None).boxed(),
                    Some(ms) => mask_values(ms).prop_map(Some).boxed(),
                },
            )
        })
        .prop_map(move |(x, mask)| {
            let name = if log { "LogSoftmax" } else { "Softmax" };
            pcase(
                format!(
                    "{name} {:?} mask {:?}{}",
                    x.shape(),
                    mask.as_ref().map(|m| m.shape().to_vec()),
                    match &mask {
                        Some(m) => format!(" = {:?}", m.to_vec_f64().unwrap()),
                        None => String::new(),
                    }
                ),
                vec![x],
                move |v| {
                    let m = mask.as_ref().map(|m| like(m, &v[0])).transpose()?;
                    if log {
                        v[0].log_softmax(m.as_ref())
                    } else {
                        v[0].softmax(m.as_ref())
                    }
                },
            )
        })
        .boxed()
}

fn norm(rms: bool) -> BoxedStrategy<PCase> {
    (
        shape(0..=3),
        dim_odd(70),
        any::<bool>(),
        select(vec![1e-5, 1e-6, 1e-12]),
    )
        .prop_flat_map(move |(mut s, c, bias, eps)| {
            s.push(c);
            let n: usize = s.iter().product();
            // RMSNorm: |x| ≥ 0.1 keeps mean(x²) ≥ 0.01; LayerNorm: rows spread (see spread_rows).
            let dx = if rms {
                D::Away(0.1, 2.0)
            } else {
                D::U(-2.0, 2.0)
            };
            (
                Just(s),
                values(n, dx),
                tensor(vec![c], D::U(-1.5, 1.5)),
                if bias && !rms {
                    tensor(vec![c], D::U(-1.0, 1.0)).prop_map(Some).boxed()
                } else {
                    Just(None).boxed()
                },
                Just(eps),
            )
        })
        .prop_map(move |(s, mut xv, w, b, eps)| {
            let c = *s.last().unwrap();
            if !rms {
                spread_rows(&mut xv, c);
            }
            let x = t64(&xv, &s);
            let has_b = b.is_some();
            let mut inputs = vec![x, w];
            inputs.extend(b);
            pcase(
                format!(
                    "{} {s:?} bias={has_b} eps={eps:e}",
                    if rms { "RmsNorm" } else { "LayerNorm" }
                ),
                inputs,
                move |v| {
                    if rms {
                        v[0].rms_norm(&v[1], eps)
                    } else {
                        v[0].layer_norm(&v[1], v.get(2), eps)
                    }
                },
            )
        })
        .boxed()
}

fn embedding() -> BoxedStrategy<PCase> {
    (1..=8usize, dim_odd(40), shape(0..=3))
        .prop_flat_map(|(vocab, d, ids_shape)| {
            let n: usize = ids_shape.iter().product();
            (
                tensor(vec![vocab, d], D::U(-1.0, 1.0)),
                vec(0..vocab, n),
                Just(ids_shape),
            )
        })
        .prop_map(|(table, ids, ids_shape)| {
            pcase(
                format!(
                    "Embedding table {:?} ids {ids_shape:?} = {ids:?}",
                    table.shape()
                ),
                vec![table],
                move |v| Var::embedding(&v[0], &ids, &ids_shape),
            )
        })
        .boxed()
}

/// Reshape to a regrouping of the shuffled dims (same element count), with 1s inserted.
fn reshape() -> BoxedStrategy<PCase> {
    shape(0..=4)
        .prop_flat_map(|s| {
            let r = s.len();
            (
                tensor(s.clone(), D::U(-1.0, 1.0)),
                Just(s).prop_shuffle(),
                vec(any::<bool>(), r),
                vec(0..=r, 0..=2),
            )
        })
        .prop_map(|(x, atoms, cuts, ones)| {
            let mut target = Vec::new();
            let mut cur = 1;
            for (i, &a) in atoms.iter().enumerate() {
                cur *= a;
                if cuts[i] || i + 1 == atoms.len() {
                    target.push(cur);
                    cur = 1;
                }
            }
            for p in ones {
                target.insert(p.min(target.len()), 1);
            }
            pcase(
                format!("Reshape {:?} -> {target:?}", x.shape()),
                vec![x],
                move |v| v[0].reshape(&target),
            )
        })
        .boxed()
}

fn permute() -> BoxedStrategy<PCase> {
    // Small tensors of rank 1..=4, or 2-D ones past the 32-wide tiles of the banded transpose.
    let small = shape(1..=4);
    let two_d = (1..=80usize, 1..=80usize).prop_map(|(a, b)| vec![a, b]);
    prop_oneof![3 => small, 1 => two_d]
        .prop_flat_map(|s| {
            let r = s.len();
            (
                tensor(s, D::U(-1.0, 1.0)),
                Just((0..r).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
        .prop_map(|(x, perm)| {
            pcase(
                format!("Permute {perm:?} {:?}", x.shape()),
                vec![x],
                move |v| v[0].permute(&perm),
            )
        })
        .boxed()
}

fn narrow() -> BoxedStrategy<PCase> {
    shape(1..=4)
        .prop_flat_map(|s| (Just(s.clone()), 0..s.len()))
        .prop_flat_map(|(s, axis)| {
            let n = s[axis];
            (Just(s), Just(axis), 0..n)
        })
        .prop_flat_map(|(s, axis, start)| {
            let n = s[axis];
            (
                tensor(s, D::U(-1.0, 1.0)),
                Just(axis),
                Just(start),
                1..=n - start,
            )
        })
        .prop_map(|(x, axis, start, len)| {
            pcase(
                format!("Narrow axis {axis} start {start} len {len} {:?}", x.shape()),
                vec![x],
                move |v| v[0].narrow(axis, start, len),
            )
        })
        .boxed()
}

/// Concat of 1..=3 tracked pieces along a random axis, optionally with a constant piece among them.
fn concat() -> BoxedStrategy<PCase> {
    (
        shape(1..=4),
        vec(dim(), 1..=3),
        prop::option::of(0..=3usize),
    )
        .prop_flat_map(|(s, sizes, konst)| {
            let axis = 0..s.len();
            (Just(s), Just(sizes), Just(konst), axis)
        })
        .prop_flat_map(|(s, sizes, konst, axis)| {
            let pieces: Vec<_> = sizes
                .iter()
                .map(|&n| {
                    let mut p = s.clone();
                    p[axis] = n;
                    tensor(p, D::U(-1.0, 1.0))
                })
                .collect();
            (pieces, Just(konst), Just(axis))
        })
        .prop_map(|(pieces, konst, axis)| {
            let konst = konst.map(|p| p.min(pieces.len()));
            let shapes: Vec<Vec<usize>> = pieces.iter().map(|p| p.shape().to_vec()).collect();
            pcase(
                format!("Concat axis {axis} {shapes:?} constant at {konst:?}"),
                pieces,
                move |v| {
                    let mut ks = v[0].shape().to_vec();
                    ks[axis] = 2;
                    let c = Var::constant(Tensor::full_on(0.5, &ks, v[0].dtype(), v[0].device())?);
                    let mut xs: Vec<&Var> = v.iter().collect();
                    if let Some(p) = konst {
                        xs.insert(p, &c);
                    }
                    Var::concat(&xs, axis)
                },
            )
        })
        .boxed()
}

fn index_select() -> BoxedStrategy<PCase> {
    shape(1..=4)
        .prop_flat_map(|s| (Just(s.clone()), 0..s.len()))
        .prop_flat_map(|(s, axis)| {
            let n = s[axis];
            (tensor(s, D::U(-1.0, 1.0)), Just(axis), vec(0..n, 1..=7))
        })
        .prop_map(|(x, axis, idx)| {
            pcase(
                format!("IndexSelect axis {axis} {idx:?} {:?}", x.shape()),
                vec![x],
                move |v| v[0].index_select(axis, &idx),
            )
        })
        .boxed()
}

/// RoPE of `[batch, pos, heads, d_head]` (d_head even): shared `[pos, d_head]` tables from
/// `cos_sin_tables` with a random θ, or per-batch `[batch, pos, d_head]` tables of arbitrary values.
fn rope() -> BoxedStrategy<PCase> {
    (1..=3usize, dim(), 1..=3usize, 1..=4usize, any::<bool>())
        .prop_flat_map(|(b, t, h, half, shared)| {
            let d = 2 * half;
            let tables = if shared {
                select(vec![10.0, 1e4, 5e5])
                    .prop_map(move |theta| {
                        let (c, s) =
                            gradpath::ops::rope::cos_sin_tables(t, d, theta, None, DType::F64)
                                .unwrap();
                        (format!("shared θ={theta:e}"), c, s)
                    })
                    .boxed()
            } else {
                (
                    tensor(vec![b, t, d], D::U(-1.0, 1.0)),
                    tensor(vec![b, t, d], D::U(-1.0, 1.0)),
                )
                    .prop_map(|(c, s)| ("per-batch arbitrary".to_string(), c, s))
                    .boxed()
            };
            (tensor(vec![b, t, h, d], D::U(-1.0, 1.0)), tables)
        })
        .prop_map(|(x, (what, cos, sin))| {
            pcase(
                format!("Rope {:?} tables {what} {:?}", x.shape(), cos.shape()),
                vec![x],
                move |v| v[0].rope(&like(&cos, &v[0])?, &like(&sin, &v[0])?),
            )
        })
        .boxed()
}

/// `(batch, q_pos, k_pos, n_kv_heads, group, d_head)`.
fn attn_dims() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    (1..=2usize, dim(), dim(), 1..=3usize, 1..=3usize, 1..=6usize)
}

fn attn_scores() -> BoxedStrategy<PCase> {
    (attn_dims(), 0.1..1.0f64)
        .prop_flat_map(|((b, tq, tk, hk, g, d), scale)| {
            (
                tensor(vec![b, tq, hk * g, d], D::U(-1.0, 1.0)),
                tensor(vec![b, tk, hk, d], D::U(-1.0, 1.0)),
                Just(scale),
            )
        })
        .prop_map(|(q, k, scale)| {
            pcase(
                format!(
                    "AttnScores q {:?} k {:?} scale {scale}",
                    q.shape(),
                    k.shape()
                ),
                vec![q, k],
                move |v| v[0].attn_scores(&v[1], scale),
            )
        })
        .boxed()
}

/// `pattern·V` on its own (pattern values in [0, 1]), or the whole SDPA (q, k, v) with an optional
/// causal mask aligned to the last query (rows of a query before the first key are fully masked).
fn attn_apply() -> BoxedStrategy<PCase> {
    let apply = attn_dims()
        .prop_flat_map(|(b, tq, tk, hk, g, d)| {
            (
                tensor(vec![b, hk * g, tq, tk], D::U(0.0, 1.0)),
                tensor(vec![b, tk, hk, d], D::U(-1.0, 1.0)),
            )
        })
        .prop_map(|(p, v)| {
            pcase(
                format!("AttnApply p {:?} v {:?}", p.shape(), v.shape()),
                vec![p, v],
                |v| v[0].attn_apply(&v[1]),
            )
        });
    let sdpa = (attn_dims(), any::<bool>())
        .prop_flat_map(|((b, tq, tk, hk, g, d), causal)| {
            (
                tensor(vec![b, tq, hk * g, d], D::U(-1.0, 1.0)),
                tensor(vec![b, tk, hk, d], D::U(-1.0, 1.0)),
                tensor(vec![b, tk, hk, d], D::U(-1.0, 1.0)),
                Just(causal),
            )
        })
        .prop_map(|(q, k, val, causal)| {
            let (tq, tk) = (q.shape()[1], k.shape()[1]);
            let mask = causal.then(|| {
                let m: Vec<f64> = (0..tq * tk)
                    .map(|j| {
                        let (i, key) = (j / tk, j % tk);
                        if key + tq > i + tk {
                            f64::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                    .collect();
                t64(&m, &[1, 1, tq, tk])
            });
            let scale = 1.0 / (q.shape()[3] as f64).sqrt();
            pcase(
                format!(
                    "sdpa q {:?} k {:?} v {:?} causal={causal}",
                    q.shape(),
                    k.shape(),
                    val.shape()
                ),
                vec![q, k, val],
                move |v| {
                    let m = mask.as_ref().map(|m| like(m, &v[0])).transpose()?;
                    Ok(Var::sdpa(&v[0], &v[1], &v[2], m.as_ref(), scale)?.z)
                },
            )
        });
    prop_oneof![apply, sdpa].boxed()
}

/// The random graphs of one op kind. Exhaustive: a new kind does not compile without a property.
fn strategy_for(kind: OpKind) -> BoxedStrategy<PCase> {
    match kind {
        OpKind::Leaf => unary("leaf", 0..=4, D::U(-1.0, 1.0), |x| Ok(x.clone())),
        OpKind::Identity => unary("hook", 0..=4, D::U(-1.0, 1.0), |x| {
            x.hook("blocks.0.hook_resid_pre")
        }),
        OpKind::Exp => unary("exp", 0..=4, D::U(-2.0, 2.0), |x| x.exp()),
        OpKind::Log => unary("log", 0..=4, D::U(0.1, 3.0), |x| x.log()),
        OpKind::Sqrt => unary("sqrt", 0..=4, D::U(0.1, 3.0), |x| x.sqrt()),
        OpKind::Rsqrt => unary("rsqrt", 0..=4, D::U(0.1, 3.0), |x| x.rsqrt()),
        OpKind::Tanh => unary("tanh", 0..=4, D::U(-3.0, 3.0), |x| x.tanh()),
        OpKind::Powf => {
            // (p, inputs): integer powers take signed inputs, the others positive ones; p = -1
            // keeps away from the pole at 0.
            let ps = select(vec![
                (2.5, D::U(0.2, 2.0)),
                (0.5, D::U(0.2, 2.0)),
                (-0.5, D::U(0.2, 2.0)),
                (2.0, D::U(-2.0, 2.0)),
                (3.0, D::U(-2.0, 2.0)),
                (-1.0, D::Away(0.3, 2.0)),
            ]);
            (shape(0..=4), ps)
                .prop_flat_map(|(s, (p, d))| (tensor(s, d), Just(p), Just(d)))
                .prop_map(|(x, p, d)| {
                    pcase(
                        format!("powf {p} {d:?} {:?}", x.shape()),
                        vec![x],
                        move |v| v[0].powf(p),
                    )
                })
                .boxed()
        }
        OpKind::GeluErf => unary("gelu_erf", 0..=4, D::Wide, |x| x.gelu_erf()),
        OpKind::GeluTanh => unary("gelu_tanh", 0..=4, D::Wide, |x| x.gelu_tanh()),
        OpKind::Silu => unary("silu", 0..=4, D::Wide, |x| x.silu()),
        OpKind::Relu => unary("relu", 0..=4, D::Away(0.1, 2.0), |x| x.relu()),
        OpKind::Affine => (shape(0..=4), -3.0..3.0f64, -3.0..3.0f64)
            .prop_flat_map(|(s, m, a)| (tensor(s, D::U(-2.0, 2.0)), Just(m), Just(a)))
            .prop_map(|(x, m, a)| {
                pcase(
                    format!("affine {m}·x + {a} {:?}", x.shape()),
                    vec![x],
                    move |v| v[0].affine(m, a),
                )
            })
            .boxed(),
        OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Div => binary(kind),
        OpKind::MatMul => matmul(),
        OpKind::Sum | OpKind::Mean => reduce(kind),
        OpKind::Max => max(),
        OpKind::Softmax => softmax(false),
        OpKind::LogSoftmax => softmax(true),
        OpKind::LayerNorm => norm(false),
        OpKind::RmsNorm => norm(true),
        OpKind::Embedding => embedding(),
        OpKind::Reshape => reshape(),
        OpKind::Permute => permute(),
        OpKind::Narrow => narrow(),
        OpKind::Concat => concat(),
        OpKind::IndexSelect => index_select(),
        OpKind::Rope => rope(),
        OpKind::AttnScores => attn_scores(),
        OpKind::AttnApply => attn_apply(),
    }
}

// === The property ===

/// Runs the graph on a tape in `dtype`: (output, gradient of ⟨cot, y⟩ for every input, the op
/// kinds the tape recorded).
fn analytic(
    c: &PCase,
    dtype: DType,
    cot: &[f64],
) -> std::result::Result<(Tensor, Vec<Tensor>, Vec<OpKind>), String> {
    let tape = Tape::new();
    let vars: Vec<Var> = c
        .inputs
        .iter()
        .map(|x| tape.var(x.to_dtype(dtype).unwrap()))
        .collect();
    let y = (c.f)(&vars).map_err(|e| format!("{dtype:?} forward failed: {e}"))?;
    let kinds = tape.kinds();
    let s = Tensor::from_f64(cot, y.shape(), dtype).map_err(|e| format!("cotangent: {e}"))?;
    let refs: Vec<&Var> = vars.iter().collect();
    let g = tape
        .grad(&[&y], &[s], &refs)
        .map_err(|e| format!("{dtype:?} backward failed: {e}"))?;
    let grads = g
        .into_iter()
        .zip(&c.inputs)
        .map(|(g, x)| g.unwrap_or_else(|| Tensor::zeros(x.shape(), dtype)))
        .collect();
    Ok((y.into_value(), grads, kinds))
}

/// The f64 forward on constants (no tape).
fn forward(c: &PCase, inputs: &[Tensor]) -> std::result::Result<Vec<f64>, String> {
    let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
    let y = (c.f)(&vars).map_err(|e| format!("forward on constants failed: {e}"))?;
    Ok(y.into_value().to_vec_f64().unwrap())
}

fn check(kind: OpKind, c: &PCase, cot_seed: u64) -> std::result::Result<(), TestCaseError> {
    let fail = |msg: String| TestCaseError::fail(format!("[{}] {}: {msg}", kind.name(), c.desc));
    let mut r = common::rng(cot_seed);
    let y0 = forward(c, &c.inputs).map_err(fail)?;
    // A non-finite output (−∞ of a masked log-softmax entry) is a constant: cotangent zero there.
    let cot: Vec<f64> = y0
        .iter()
        .map(|v| {
            if v.is_finite() {
                r.gen_range(-1.5..1.5)
            } else {
                0.0
            }
        })
        .collect();
    let (y64, g64, kinds) = analytic(c, DType::F64, &cot).map_err(fail)?;
    if !kinds.contains(&kind) {
        return Err(fail(format!(
            "the graph did not record {}: {kinds:?}",
            kind.name()
        )));
    }
    let y64v = y64.to_vec_f64().unwrap();
    if let Some(j) = (0..y0.len()).find(|&j| y0[j].to_bits() != y64v[j].to_bits()) {
        return Err(fail(format!(
            "forward on the tape differs from the forward on constants at {j}: {} vs {}",
            y64v[j], y0[j]
        )));
    }

    // Central differences: Σ_i c_i (y⁺_i − y⁻_i) / 2ε on ≤ MAX_FD_ELEMS elements of every input.
    struct Worst {
        excess: f64,
        msg: String,
    }
    let mut worst: Option<Worst> = None;
    let mut bad = 0usize;
    let mut checked = 0usize;
    for (i, x) in c.inputs.iter().enumerate() {
        let data = x.to_vec_f64().unwrap();
        let ga = g64[i].to_vec_f64().unwrap();
        if g64[i].shape() != x.shape() {
            return Err(fail(format!(
                "gradient of input {i} has shape {:?}, input {:?}",
                g64[i].shape(),
                x.shape()
            )));
        }
        let idx: Vec<usize> = if data.len() <= MAX_FD_ELEMS {
            (0..data.len()).collect()
        } else {
            let mut v = sample(&mut r, data.len(), MAX_FD_ELEMS).into_vec();
            v.sort_unstable();
            v
        };
        for j in idx {
            let at = |delta: f64| {
                let mut v = data.clone();
                v[j] += delta;
                let mut inp = c.inputs.clone();
                inp[i] = t64(&v, x.shape());
                forward(c, &inp)
            };
            let (yp, ym) = (at(EPS).map_err(fail)?, at(-EPS).map_err(fail)?);
            let num = (0..y0.len())
                .filter(|&o| cot[o] != 0.0)
                .map(|o| cot[o] * (yp[o] - ym[o]))
                .sum::<f64>()
                / (2.0 * EPS);
            checked += 1;
            let err = (ga[j] - num).abs();
            let tol = GRAD_TOL * (1.0 + num.abs());
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err / tol
            };
            if excess > 1.0 {
                bad += 1;
            }
            if worst.as_ref().is_none_or(|w| excess > w.excess) {
                worst = Some(Worst {
                    excess,
                    msg: format!(
                        "input {i} {:?} element {j} {:?} (x = {:.6}): analytic {:.10e} numeric {:.10e} |diff| {err:.3e} > tol {tol:.3e}",
                        x.shape(),
                        unravel(j, x.shape()),
                        data[j],
                        ga[j],
                        num
                    ),
                });
            }
        }
    }
    if bad > 0 {
        return Err(fail(format!(
            "{bad} of {checked} sampled gradient entries disagree with central differences \
             (ε = {EPS:e}); worst: {}",
            worst.unwrap().msg
        )));
    }

    // f32 vs f64, forward and gradients.
    let (y32, g32, _) = analytic(c, DType::F32, &cot).map_err(fail)?;
    if y32.dtype() != DType::F32 {
        return Err(fail("the f32 run did not stay in f32".into()));
    }
    let pairs = std::iter::once(("output".to_string(), &y32, &y64)).chain(
        g32.iter()
            .zip(&g64)
            .enumerate()
            .map(|(i, (a, b))| (format!("gradient of input {i}"), a, b)),
    );
    for (what, a, b) in pairs {
        let (av, bv) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
        let scale = bv
            .iter()
            .filter(|v| v.is_finite())
            .fold(1.0f64, |m, v| m.max(v.abs()));
        let mut worst = (0.0f64, 0usize);
        for (j, (x, y)) in av.iter().zip(&bv).enumerate() {
            if x.is_infinite() && x == y {
                continue;
            }
            let d = (x - y).abs();
            if d.is_nan() || d > worst.0 {
                worst = (if d.is_nan() { f64::INFINITY } else { d }, j);
            }
        }
        if worst.0 > F32_TOL * scale {
            let j = worst.1;
            return Err(fail(format!(
                "f32 vs f64 {what} {:?}: element {j} {:?}: f32 {:.8e} f64 {:.8e} diff {:.3e} > {F32_TOL:e} × scale {scale:.3e}",
                b.shape(),
                unravel(j, b.shape()),
                av[j],
                bv[j],
                worst.0
            )));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a non-negative integer"))
    })
}

/// A fixed 32-byte ChaCha seed per kind (FNV-1a of the name, spread by splitmix64).
fn seed_bytes(kind: OpKind, extra: u64) -> [u8; 32] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.name().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= extra.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

fn check_kind(kind: OpKind) {
    let cases = env_u64("GRADPATH_PROPTEST_CASES").map_or(DEFAULT_CASES, |n| n as u32);
    let extra = env_u64("GRADPATH_PROPTEST_SEED").unwrap_or(0);
    // Every field that `Config::default()` may take from a PROPTEST_* variable and that changes
    // what runs is set here.
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(extra),
        fork: false,
        timeout: 0,
        max_shrink_iters: 256,
        max_shrink_time: 0,
        max_local_rejects: 65_536,
        max_global_rejects: 1024,
        max_flat_map_regens: 1_000_000,
        verbose: 0,
        source_file: None,
        test_name: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(kind, extra));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = (strategy_for(kind), any::<u64>());
    let result = runner.run(&strategy, |(c, cot_seed)| check(kind, &c, cot_seed));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (c, cot_seed))) => panic!(
            "op kind {} fails its property (after shrinking):\n  {why}\n  minimal case: {c:?}\n  \
             cotangent seed: {cot_seed}\n  (GRADPATH_PROPTEST_SEED={extra}, {cases} cases)",
            kind.name()
        ),
        Err(e) => panic!("op kind {}: {e}", kind.name()),
    }
}

/// One `#[test]` per kind (`cargo test --release --test ops_proptest op::rope`).
mod op {
    use super::{check_kind, OpKind};

    macro_rules! kind_tests {
        ($($test:ident => $kind:ident),* $(,)?) => {
            $(
                #[test]
                fn $test() {
                    check_kind(OpKind::$kind);
                }
            )*
            /// The kinds that have a `#[test]` here, in catalogue order.
            pub(super) const TESTED: &[OpKind] = &[$(OpKind::$kind),*];
        };
    }

    kind_tests!(
        leaf => Leaf,
        identity => Identity,
        exp => Exp,
        log => Log,
        sqrt => Sqrt,
        rsqrt => Rsqrt,
        tanh => Tanh,
        powf => Powf,
        gelu_erf => GeluErf,
        gelu_tanh => GeluTanh,
        silu => Silu,
        relu => Relu,
        affine => Affine,
        add => Add,
        sub => Sub,
        mul => Mul,
        div => Div,
        matmul => MatMul,
        sum => Sum,
        mean => Mean,
        max => Max,
        softmax => Softmax,
        log_softmax => LogSoftmax,
        layer_norm => LayerNorm,
        rms_norm => RmsNorm,
        embedding => Embedding,
        reshape => Reshape,
        permute => Permute,
        narrow => Narrow,
        concat => Concat,
        index_select => IndexSelect,
        rope => Rope,
        attn_scores => AttnScores,
        attn_apply => AttnApply,
    );
}

#[test]
fn every_kind_has_a_property_test() {
    assert_eq!(
        op::TESTED,
        OpKind::ALL,
        "every op kind needs a line in kind_tests! (catalogue order)"
    );
}
