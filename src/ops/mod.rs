//! Op families. Each family is a folder `ops/<family>/`:
//!
//! - `mod.rs` is the family's interface: the math of forward and backward side by side (in its
//!   doc), the argument checks (shapes, dtypes, and that all operands share one device), and one
//!   `match` on that device per public function, which hands the checked operands to a backend;
//! - `cpu.rs` holds the CPU kernels (ndarray + the `gemm` crate via [`gemm`] + rayon).
//!
//! A new backend is one module per family (`cuda.rs` beside `cpu.rs`) and one arm per dispatch
//! `match`; until a family has it, the arm returns [`Error::DeviceUnsupported`] (see
//! [`no_kernel`]). Nothing outside `ops/` and `tensor/` knows which backends exist. The tape
//! ([`crate::autodiff`]) records the families' functions; the catalogue of differentiable
//! primitives is [`crate::autodiff::OpKind::ALL`], and `tests/device_parity.rs` runs every entry on
//! two devices (`docs/ops/devices.md`).

use crate::{Device, Error, Result, Tensor};

pub mod attention;
pub mod elementwise;
pub mod embedding;
pub mod gemm;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod reduce;
pub mod rope;
pub mod simd;
pub mod softmax;

/// The device that every operand of `op` lives on; an error naming `op` when two differ.
pub fn common_device<'a>(
    op: &'static str,
    operands: impl IntoIterator<Item = &'a Tensor>,
) -> Result<Device> {
    let mut it = operands.into_iter();
    let Some(first) = it.next() else {
        return Err(Error::Internal(format!("{op}: called without operands")));
    };
    for t in it {
        first.same_device(op, t)?;
    }
    Ok(first.device())
}

/// The error of `op` on a device that has no kernel for it.
pub fn no_kernel(op: &'static str, device: Device) -> Error {
    Error::DeviceUnsupported {
        op,
        device: device.to_string(),
    }
}
