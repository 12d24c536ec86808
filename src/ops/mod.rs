//! Op families: each file holds the forward and the backward of one family, side by side, as
//! functional kernels on [`crate::Tensor`]s. The tape ([`crate::autodiff`]) records them; the
//! catalogue of differentiable primitives is [`crate::autodiff::OpKind::ALL`].

pub mod attention;
pub mod elementwise;
pub mod embedding;
pub mod gemm;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod reduce;
pub mod rope;
pub mod softmax;
