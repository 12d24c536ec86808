//! The per-op case table shared by the op tests (`ops_gradcheck`, `device_parity`): for every
//! entry of the catalogue, small graphs that exercise it, with f64 inputs.
//!
//! `cases_for(kind)` is an exhaustive `match` over [`OpKind`]: adding an op kind without a case does
//! not compile, and both tests fail if a kind yields no case or its cases never record it. A case's
//! constants (masks, RoPE tables, ...) follow its inputs' dtype and device ([`like`]), so the same
//! case runs on any device.
#![allow(dead_code)]

use crate::common::{away_from_zero, rng, uniform};
use gradpath::autodiff::OpKind;
use gradpath::{DType, Result, Tensor, Var};
use rand::{rngs::StdRng, Rng};

pub type GraphFn = Box<dyn Fn(&[Var]) -> Result<Var>>;

pub struct Case {
    pub name: String,
    /// The inputs, f64 on the CPU.
    pub inputs: Vec<Tensor>,
    pub f: GraphFn,
}

pub fn case(
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

pub fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

/// `c` (a constant of a case) in the dtype and on the device of the input `x`.
pub fn like(c: &Tensor, x: &Var) -> Result<Tensor> {
    c.to_dtype(x.dtype())?.to_device(x.device())
}

/// A mask with -inf at the given (row, col) entries of a `[rows, cols]` grid.
pub fn mask_with(shape: &[usize], masked: impl Fn(&[usize]) -> bool) -> Tensor {
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

pub fn cases_for(kind: OpKind, r: &mut StdRng) -> Vec<Case> {
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
                let m = m.map(|m| like(m, x)).transpose()?;
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
                let c = Var::constant(Tensor::full_on(
                    0.5,
                    &[2, 2, 4],
                    v[0].dtype(),
                    v[0].device(),
                )?);
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
                    move |v| v[0].rope(&like(&cos, &v[0])?, &like(&sin, &v[0])?),
                ),
                case(
                    "rope per-batch arbitrary cos/sin",
                    vec![uniform(r, &[2, 3, 4, 6], -1.0, 1.0)],
                    move |v| v[0].rope(&like(&cb, &v[0])?, &like(&sb, &v[0])?),
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
                        let m = like(&causal, &v[0])?;
                        Ok(Var::sdpa(&v[0], &v[1], &v[2], Some(&m), 1.0 / 6f64.sqrt())?.z)
                    },
                ),
            ]
        }
    }
}

pub fn all_cases() -> Vec<(OpKind, Case)> {
    let mut r = rng(7);
    OpKind::ALL
        .iter()
        .flat_map(|&k| cases_for(k, &mut r).into_iter().map(move |c| (k, c)))
        .collect()
}

pub fn seed_for(c: &Case, r: &mut StdRng) -> Vec<f64> {
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
