//! f64 central finite-difference gradient check for every op of the catalogue.
//!
//! The table is `cases_for(kind)`, an exhaustive `match` over [`OpKind`]: adding an op kind without
//! a case does not compile, and `every_kind_has_a_case` fails if a kind yields no case.
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

use common::{away_from_zero, rng, uniform};
use gradpath::autodiff::OpKind;
use gradpath::{DType, Result, Tape, Tensor, Var};
use rand::{rngs::StdRng, Rng};

type GraphFn = Box<dyn Fn(&[Var]) -> Result<Var>>;

struct Case {
    name: String,
    inputs: Vec<Tensor>,
    f: GraphFn,
}

fn case(
    name: impl Into<String>,
    inputs: Vec<Tensor>,
    f: impl Fn(&[Var]) -> Result<Var> + 'static,
) -> Case {
    Case {
        name: name.into(),
        inputs,
        f: Box::new(f),
    }
}

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

/// A mask with -inf at the given (row, col) entries of a `[rows, cols]` grid.
fn mask_with(shape: &[usize], masked: impl Fn(&[usize]) -> bool) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v = vec![0.0; n];
    let mut idx = vec![0; shape.len()];
    for x in v.iter_mut() {
        if masked(&idx) {
            *x = f64::NEG_INFINITY;
        }
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    t(&v, shape)
}

fn unary_cases(
    r: &mut StdRng,
    name: &str,
    lo: f64,
    hi: f64,
    f: fn(&Var) -> Result<Var>,
    large: bool,
) -> Vec<Case> {
    let mut cs = vec![case(
        format!("{name} [3,5,7]"),
        vec![uniform(r, &[3, 5, 7], lo, hi)],
        move |v| f(&v[0]),
    )];
    if large {
        cs.push(case(
            format!("{name} large |x|"),
            vec![away_from_zero(r, &[4, 9], 5.0, 30.0)],
            move |v| f(&v[0]),
        ));
    }
    cs
}

fn cases_for(kind: OpKind, r: &mut StdRng) -> Vec<Case> {
    match kind {
        OpKind::Leaf => vec![case("leaf", vec![uniform(r, &[2, 3], -1.0, 1.0)], |v| {
            Ok(v[0].clone())
        })],
        OpKind::Identity => vec![case("hook", vec![uniform(r, &[2, 3], -1.0, 1.0)], |v| {
            v[0].hook("blocks.0.hook_resid_pre")
        })],
        OpKind::Exp => unary_cases(r, "exp", -2.0, 2.0, |x| x.exp(), false),
        OpKind::Log => unary_cases(r, "log", 0.5, 3.0, |x| x.log(), false),
        OpKind::Sqrt => unary_cases(r, "sqrt", 0.5, 3.0, |x| x.sqrt(), false),
        OpKind::Rsqrt => unary_cases(r, "rsqrt", 0.5, 3.0, |x| x.rsqrt(), false),
        OpKind::Tanh => unary_cases(r, "tanh", -3.0, 3.0, |x| x.tanh(), false),
        OpKind::Powf => {
            let mut cs = unary_cases(r, "powf 2.5", 0.5, 2.0, |x| x.powf(2.5), false);
            cs.extend(unary_cases(
                r,
                "powf 3 signed",
                -2.0,
                2.0,
                |x| x.powf(3.0),
                false,
            ));
            cs.extend(unary_cases(
                r,
                "powf -0.5",
                0.5,
                2.0,
                |x| x.powf(-0.5),
                false,
            ));
            cs
        }
        OpKind::GeluErf => unary_cases(r, "gelu_erf", -4.0, 4.0, |x| x.gelu_erf(), true),
        OpKind::GeluTanh => unary_cases(r, "gelu_tanh", -4.0, 4.0, |x| x.gelu_tanh(), true),
        OpKind::Silu => unary_cases(r, "silu", -6.0, 6.0, |x| x.silu(), true),
        OpKind::Relu => vec![case(
            "relu",
            vec![away_from_zero(r, &[5, 7], 0.01, 3.0)],
            |v| v[0].relu(),
        )],
        OpKind::Affine => vec![
            case("affine", vec![uniform(r, &[5, 7], -2.0, 2.0)], |v| {
                v[0].affine(1.7, -0.3)
            }),
            case("scale+add_scalar", vec![uniform(r, &[3], -2.0, 2.0)], |v| {
                v[0].scale(-2.0)?.add_scalar(4.0)
            }),
        ],
        OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Div => {
            let op = kind;
            let f = move |a: &Var, b: &Var| match op {
                OpKind::Add => a.add(b),
                OpKind::Sub => a.sub(b),
                OpKind::Mul => a.mul(b),
                _ => a.div(b),
            };
            let pairs: [(&[usize], &[usize]); 4] = [
                (&[3, 5, 7], &[3, 5, 7]),
                (&[3, 5, 7], &[7]),
                (&[3, 1, 7], &[5, 1]),
                (&[1], &[2, 3]),
            ];
            pairs
                .iter()
                .map(|(sa, sb)| {
                    let a = uniform(r, sa, -2.0, 2.0);
                    let b = away_from_zero(r, sb, 0.5, 2.0);
                    case(
                        format!("{} {sa:?} {sb:?}", kind.name()),
                        vec![a, b],
                        move |v| f(&v[0], &v[1]),
                    )
                })
                .collect()
        }
        OpKind::MatMul => {
            let mut cs = Vec::new();
            for ta in [false, true] {
                for tb in [false, true] {
                    let (m, k, n) = (3, 5, 4);
                    let sa = if ta { [2, k, m] } else { [2, m, k] };
                    let sb3 = if tb { [2, n, k] } else { [2, k, n] };
                    let sb2 = if tb { [n, k] } else { [k, n] };
                    cs.push(case(
                        format!("matmul batched ta={ta} tb={tb}"),
                        vec![uniform(r, &sa, -1.0, 1.0), uniform(r, &sb3, -1.0, 1.0)],
                        move |v| v[0].matmul_t(&v[1], ta, tb),
                    ));
                    cs.push(case(
                        format!("matmul shared-B ta={ta} tb={tb}"),
                        vec![uniform(r, &sa, -1.0, 1.0), uniform(r, &sb2, -1.0, 1.0)],
                        move |v| v[0].matmul_t(&v[1], ta, tb),
                    ));
                }
            }
            cs.push(case(
                "matmul 2-D odd",
                vec![
                    uniform(r, &[7, 1], -1.0, 1.0),
                    uniform(r, &[1, 9], -1.0, 1.0),
                ],
                |v| v[0].matmul(&v[1]),
            ));
            cs
        }
        OpKind::Sum => vec![
            case("sum axis 1", vec![uniform(r, &[3, 5, 7], -1.0, 1.0)], |v| {
                v[0].sum(&[1], false)
            }),
            case(
                "sum axes 0,2 keepdim",
                vec![uniform(r, &[3, 5, 7], -1.0, 1.0)],
                |v| v[0].sum(&[0, 2], true),
            ),
            case("sum all", vec![uniform(r, &[3, 5], -1.0, 1.0)], |v| {
                v[0].sum_all()
            }),
        ],
        OpKind::Mean => vec![
            case(
                "mean axis 2",
                vec![uniform(r, &[3, 5, 7], -1.0, 1.0)],
                |v| v[0].mean(&[2], false),
            ),
            case(
                "mean axes 0,1 keepdim",
                vec![uniform(r, &[3, 5, 7], -1.0, 1.0)],
                |v| v[0].mean(&[0, 1], true),
            ),
        ],
        OpKind::Max => vec![
            case("max axis 1", vec![uniform(r, &[3, 5, 7], -1.0, 1.0)], |v| {
                v[0].max(1, false)
            }),
            case(
                "max last keepdim",
                vec![uniform(r, &[4, 9], -1.0, 1.0)],
                |v| v[0].max(1, true),
            ),
        ],
        OpKind::Softmax | OpKind::LogSoftmax => {
            let log = kind == OpKind::LogSoftmax;
            let sm = move |x: &Var, m: Option<&Tensor>| {
                let m = m.map(|m| m.to_dtype(x.dtype())).transpose()?;
                if log {
                    x.log_softmax(m.as_ref())
                } else {
                    x.softmax(m.as_ref())
                }
            };
            let pad = mask_with(&[2, 1, 1, 5], |i| i[0] == 1 && i[3] >= 3);
            let causal = mask_with(&[1, 1, 4, 5], |i| i[3] > i[2] + 1);
            let mut cs = vec![
                case(
                    format!("{} plain [3,7]", kind.name()),
                    vec![uniform(r, &[3, 7], -2.0, 2.0)],
                    move |v| sm(&v[0], None),
                ),
                case(
                    format!("{} padding mask", kind.name()),
                    vec![uniform(r, &[2, 3, 4, 5], -2.0, 2.0)],
                    move |v| sm(&v[0], Some(&pad)),
                ),
                case(
                    format!("{} causal mask", kind.name()),
                    vec![uniform(r, &[2, 3, 4, 5], -2.0, 2.0)],
                    move |v| sm(&v[0], Some(&causal)),
                ),
                case(
                    format!("{} large |x|", kind.name()),
                    vec![away_from_zero(r, &[4, 6], 5.0, 30.0)],
                    move |v| sm(&v[0], None),
                ),
            ];
            if log {
                // Partially masked rows: masked outputs are −∞ constants; finite differences on the
                // finite outputs only (the seed is zero where the output is −∞, see `seed_for`).
                let part = mask_with(&[4, 5], |i| i[1] == 0 || (i[0] == 1 && i[1] == 3));
                cs.push(case(
                    "LogSoftmax partial mask",
                    vec![uniform(r, &[2, 4, 5], -2.0, 2.0)],
                    move |v| sm(&v[0], Some(&part)),
                ));
            }
            if !log {
                // A row masked everywhere gives zeros and no gradient (softmax only: log gives -inf).
                let full = mask_with(&[4, 5], |i| i[0] == 2);
                cs.push(case(
                    "Softmax fully masked row",
                    vec![uniform(r, &[2, 4, 5], -2.0, 2.0)],
                    move |v| sm(&v[0], Some(&full)),
                ));
            }
            cs
        }
        OpKind::LayerNorm => vec![
            case(
                "layer_norm x,w,b",
                vec![
                    uniform(r, &[3, 5, 7], -2.0, 2.0),
                    uniform(r, &[7], 0.5, 1.5),
                    uniform(r, &[7], -0.5, 0.5),
                ],
                |v| v[0].layer_norm(&v[1], Some(&v[2]), 1e-5),
            ),
            case(
                "layer_norm no bias",
                vec![uniform(r, &[4, 9], -2.0, 2.0), uniform(r, &[9], 0.5, 1.5)],
                |v| v[0].layer_norm(&v[1], None, 1e-12),
            ),
        ],
        OpKind::RmsNorm => vec![case(
            "rms_norm x,w",
            vec![
                uniform(r, &[3, 5, 7], -2.0, 2.0),
                uniform(r, &[7], 0.5, 1.5),
            ],
            |v| v[0].rms_norm(&v[1], 1e-6),
        )],
        OpKind::Embedding => {
            let ids = vec![3, 0, 10, 3, 7, 3];
            vec![case(
                "embedding (repeated ids)",
                vec![uniform(r, &[11, 6], -1.0, 1.0)],
                move |v| Var::embedding(&v[0], &ids, &[2, 3]),
            )]
        }
        OpKind::Reshape => vec![case(
            "reshape",
            vec![uniform(r, &[3, 5, 7], -1.0, 1.0)],
            |v| v[0].reshape(&[15, 7])?.mul(&v[0].reshape(&[15, 7])?),
        )],
        OpKind::Permute => vec![
            case(
                "permute [2,0,3,1]",
                vec![uniform(r, &[2, 3, 4, 5], -1.0, 1.0)],
                |v| v[0].permute(&[2, 0, 3, 1]),
            ),
            case(
                "transpose 0,2",
                vec![uniform(r, &[2, 3, 5], -1.0, 1.0)],
                |v| v[0].transpose(0, 2),
            ),
            // 2-D takes the tiled, banded path: more than one 32-wide tile and band, ragged edges.
            case(
                "transpose 2-D [37, 70]",
                vec![uniform(r, &[37, 70], -1.0, 1.0)],
                |v| v[0].permute(&[1, 0]),
            ),
        ],
        OpKind::Narrow => vec![
            case(
                "narrow axis 1",
                vec![uniform(r, &[3, 6, 5], -1.0, 1.0)],
                |v| v[0].narrow(1, 1, 3),
            ),
            case(
                "split [2,3,1] recombined",
                vec![uniform(r, &[3, 6], -1.0, 1.0)],
                |v| {
                    let p = v[0].split(1, &[2, 3, 1])?;
                    p[1].sum(&[1], true)?.mul(&p[0])?.add(&p[2])
                },
            ),
        ],
        OpKind::Concat => vec![case(
            "concat axis 1 (one constant)",
            vec![
                uniform(r, &[2, 3, 4], -1.0, 1.0),
                uniform(r, &[2, 1, 4], -1.0, 1.0),
            ],
            |v| {
                let c = Var::constant(
                    Tensor::full(0.5, &[2, 2, 4], DType::F64).to_dtype(v[0].dtype())?,
                );
                Var::concat(&[&v[0], &c, &v[1]], 1)
            },
        )],
        OpKind::IndexSelect => vec![case(
            "index_select repeats",
            vec![uniform(r, &[3, 5, 2], -1.0, 1.0)],
            |v| v[0].index_select(1, &[2, 0, 2, 4]),
        )],
        OpKind::Rope => {
            let (cos, sin) =
                gradpath::ops::rope::cos_sin_tables(3, 6, 10000.0, None, DType::F64).unwrap();
            let mut r2 = rng(99);
            let cb = uniform(&mut r2, &[2, 3, 6], -1.0, 1.0);
            let sb = uniform(&mut r2, &[2, 3, 6], -1.0, 1.0);
            vec![
                case(
                    "rope shared tables",
                    vec![uniform(r, &[2, 3, 4, 6], -1.0, 1.0)],
                    move |v| v[0].rope(&cos.to_dtype(v[0].dtype())?, &sin.to_dtype(v[0].dtype())?),
                ),
                case(
                    "rope per-batch arbitrary cos/sin",
                    vec![uniform(r, &[2, 3, 4, 6], -1.0, 1.0)],
                    move |v| v[0].rope(&cb.to_dtype(v[0].dtype())?, &sb.to_dtype(v[0].dtype())?),
                ),
            ]
        }
        OpKind::AttnScores => vec![
            case(
                "attn scores MHA",
                vec![
                    uniform(r, &[2, 3, 4, 5], -1.0, 1.0),
                    uniform(r, &[2, 4, 4, 5], -1.0, 1.0),
                ],
                |v| v[0].attn_scores(&v[1], 0.4),
            ),
            case(
                "attn scores GQA g=2",
                vec![
                    uniform(r, &[2, 3, 4, 5], -1.0, 1.0),
                    uniform(r, &[2, 4, 2, 5], -1.0, 1.0),
                ],
                |v| v[0].attn_scores(&v[1], 0.4),
            ),
        ],
        OpKind::AttnApply => {
            let causal = mask_with(&[1, 1, 3, 3], |i| i[3] > i[2]);
            vec![
                case(
                    "attn apply GQA g=2",
                    vec![
                        uniform(r, &[2, 4, 3, 4], 0.0, 1.0),
                        uniform(r, &[2, 4, 2, 5], -1.0, 1.0),
                    ],
                    |v| v[0].attn_apply(&v[1]),
                ),
                case(
                    "sdpa causal GQA (q,k,v)",
                    vec![
                        uniform(r, &[2, 3, 4, 6], -1.0, 1.0),
                        uniform(r, &[2, 3, 2, 6], -1.0, 1.0),
                        uniform(r, &[2, 3, 2, 6], -1.0, 1.0),
                    ],
                    move |v| {
                        let m = causal.to_dtype(v[0].dtype())?;
                        Ok(Var::sdpa(&v[0], &v[1], &v[2], Some(&m), 1.0 / 6f64.sqrt())?.z)
                    },
                ),
            ]
        }
    }
}

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

fn all_cases() -> Vec<(OpKind, Case)> {
    let mut r = rng(7);
    OpKind::ALL
        .iter()
        .flat_map(|&k| cases_for(k, &mut r).into_iter().map(move |c| (k, c)))
        .collect()
}

fn seed_for(c: &Case, r: &mut StdRng) -> Vec<f64> {
    let vars: Vec<Var> = c.inputs.iter().cloned().map(Var::constant).collect();
    let y = (c.f)(&vars).unwrap().into_value().to_vec_f64().unwrap();
    // A non-finite output (−∞ of a masked log-softmax entry) is a constant: seed it with zero so
    // that L stays finite; the analytic rule must still give zero through it.
    y.iter()
        .map(|v| {
            if v.is_finite() {
                r.gen_range(-1.5..1.5)
            } else {
                0.0
            }
        })
        .collect()
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
