//! The speed paths of the CPU kernels give exactly what the general paths give: the in-place
//! bias of `Var::linear_bias` (same values bit for bit, same tape, same gradients as
//! `linear` + `add`), the block fast path of the sum/mean backward (against a direct
//! broadcast), the per-operation binary loops, and the in-place softmax. (The pool's best-fit reuse
//! is tested on a private pool in `src/tensor/pool.rs`: the process-wide one is shared by the tests
//! running beside it.)

mod common;

use common::{rng, uniform};
use gradpath::ops::{elementwise, reduce};
use gradpath::{DType, Tape, Tensor, Var};

fn bits32(t: &Tensor) -> Vec<u32> {
    t.as_slice::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// The bits of any tensor's values (as f64: exact for f32 and f64).
fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn linear_bias_equals_linear_then_add_bit_for_bit() {
    for dtype in [DType::F32, DType::F64] {
        for (rows, d_in, d_out) in [(3, 5, 7), (40, 33, 65), (64, 48, 700)] {
            let mut r = rng(rows as u64);
            let x0 = uniform(&mut r, &[2, rows, d_in], -1.0, 1.0)
                .to_dtype(dtype)
                .unwrap();
            let w = Var::constant(
                uniform(&mut r, &[d_out, d_in], -0.5, 0.5)
                    .to_dtype(dtype)
                    .unwrap(),
            );
            let wt = gradpath::ops::movement::permute(w.value(), &[1, 0]).unwrap();
            let b = Var::constant(
                uniform(&mut r, &[d_out], -0.5, 0.5)
                    .to_dtype(dtype)
                    .unwrap(),
            );
            let seed = uniform(&mut r, &[2, rows, d_out], -1.0, 1.0)
                .to_dtype(dtype)
                .unwrap();
            let run = |fused: bool, with_wt: bool| {
                let tape = Tape::new();
                let x = tape.var(x0.clone());
                let y = if fused {
                    x.linear_bias(&w, with_wt.then_some(&wt), &b).unwrap()
                } else if with_wt {
                    x.linear(&w, &wt).unwrap().add(&b).unwrap()
                } else {
                    x.matmul_t(&w, false, true).unwrap().add(&b).unwrap()
                };
                let kinds = tape.kinds();
                let g = tape
                    .grad(&[&y], std::slice::from_ref(&seed), &[&x])
                    .unwrap();
                (
                    y.value().to_vec_f64().unwrap(),
                    kinds,
                    g[0].as_ref().unwrap().to_vec_f64().unwrap(),
                )
            };
            for with_wt in [true, false] {
                let (y0, k0, g0) = run(false, with_wt);
                let (y1, k1, g1) = run(true, with_wt);
                let same = |a: &[f64], b: &[f64]| {
                    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
                };
                assert!(
                    same(&y0, &y1),
                    "{dtype:?} {rows}×{d_in}×{d_out}: values differ"
                );
                assert_eq!(k0, k1, "the fused path must record the same nodes");
                assert!(
                    same(&g0, &g1),
                    "{dtype:?} {rows}×{d_in}×{d_out}: gradients differ"
                );
            }
        }
    }
}

#[test]
fn linear_bias_with_a_tracked_bias_gives_its_gradient() {
    // The bias as a tape leaf (fine-tuning): d/db = Σ over rows of the seed.
    let tape = Tape::new();
    let mut r = rng(7);
    let x = tape.var(uniform(&mut r, &[4, 3], -1.0, 1.0));
    let w = tape.var(uniform(&mut r, &[5, 3], -1.0, 1.0));
    let b = tape.var(uniform(&mut r, &[5], -1.0, 1.0));
    let y = x.linear_bias(&w, None, &b).unwrap();
    let seed = uniform(&mut r, &[4, 5], -1.0, 1.0);
    let g = tape
        .grad(&[&y], std::slice::from_ref(&seed), &[&b])
        .unwrap();
    let s = seed.to_vec_f64().unwrap();
    let want: Vec<f64> = (0..5).map(|j| (0..4).map(|i| s[i * 5 + j]).sum()).collect();
    let got = g[0].as_ref().unwrap().to_vec_f64().unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

#[test]
fn add_rows_in_place_refuses_shared_buffers_and_wrong_shapes() {
    let y = Tensor::from_vec(vec![1f32; 6], &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![0.5f32; 3], &[3]).unwrap();
    let mut shared = y.clone(); // two handles: not unique
    assert!(!elementwise::add_rows_in_place(&mut shared, &b));
    assert_eq!(y.to_vec_f64().unwrap(), vec![1.0; 6]);
    let mut own = Tensor::from_vec(vec![1f32; 6], &[2, 3]).unwrap();
    let wrong = Tensor::from_vec(vec![0.5f32; 2], &[2]).unwrap();
    assert!(!elementwise::add_rows_in_place(&mut own, &wrong));
    let b64 = Tensor::from_vec(vec![0.5f64; 3], &[3]).unwrap();
    assert!(!elementwise::add_rows_in_place(&mut own, &b64));
    assert!(elementwise::add_rows_in_place(&mut own, &b));
    assert_eq!(own.to_vec_f64().unwrap(), vec![1.5; 6]);
}

#[test]
fn binary_ops_match_scalar_arithmetic_bit_for_bit() {
    let mut r = rng(3);
    // Large enough for the parallel loops; broadcasts: same shape, a row, and a general one.
    let a = uniform(&mut r, &[4, 50, 300], -2.0, 2.0)
        .to_dtype(DType::F32)
        .unwrap();
    for b_shape in [vec![4, 50, 300], vec![300], vec![4, 1, 300], vec![4, 50, 1]] {
        let b = uniform(&mut r, &b_shape, 0.5, 2.0)
            .to_dtype(DType::F32)
            .unwrap();
        let av = a.as_slice::<f32>().unwrap();
        let bv = b.as_slice::<f32>().unwrap();
        let bi = |i: usize| {
            let (n, m) = (i / 300 / 50, (i / 300) % 50);
            let c = i % 300;
            match b_shape.as_slice() {
                [4, 50, 300] => bv[i],
                [300] => bv[c],
                [4, 1, 300] => bv[n * 300 + c],
                _ => bv[n * 50 + m],
            }
        };
        type Scalar = fn(f32, f32) -> f32;
        let ops: [(elementwise::Binary, Scalar); 4] = [
            (elementwise::Binary::Add, |x, y| x + y),
            (elementwise::Binary::Sub, |x, y| x - y),
            (elementwise::Binary::Mul, |x, y| x * y),
            (elementwise::Binary::Div, |x, y| x / y),
        ];
        for (op, f) in ops {
            let out = elementwise::binary_forward(&a, &b, op).unwrap();
            let want: Vec<u32> = (0..av.len()).map(|i| f(av[i], bi(i)).to_bits()).collect();
            assert_eq!(bits32(&out), want, "{op:?} with b {b_shape:?}");
        }
    }
}

/// The sum/mean backward against a direct broadcast, for every set of axes of a rank-4 shape
/// (contiguous blocks take the fast path, the others the general one).
#[test]
fn sum_backward_equals_a_direct_broadcast() {
    let shape = [3usize, 4, 5, 6];
    let mut r = rng(11);
    for mask in 1u32..16 {
        let axes: Vec<usize> = (0..4).filter(|a| mask & (1 << a) != 0).collect();
        let kept: Vec<usize> = (0..4)
            .map(|a| if axes.contains(&a) { 1 } else { shape[a] })
            .collect();
        let count: usize = axes.iter().map(|&a| shape[a]).product();
        for (kind, keepdim) in [
            (reduce::ReduceKind::Sum, true),
            (reduce::ReduceKind::Mean, false),
        ] {
            let g_shape: Vec<usize> = if keepdim {
                kept.clone()
            } else {
                (0..4)
                    .filter(|a| !axes.contains(a))
                    .map(|a| shape[a])
                    .collect()
            };
            let g = uniform(&mut r, &g_shape, -1.0, 1.0);
            let got = reduce::sum_backward(&g, &shape, &axes, kind)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let gv = g.to_vec_f64().unwrap();
            let s = if kind == reduce::ReduceKind::Mean {
                1.0 / count as f64
            } else {
                1.0
            };
            let mut want = Vec::with_capacity(got.len());
            for i0 in 0..shape[0] {
                for i1 in 0..shape[1] {
                    for i2 in 0..shape[2] {
                        for i3 in 0..shape[3] {
                            let idx = [i0, i1, i2, i3];
                            let mut flat = 0;
                            for a in 0..4 {
                                let i = if axes.contains(&a) { 0 } else { idx[a] };
                                flat = flat * kept[a] + i;
                            }
                            want.push(gv[flat] * s);
                        }
                    }
                }
            }
            assert_eq!(got, want, "axes {axes:?} {kind:?}");
        }
    }
}

/// The bias gradient (`sum_to_shape` onto trailing axes) against a plain loop: narrow rows (row
/// blocks), wide rows (column split), a target with leading 1s, and the general path.
#[test]
fn sum_to_shape_equals_a_plain_loop() {
    let mut r = rng(5);
    for (g_shape, target) in [
        (vec![50, 32, 384], vec![384]),
        (vec![7, 3, 5000], vec![5000]),
        (vec![4, 6, 10], vec![1, 1, 10]),
        (vec![3, 4, 5], vec![4, 5]),
        (vec![3, 4, 5], vec![3, 1, 5]),
    ] {
        let g = uniform(&mut r, &g_shape, -1.0, 1.0);
        let got = elementwise::sum_to_shape(&g, &target)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        let gv = g.to_vec_f64().unwrap();
        // want[j] over the target's flat index: broadcast index of each element of g.
        let tn: usize = target.iter().product();
        let mut want = vec![0.0; tn];
        let rank = g_shape.len();
        let t_full: Vec<usize> = std::iter::repeat_n(1, rank - target.len())
            .chain(target.iter().copied())
            .collect();
        for (i, &v) in gv.iter().enumerate() {
            let mut rem = i;
            let mut idx = vec![0; rank];
            for a in (0..rank).rev() {
                idx[a] = rem % g_shape[a];
                rem /= g_shape[a];
            }
            let mut flat = 0;
            for a in 0..rank {
                flat = flat * t_full[a] + if t_full[a] == 1 { 0 } else { idx[a] };
            }
            want[flat] += v;
        }
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                "{g_shape:?} → {target:?}: {a} vs {b}"
            );
        }
    }
}

/// The reverse sweep's in-place elementwise backward equals the allocating one bit for bit, for
/// every unary op, owned or shared upstream gradient.
#[test]
fn unary_backward_in_place_equals_the_allocating_one() {
    use elementwise::Unary;
    let mut r = rng(9);
    let ops = [
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Rsqrt,
        Unary::Tanh,
        Unary::Powf(1.7),
        Unary::GeluErf,
        Unary::GeluTanh,
        Unary::Silu,
        Unary::Relu,
        Unary::Affine {
            mul: -0.3,
            add: 2.0,
        },
    ];
    for dtype in [DType::F32, DType::F64] {
        for op in ops {
            // Big enough for the parallel path; positive inputs keep log/sqrt/powf defined.
            let x = uniform(&mut r, &[70, 1000], 0.1, 3.0)
                .to_dtype(dtype)
                .unwrap();
            let y = elementwise::unary_forward(&x, op).unwrap();
            let saved = if op.saves_nothing() {
                None
            } else if op.saves_output() {
                Some(&y)
            } else {
                Some(&x)
            };
            let g = uniform(&mut r, &[70, 1000], -1.0, 1.0)
                .to_dtype(dtype)
                .unwrap();
            let want = elementwise::unary_backward(&g, saved, op).unwrap();
            // Shared: a second handle keeps the buffer, so a new one is written.
            let keep = g.clone();
            let shared = elementwise::unary_backward_owned(g, saved, op).unwrap();
            assert_eq!(bits(&shared), bits(&want), "{op:?} {dtype:?} shared");
            assert!(!shared.same_storage(&keep));
            // Owned: written in place.
            let owned = elementwise::unary_backward_owned(keep, saved, op).unwrap();
            assert_eq!(bits(&owned), bits(&want), "{op:?} {dtype:?} owned");
        }
    }
}

/// The in-place softmax (`softmax::forward_owned` / `backward_owned`, behind
/// `Var::softmax_consume` and the reverse sweep) equals the allocating one bit for bit: every mask
/// layout (none, a key row, one value per row, causal with a fully masked row), softmax and
/// log-softmax, both dtypes, the sequential and the parallel row loops; in place only when the
/// handle is the buffer's only owner.
#[test]
fn softmax_in_place_equals_the_allocating_one() {
    use gradpath::ops::softmax;
    let mut r = rng(21);
    for dtype in [DType::F32, DType::F64] {
        // [batch, heads, q, k]: 2·3·4 = 24 rows (sequential) and 4·4·9 = 144 rows (parallel).
        for &(b, h, q, k) in &[(2usize, 3usize, 4usize, 6usize), (4, 4, 9, 9)] {
            let ninf = f64::NEG_INFINITY;
            // key padding: the last key of batch 0 masked
            let mut kv = vec![0.0; b * k];
            kv[k - 1] = ninf;
            // one value per query row: row 1 of batch 1 masked everywhere
            let mut rv = vec![0.0; b * q];
            rv[q + 1] = ninf;
            // causal, with query row 0 masked everywhere
            let causal: Vec<f64> = (0..q * k)
                .map(|i| {
                    let (qi, ki) = (i / k, i % k);
                    if qi == 0 || ki > qi {
                        ninf
                    } else {
                        0.0
                    }
                })
                .collect();
            let masks = [
                None,
                Some(Tensor::from_f64(&kv, &[b, 1, 1, k], dtype).unwrap()),
                Some(Tensor::from_f64(&rv, &[b, 1, q, 1], dtype).unwrap()),
                Some(Tensor::from_f64(&causal, &[1, 1, q, k], dtype).unwrap()),
            ];
            for mask in &masks {
                for log in [false, true] {
                    let x = uniform(&mut r, &[b, h, q, k], -3.0, 3.0)
                        .to_dtype(dtype)
                        .unwrap();
                    let want = softmax::forward(&x, mask.as_ref(), log).unwrap();
                    let keep = x.clone();
                    let shared = softmax::forward_owned(x, mask.as_ref(), log).unwrap();
                    assert_eq!(bits(&shared), bits(&want), "{dtype:?} log {log} shared");
                    assert!(!shared.same_storage(&keep));
                    let owned = softmax::forward_owned(keep, mask.as_ref(), log).unwrap();
                    assert_eq!(bits(&owned), bits(&want), "{dtype:?} log {log} owned");

                    let g = uniform(&mut r, &[b, h, q, k], -1.0, 1.0)
                        .to_dtype(dtype)
                        .unwrap();
                    let want = softmax::backward(&g, &owned, log).unwrap();
                    let keep = g.clone();
                    let shared = softmax::backward_owned(g, &owned, log).unwrap();
                    assert_eq!(bits(&shared), bits(&want), "{dtype:?} log {log} bwd shared");
                    assert!(!shared.same_storage(&keep));
                    let in_place = softmax::backward_owned(keep, &owned, log).unwrap();
                    assert_eq!(
                        bits(&in_place),
                        bits(&want),
                        "{dtype:?} log {log} bwd owned"
                    );
                }
            }
        }
    }
}

/// `Var::softmax_consume` records what `Var::softmax` records and gives the same values and
/// gradients bit for bit, whether it could write over its input (the only handle) or not (a
/// second handle kept).
#[test]
fn softmax_consume_equals_softmax_on_the_tape() {
    let mut r = rng(22);
    let x0 = uniform(&mut r, &[3, 2, 5, 7], -2.0, 2.0)
        .to_dtype(DType::F32)
        .unwrap();
    let mask = Tensor::from_f64(
        &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, f64::NEG_INFINITY].repeat(3),
        &[3, 1, 1, 7],
        DType::F32,
    )
    .unwrap();
    let seed = uniform(&mut r, &[3, 2, 5, 7], -1.0, 1.0)
        .to_dtype(DType::F32)
        .unwrap();
    let run = |how: u8| {
        let tape = Tape::new();
        let x = tape.var(x0.clone());
        // scores as a fresh product of x, so that the consumed handle owns its buffer
        let s = x.scale(1.5).unwrap();
        let before = bits32(s.value());
        let addr = s.value().as_slice::<f32>().unwrap().as_ptr();
        let keep = (how == 2).then(|| s.clone());
        let p = if how == 0 {
            s.softmax(Some(&mask)).unwrap()
        } else {
            s.softmax_consume(Some(&mask)).unwrap()
        };
        let written_over = p.value().as_slice::<f32>().unwrap().as_ptr() == addr;
        assert_eq!(
            written_over,
            how == 1,
            "in place exactly when the handle was the only one"
        );
        if let Some(k) = &keep {
            // the kept handle still reads the scores, not the pattern
            assert_eq!(bits32(k.value()), before);
        }
        let kinds = tape.kinds();
        let g = tape
            .grad(&[&p], std::slice::from_ref(&seed), &[&x])
            .unwrap();
        (bits32(p.value()), kinds, bits32(g[0].as_ref().unwrap()))
    };
    let plain = run(0);
    assert_eq!(run(1), plain);
    assert_eq!(run(2), plain);
}
