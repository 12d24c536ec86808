//! The reverse sweep computes only what the requested variables need: with `y = x·Wᵀ`, asking for
//! dx alone runs one GEMM (dx = dy·W) and never computes dW = dyᵀ·x. Own test binary because the
//! GEMM counter is process-wide.

use gradpath::ops::gemm::gemm_calls;
use gradpath::{DType, Tape, Tensor};

#[test]
fn weight_gradient_is_not_computed_unless_requested() {
    let tape = Tape::new();
    let x = tape.var(Tensor::ones(&[4, 8, 16], DType::F32));
    let w = tape.var(Tensor::ones(&[32, 16], DType::F32)); // a weight, tracked but not requested
    let y = x.matmul_t(&w, false, true).unwrap().gelu_tanh().unwrap();
    let l = y.sum_all().unwrap();
    let seed = Tensor::ones(&[], DType::F32);

    let before = gemm_calls();
    let g = tape
        .grad(&[&l], std::slice::from_ref(&seed), &[&x])
        .unwrap();
    assert_eq!(gemm_calls() - before, 1, "only dx = dy·W should run");
    assert_eq!(g[0].as_ref().unwrap().shape(), &[4, 8, 16]);

    // Both requested: two GEMMs.
    let tape = Tape::new();
    let x = tape.var(Tensor::ones(&[4, 8, 16], DType::F32));
    let w = tape.var(Tensor::ones(&[32, 16], DType::F32));
    let l = x.matmul_t(&w, false, true).unwrap().sum_all().unwrap();
    let before = gemm_calls();
    let g = tape
        .grad(&[&l], std::slice::from_ref(&seed), &[&x, &w])
        .unwrap();
    assert_eq!(gemm_calls() - before, 2);
    // dW = Σ over 32 rows of dy(=1)·x(=1) → every entry 32.
    assert!(g[1]
        .as_ref()
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .all(|&v| v == 32.0));

    // Attention: asking for q only skips dK and dV (and dP's GEMM is needed for dq).
    let tape = Tape::new();
    let q = tape.var(Tensor::ones(&[1, 4, 2, 8], DType::F32));
    let k = tape.var(Tensor::ones(&[1, 4, 2, 8], DType::F32));
    let v = tape.var(Tensor::ones(&[1, 4, 2, 8], DType::F32));
    let out = gradpath::Var::sdpa(&q, &k, &v, None, 0.5).unwrap();
    let l = out.z.sum_all().unwrap();
    let before = gemm_calls();
    tape.grad(&[&l], &[seed], &[&q]).unwrap();
    assert_eq!(
        gemm_calls() - before,
        2,
        "dq needs dP = dZ·Vᵀ and dQ = dS·K only"
    );
}
