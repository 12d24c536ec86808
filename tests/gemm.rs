//! The GEMM wrapper against the naive reference on odd sizes, transposed (strided) operands,
//! accumulation, batches in parallel and overlapping (grouped) batch items.

mod common;

use gradpath::ops::gemm::{gemm, gemm_batched, gemm_naive, Mat, Overlap};
use rand::Rng;

fn randv(n: usize, seed: u64) -> Vec<f64> {
    let mut r = common::rng(seed);
    (0..n).map(|_| r.gen_range(-1.0..1.0)).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn single_gemm_all_transpose_combinations_odd_sizes() {
    for &(m, k, n) in &[(1, 1, 1), (7, 13, 5), (33, 17, 65), (130, 67, 129)] {
        for ta in [false, true] {
            for tb in [false, true] {
                let a = randv(m * k, 1);
                let b = randv(k * n, 2);
                let am = if ta {
                    Mat::row_major(k, m).t()
                } else {
                    Mat::row_major(m, k)
                };
                let bm = if tb {
                    Mat::row_major(n, k).t()
                } else {
                    Mat::row_major(k, n)
                };
                let dm = Mat::row_major(m, n);
                let mut want = vec![0.0; m * n];
                gemm_naive(&mut want, dm, &a, am, &b, bm);
                let mut got = vec![f64::NAN; m * n];
                gemm(&mut got, dm, &a, am, &b, bm, false, 1.0).unwrap();
                assert!(max_diff(&got, &want) < 1e-12, "{m}x{k}x{n} ta={ta} tb={tb}");
                // f32 through the same wrapper.
                let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
                let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
                let mut got32 = vec![0f32; m * n];
                gemm(&mut got32, dm, &a32, am, &b32, bm, false, 1.0).unwrap();
                let g: Vec<f64> = got32.iter().map(|&x| x as f64).collect();
                assert!(
                    max_diff(&g, &want) < 1e-4 * (k as f64).sqrt(),
                    "f32 {m}x{k}x{n}"
                );
                // Accumulate with a scale: dst = dst + 0.5·A·B.
                let mut acc = want.clone();
                gemm(&mut acc, dm, &a, am, &b, bm, true, 0.5).unwrap();
                let expect: Vec<f64> = want.iter().map(|x| 1.5 * x).collect();
                assert!(max_diff(&acc, &expect) < 1e-12);
            }
        }
    }
}

#[test]
fn batched_disjoint_and_grouped() {
    // 12 small items (parallel path) writing interleaved column blocks of one output, like
    // attention heads in [batch, pos, n_heads, d_head].
    let (items, m, k, n) = (12, 5, 3, 4);
    let a = randv(items * m * k, 3);
    let b = randv(items * k * n, 4);
    let mut got = vec![0.0; m * items * n];
    let dm = Mat::strided(m, n, items * n);
    gemm_batched(
        items,
        &mut got,
        dm,
        &a,
        Mat::row_major(m, k),
        &b,
        Mat::row_major(k, n),
        |i| [i * n, i * m * k, i * k * n],
        Overlap::Disjoint,
        false,
        1.0,
    )
    .unwrap();
    for i in 0..items {
        let mut want = vec![0.0; m * n];
        gemm_naive(
            &mut want,
            Mat::row_major(m, n),
            &a[i * m * k..],
            Mat::row_major(m, k),
            &b[i * k * n..],
            Mat::row_major(k, n),
        );
        for r in 0..m {
            for c in 0..n {
                assert!((got[r * items * n + i * n + c] - want[r * n + c]).abs() < 1e-12);
            }
        }
    }
    // Groups of 3 items accumulate into the same output block (GQA-style reduction).
    let mut acc = vec![0.0; (items / 3) * m * n];
    gemm_batched(
        items,
        &mut acc,
        Mat::row_major(m, n),
        &a,
        Mat::row_major(m, k),
        &b,
        Mat::row_major(k, n),
        |i| [(i / 3) * m * n, i * m * k, i * k * n],
        Overlap::Groups(3),
        true,
        1.0,
    )
    .unwrap();
    for g in 0..items / 3 {
        let mut want = vec![0.0; m * n];
        for i in 3 * g..3 * g + 3 {
            let mut part = vec![0.0; m * n];
            gemm_naive(
                &mut part,
                Mat::row_major(m, n),
                &a[i * m * k..],
                Mat::row_major(m, k),
                &b[i * k * n..],
                Mat::row_major(k, n),
            );
            want.iter_mut().zip(&part).for_each(|(w, p)| *w += p);
        }
        assert!(max_diff(&acc[g * m * n..(g + 1) * m * n], &want) < 1e-12);
    }
}

#[test]
fn out_of_bounds_views_are_errors() {
    let a = vec![0.0f64; 6];
    let mut d = vec![0.0f64; 4];
    let err = gemm(
        &mut d,
        Mat::row_major(2, 2),
        &a,
        Mat::row_major(2, 3),
        &a,
        Mat::row_major(3, 2),
        false,
        1.0,
    );
    assert!(err.is_ok());
    let err = gemm(
        &mut d,
        Mat::row_major(2, 2),
        &a,
        Mat::row_major(2, 4),
        &a,
        Mat::row_major(4, 2),
        false,
        1.0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    let err = gemm(
        &mut d,
        Mat::row_major(2, 2),
        &a,
        Mat::row_major(2, 3),
        &a,
        Mat::row_major(2, 2),
        false,
        1.0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("gemm"), "{err}");
}
