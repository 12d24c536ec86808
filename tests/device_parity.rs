//! Device parity: every op of the catalogue ([`OpKind::ALL`]) runs forward and backward on two
//! devices from the same inputs, and the outputs and gradients must agree.
//!
//! Device A is the CPU, the reference. Device B comes from [`parity_device`]: the environment
//! variable `GRADPATH_PARITY_DEVICE` (`cpu`, `cuda`, `cuda:N`; default `cpu`). Today both are the
//! CPU, B reached through `Tensor::to_device`; a CUDA backend runs this file unchanged:
//! `GRADPATH_PARITY_DEVICE=cuda cargo test --release --features cuda --test device_parity`.
//!
//! Cases: the shared table of `tests/op_cases/` (the one `ops_gradcheck` differentiates), an
//! exhaustive `match` over [`OpKind`], so a new op cannot compile without a case; the harness also
//! fails if a kind has no case or if none of its cases records that kind on the tape. Every case
//! runs in f64 and in f32, and in two modes:
//! - all inputs tracked, the gradient taken with respect to all of them;
//! - for cases with several inputs, each input alone tracked (the others constants), the gradient
//!   taken with respect to it: the single-operand backward kernels and the saved-operand choices of
//!   the recording (`x·W` with a constant `W` keeps no `x`, ...).
//!
//! Checks per run: both devices record the same op kinds; the output and every gradient from B
//! live on B with A's dtype and shape; values agree to |a − b| ≤ tol·max(1, max|a|) over finite
//! entries (equal infinities pass, a NaN on either side fails), tol = 1e-12 in f64 and 1e-5 in f32.
//! Rationale: a kernel that sums in another order differs by a few ulps times the number of terms
//! (≤ 100 here): ~1e-14 relative in f64, ~1e-6 in f32 (plus the CPU's fast f32 exp/erf, ≤ 3e-7
//! relative); a wrong kernel is off by O(1).

mod common;
mod op_cases;

use common::rng;
use gradpath::autodiff::OpKind;
use gradpath::{DType, Device, Error, Tape, Tensor, Var};
use op_cases::{all_cases, cases_for, seed_for, Case};
use std::collections::HashSet;

/// The device compared against the CPU: `GRADPATH_PARITY_DEVICE`, default `cpu`.
fn parity_device() -> Device {
    match std::env::var("GRADPATH_PARITY_DEVICE") {
        Ok(s) if !s.is_empty() => {
            Device::parse(&s).unwrap_or_else(|e| panic!("GRADPATH_PARITY_DEVICE={s}: {e}"))
        }
        _ => Device::Cpu,
    }
}

/// What one run of a case gives back.
struct Run {
    kinds: Vec<OpKind>,
    y: Tensor,
    grads: Vec<Option<Tensor>>,
}

/// Runs case `c` on `device` in `dtype`: the inputs in `tracked` are tape leaves (the others
/// constants), the output gets the cotangent `seed`, and the gradient is taken with respect to the
/// tracked inputs (in order).
fn run(
    c: &Case,
    dtype: DType,
    device: Device,
    tracked: &[usize],
    seed: &[f64],
) -> gradpath::Result<Run> {
    let tape = Tape::new();
    let mut vars = Vec::with_capacity(c.inputs.len());
    for (i, x) in c.inputs.iter().enumerate() {
        let x = x.to_dtype(dtype)?.to_device(device)?;
        vars.push(if tracked.contains(&i) {
            tape.var(x)
        } else {
            Var::constant(x)
        });
    }
    let y = (c.f)(&vars)?;
    let kinds = tape.kinds();
    let s = Tensor::from_f64_on(seed, y.shape(), dtype, device)?;
    let wrt: Vec<&Var> = tracked.iter().map(|&i| &vars[i]).collect();
    let grads = tape.grad(&[&y], &[s], &wrt)?;
    Ok(Run {
        kinds,
        y: y.into_value(),
        grads,
    })
}

/// Largest |a − b| over finite entries relative to max(1, max|a|), or a description of what differs.
fn compare(a: &Tensor, b: &Tensor, device: Device) -> Result<f64, String> {
    if b.device() != device {
        return Err(format!("lives on {} instead of {device}", b.device()));
    }
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return Err(format!(
            "{} {:?} on device B vs {} {:?} on the CPU",
            b.dtype(),
            b.shape(),
            a.dtype(),
            a.shape()
        ));
    }
    let (av, bv) = (a.to_vec_f64().unwrap(), b.to_vec_f64().unwrap());
    let scale = av
        .iter()
        .filter(|x| x.is_finite())
        .fold(1.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for (i, (x, y)) in av.iter().zip(&bv).enumerate() {
        if x.is_nan() || y.is_nan() {
            return Err(format!("NaN at {i}: {x} on the CPU, {y} on device B"));
        }
        if x.is_infinite() || y.is_infinite() {
            if x != y {
                return Err(format!("at {i}: {x} on the CPU, {y} on device B"));
            }
            continue;
        }
        worst = worst.max((x - y).abs() / scale);
    }
    Ok(worst)
}

/// Runs `c` on the CPU and on `device` with `tracked` inputs; returns the worst relative difference
/// or the failures.
fn parity(
    c: &Case,
    kind: OpKind,
    dtype: DType,
    device: Device,
    tracked: &[usize],
    seed: &[f64],
) -> Result<f64, Vec<String>> {
    let label = format!("{} [{}] {dtype} tracked {tracked:?}", c.name, kind.name());
    let a = run(c, dtype, Device::Cpu, tracked, seed)
        .map_err(|e| vec![format!("{label}: on the CPU: {e}")])?;
    let b = run(c, dtype, device, tracked, seed)
        .map_err(|e| vec![format!("{label}: on {device}: {e}")])?;
    let mut failures = Vec::new();
    if a.kinds != b.kinds {
        failures.push(format!(
            "{label}: recorded {:?} on the CPU but {:?} on {device}",
            a.kinds, b.kinds
        ));
    }
    let tol = match dtype {
        DType::F64 => 1e-12,
        DType::F32 => 1e-5,
    };
    let mut worst = 0.0f64;
    let pairs = std::iter::once(("output".to_string(), Some(&a.y), Some(&b.y))).chain(
        a.grads
            .iter()
            .zip(&b.grads)
            .zip(tracked)
            .map(|((ga, gb), i)| (format!("grad of input {i}"), ga.as_ref(), gb.as_ref())),
    );
    for (what, ta, tb) in pairs {
        match (ta, tb) {
            (None, None) => {}
            (Some(ta), Some(tb)) => match compare(ta, tb, device) {
                Ok(d) if d <= tol => worst = worst.max(d),
                Ok(d) => failures.push(format!(
                    "{label}: {what}: max relative difference {d:.3e} > {tol:e}"
                )),
                Err(e) => failures.push(format!("{label}: {what}: {e}")),
            },
            _ => failures.push(format!(
                "{label}: {what}: a gradient on one device only (CPU {}, {device} {})",
                ta.is_some(),
                tb.is_some()
            )),
        }
    }
    if failures.is_empty() {
        Ok(worst)
    } else {
        Err(failures)
    }
}

#[test]
fn every_op_has_a_parity_case_that_records_it() {
    let mut r = rng(1);
    let mut missing = Vec::new();
    for &kind in OpKind::ALL {
        let cases = cases_for(kind, &mut r);
        let records = cases.iter().any(|c| {
            let all: Vec<usize> = (0..c.inputs.len()).collect();
            let seed = seed_for(c, &mut r);
            run(c, DType::F64, Device::Cpu, &all, &seed)
                .map(|run| run.kinds.contains(&kind))
                .unwrap_or(false)
        });
        if cases.is_empty() {
            missing.push(format!("{}: no case", kind.name()));
        } else if !records {
            missing.push(format!("{}: no case records it", kind.name()));
        }
    }
    assert!(
        missing.is_empty(),
        "op kinds without a device-parity case (add one in tests/op_cases/mod.rs):\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_op_agrees_on_two_devices() {
    let device = parity_device();
    let mut r = rng(17);
    let mut failures = Vec::new();
    let mut runs = 0usize;
    let mut worst = [0.0f64; 2];
    let mut kinds = HashSet::new();
    for (kind, c) in all_cases() {
        let seed = seed_for(&c, &mut r);
        let n = c.inputs.len();
        let mut modes: Vec<Vec<usize>> = vec![(0..n).collect()];
        if n > 1 {
            modes.extend((0..n).map(|i| vec![i]));
        }
        for (k, dtype) in [DType::F64, DType::F32].into_iter().enumerate() {
            for tracked in &modes {
                runs += 1;
                match parity(&c, kind, dtype, device, tracked, &seed) {
                    Ok(d) => worst[k] = worst[k].max(d),
                    Err(f) => failures.extend(f),
                }
            }
        }
        kinds.insert(kind);
    }
    let uncovered: Vec<&str> = OpKind::ALL
        .iter()
        .filter(|k| !kinds.contains(k))
        .map(|k| k.name())
        .collect();
    assert!(
        uncovered.is_empty(),
        "op kinds without a case: {uncovered:?}"
    );
    assert!(
        failures.is_empty(),
        "CPU vs {device}: {} failures in {runs} runs:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "CPU vs {device}: {runs} runs over {} op kinds; worst relative difference f64 {:.3e}, f32 {:.3e}",
        OpKind::ALL.len(),
        worst[0],
        worst[1]
    );
}

#[test]
fn constructors_on_a_device_match_the_cpu_shorthands() {
    let dev = parity_device();
    let shape = [2, 3];
    let vals = [1.5, -2.0, 0.25, 4.0, -0.5, 3.0];
    for dtype in [DType::F32, DType::F64] {
        let pairs = [
            (
                Tensor::zeros_on(&shape, dtype, dev).unwrap(),
                Tensor::zeros(&shape, dtype),
            ),
            (
                Tensor::ones_on(&shape, dtype, dev).unwrap(),
                Tensor::ones(&shape, dtype),
            ),
            (
                Tensor::full_on(0.75, &shape, dtype, dev).unwrap(),
                Tensor::full(0.75, &shape, dtype),
            ),
            (
                Tensor::scalar_on(-3.0, dtype, dev).unwrap(),
                Tensor::scalar(-3.0, dtype),
            ),
            (
                Tensor::from_f64_on(&vals, &shape, dtype, dev).unwrap(),
                Tensor::from_f64(&vals, &shape, dtype).unwrap(),
            ),
        ];
        for (on, cpu) in pairs {
            assert_eq!(on.device(), dev);
            assert_eq!((on.dtype(), on.shape()), (cpu.dtype(), cpu.shape()));
            assert_eq!(on.to_vec_f64().unwrap(), cpu.to_vec_f64().unwrap());
            // Back to the host, and a no-op move (shared buffer) when already there.
            let host = on.to_device(Device::Cpu).unwrap();
            assert_eq!(host.device(), Device::Cpu);
            assert_eq!(host.to_vec_f64().unwrap(), cpu.to_vec_f64().unwrap());
            assert!(on.to_device(dev).unwrap().same_storage(&on));
            // dtype conversion stays on the device.
            let other = match dtype {
                DType::F32 => DType::F64,
                DType::F64 => DType::F32,
            };
            assert_eq!(on.to_dtype(other).unwrap().device(), dev);
        }
    }
    let v = Tensor::from_vec_on(vec![1.0f32, 2.0, 3.0], &[3], dev).unwrap();
    assert_eq!(v.device(), dev);
    assert_eq!(v.to_vec_f64().unwrap(), vec![1.0, 2.0, 3.0]);
    assert!(matches!(
        Tensor::from_vec_on(vec![1.0f64; 2], &[3], dev).unwrap_err(),
        Error::Shape { .. }
    ));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_constructors_without_the_feature_are_a_clear_error() {
    let cuda = Device::Cuda(0);
    let errs = [
        Tensor::zeros_on(&[2], DType::F32, cuda).unwrap_err(),
        Tensor::full_on(1.0, &[2], DType::F64, cuda).unwrap_err(),
        Tensor::from_f64_on(&[1.0], &[1], DType::F64, cuda).unwrap_err(),
        Tensor::from_vec_on(vec![1.0f32], &[1], cuda).unwrap_err(),
        Tensor::zeros(&[2], DType::F32).to_device(cuda).unwrap_err(),
    ];
    for e in errs {
        assert!(matches!(e, Error::NotCompiledWithCuda(_)), "{e}");
    }
}

/// Operands on two devices, and a seed on another device than its output, are clear errors. Runs
/// only when device B is not the CPU.
#[test]
fn mixed_devices_are_a_clear_error() {
    let dev = parity_device();
    if dev == Device::Cpu {
        eprintln!("device B is the CPU: nothing to mix");
        return;
    }
    let a = Tensor::ones(&[2, 3], DType::F64);
    let b = a.to_device(dev).unwrap();
    let (va, vb) = (Var::constant(a.clone()), Var::constant(b.clone()));
    for e in [
        va.add(&vb).unwrap_err(),
        va.matmul_t(&vb, false, true).unwrap_err(),
        Var::concat(&[&va, &vb], 0).unwrap_err(),
    ] {
        assert!(
            matches!(&e, Error::Mismatch { .. }) && e.to_string().contains("different devices"),
            "{e}"
        );
    }
    let tape = Tape::new();
    let x = tape.var(b);
    let y = x.sum_all().unwrap();
    let e = tape
        .grad(&[&y], &[Tensor::ones(&[], DType::F64)], &[&x])
        .unwrap_err();
    assert!(e.to_string().contains("seed 0"), "{e}");
}
