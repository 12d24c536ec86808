//! Reverse-mode automatic differentiation on an explicit tape.
//!
//! ```
//! use gradpath::{Tape, Tensor, DType};
//! let tape = Tape::new();
//! let x = tape.var(Tensor::from_f64(&[1.0, 2.0, 3.0], &[3], DType::F64)?);
//! let y = x.mul(&x)?.sum_all()?;                       // y = Σ x²
//! let g = tape.grad(&[&y], &[Tensor::ones(&[], DType::F64)], &[&x])?;
//! assert_eq!(g[0].as_ref().unwrap().to_vec_f64()?, vec![2.0, 4.0, 6.0]);
//! # Ok::<(), gradpath::Error>(())
//! ```

mod backward;
pub mod op;
mod tape;
mod var;

pub use op::{NodeId, Op, OpKind};
pub use tape::{NoGradGuard, Tape};
pub use var::{AttentionOut, Var};
