//! Tape semantics: fan-out accumulation, no-grad mode, freeing saved tensors, gradients at
//! intermediate boundaries, multiple seeded outputs, and clear errors on misuse.

mod common;

use approx::assert_relative_eq;
use common::{rng, uniform};
use gradpath::{DType, Device, Error, Tape, Tensor, Var};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(v, shape, DType::F64).unwrap()
}

fn ones_like(v: &Var) -> Tensor {
    Tensor::ones(v.shape(), v.dtype())
}

#[test]
fn fan_out_accumulates() {
    // y = Σ (x·x + x) → dy/dx = 2x + 1 (x used three times).
    let tape = Tape::new();
    let x = tape.var(t(&[1.0, -2.0, 0.5], &[3]));
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    let g = tape.grad(&[&y], &[ones_like(&y)], &[&x]).unwrap();
    assert_eq!(
        g[0].as_ref().unwrap().to_vec_f64().unwrap(),
        vec![3.0, -3.0, 2.0]
    );
}

#[test]
fn no_grad_records_nothing() {
    let tape = Tape::new();
    let x = tape.var(t(&[1.0, 2.0], &[2]));
    let before = tape.len();
    {
        let _g = tape.no_grad();
        let y = x.exp().unwrap().mul(&x).unwrap();
        assert!(!y.is_tracked());
        assert_eq!(tape.len(), before);
    }
    assert!(tape.is_recording());
    assert!(x.exp().unwrap().is_tracked());
}

#[test]
fn constants_record_nothing() {
    let tape = Tape::new();
    let w = Var::constant(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let y = w.matmul(&w).unwrap().exp().unwrap();
    assert!(!y.is_tracked());
    assert!(tape.is_empty());
}

#[test]
fn sweep_frees_saved_tensors_and_tape() {
    let tape = Tape::new();
    let x = tape.var(uniform(&mut rng(1), &[64, 64], -1.0, 1.0));
    let y = x.exp().unwrap(); // saves its output
    assert_eq!(
        y.value().handle_count(),
        2,
        "exp should save its output on the tape"
    );
    let s = y.sum_all().unwrap();
    tape.grad(&[&s], &[ones_like(&s)], &[&x]).unwrap();
    assert_eq!(
        y.value().handle_count(),
        1,
        "the sweep must drop the saved output"
    );
    assert!(tape.is_empty());
    // The graph is gone: differentiating again is a clear error, not a panic.
    let err = tape.grad(&[&s], &[ones_like(&s)], &[&x]).unwrap_err();
    assert!(matches!(err, Error::Autodiff(_)), "{err}");
    let err = y.exp().unwrap_err();
    assert!(
        err.to_string().contains("record the forward again"),
        "{err}"
    );
}

#[test]
fn retained_graph_allows_a_second_sweep() {
    let tape = Tape::new();
    let x = tape.var(t(&[0.3, -0.7], &[2]));
    let y = x.tanh().unwrap().sum_all().unwrap();
    let g1 = tape.grad_retained(&[&y], &[ones_like(&y)], &[&x]).unwrap();
    let g2 = tape.grad(&[&y], &[ones_like(&y)], &[&x]).unwrap();
    assert_eq!(
        g1[0].as_ref().unwrap().to_vec_f64().unwrap(),
        g2[0].as_ref().unwrap().to_vec_f64().unwrap()
    );
}

#[test]
fn gradient_at_an_intermediate_boundary() {
    // h = hook(2x); y = Σ h³ → dy/dh = 3h², dy/dx = 6h².
    let tape = Tape::new();
    let x = tape.var(t(&[1.0, -0.5], &[2]));
    let h = x
        .scale(2.0)
        .unwrap()
        .hook("blocks.0.hook_resid_pre")
        .unwrap();
    let y = h.powf(3.0).unwrap().sum_all().unwrap();
    let g = tape.grad(&[&y], &[ones_like(&y)], &[&h, &x]).unwrap();
    let gh = g[0].as_ref().unwrap().to_vec_f64().unwrap();
    let gx = g[1].as_ref().unwrap().to_vec_f64().unwrap();
    assert_relative_eq!(gh[0], 12.0, epsilon = 1e-12);
    assert_relative_eq!(gh[1], 3.0, epsilon = 1e-12);
    assert_relative_eq!(gx[0], 24.0, epsilon = 1e-12);
    assert_relative_eq!(gx[1], 6.0, epsilon = 1e-12);
}

#[test]
fn several_outputs_with_per_row_seeds() {
    // Rows of one batch each get their own seed: one sweep gives every row's gradient.
    let tape = Tape::new();
    let x = tape.var(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let y = x.mul(&x).unwrap().sum(&[1], false).unwrap(); // [2]
    let z = x.sum_all().unwrap();
    let g = tape
        .grad(&[&y, &z], &[t(&[1.0, 0.0], &[2]), t(&[10.0], &[])], &[&x])
        .unwrap();
    assert_eq!(
        g[0].as_ref().unwrap().to_vec_f64().unwrap(),
        vec![12.0, 14.0, 10.0, 10.0]
    );
}

#[test]
fn unconnected_variables_get_no_gradient() {
    let tape = Tape::new();
    let x = tape.var(t(&[1.0], &[1]));
    let unused = tape.var(t(&[1.0], &[1]));
    let c = Var::constant(t(&[5.0], &[1]));
    let y = x.exp().unwrap();
    let g = tape
        .grad(&[&y], &[ones_like(&y)], &[&unused, &c, &x])
        .unwrap();
    assert!(g[0].is_none() && g[1].is_none() && g[2].is_some());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let tape = Tape::new();
    let x = tape.var(t(&[1.0, 2.0], &[2]));
    let y = x.exp().unwrap();
    let err = tape.grad(&[&y], &[t(&[1.0], &[1])], &[&x]).unwrap_err();
    assert!(err.to_string().contains("seed 0"), "{err}");
    let other = Tape::new();
    let z = other.var(t(&[1.0, 2.0], &[2]));
    let err = x.add(&z).unwrap_err();
    assert!(err.to_string().contains("different tapes"), "{err}");
    let err = tape.grad(&[&y], &[ones_like(&y)], &[&z]).unwrap_err();
    assert!(err.to_string().contains("another tape"), "{err}");
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let a = Var::constant(Tensor::zeros(&[2, 3], DType::F32));
    let b = Var::constant(Tensor::zeros(&[4, 5], DType::F32));
    let msg = a.matmul(&b).unwrap_err().to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );
    let msg = a.add(&b).unwrap_err().to_string();
    assert!(
        msg.contains("add") && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
        "{msg}"
    );
    let c = Var::constant(Tensor::zeros(&[2, 3], DType::F64));
    assert!(matches!(
        a.mul(&c).unwrap_err(),
        Error::DType { op: "mul", .. }
    ));
    let msg = a.narrow(1, 2, 5).unwrap_err().to_string();
    assert!(msg.contains("narrow"), "{msg}");
    let msg = Var::embedding(&a, &[7], &[1]).unwrap_err().to_string();
    assert!(msg.contains("token id 7"), "{msg}");
    let msg = a.permute(&[0, 0]).unwrap_err().to_string();
    assert!(msg.contains("permute"), "{msg}");
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let x = Tensor::zeros(&[2], DType::F32);
    let err = x.to_device(Device::Cuda(0)).unwrap_err();
    assert!(matches!(err, Error::NotCompiledWithCuda(_)));
    assert!(err.to_string().contains("--features cuda"), "{err}");
    assert_eq!(Device::parse("cuda:1").unwrap(), Device::Cuda(1));
    assert!(Device::parse("tpu").is_err());
}
