//! CPU kernel of RoPE: one (batch, pos, head) vector per rayon task. Called by `super` with
//! checked operands.

use crate::tensor::{pool, Float, Tensor};
use crate::Result;
use rayon::prelude::*;

/// `x` rotated (`transpose`: by the transposed rotation, the backward) for checked sizes
/// `[batch, pos, n_heads, d_head]`.
pub(super) fn apply<T: Float>(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    [_, t, h, d]: [usize; 4],
    transpose: bool,
) -> Result<Tensor> {
    let half = d / 2;
    let per_batch = cos.rank() == 3;
    let xs = x.as_slice::<T>()?;
    let cs = cos.as_slice::<T>()?;
    let ss = sin.as_slice::<T>()?;
    let mut out = pool::take::<T>(xs.len());
    if d > 0 {
        // One chunk = one (batch, pos, head) vector of d_head.
        out.par_chunks_mut(d)
            .zip(xs.par_chunks(d))
            .enumerate()
            .for_each(|(r, (o, x))| {
                let (bi, ti) = (r / (t * h), (r / h) % t);
                let base = if per_batch { (bi * t + ti) * d } else { ti * d };
                let (c, s) = (&cs[base..base + d], &ss[base..base + d]);
                for i in 0..half {
                    let (a, b) = (x[i], x[i + half]);
                    if transpose {
                        o[i] = a * c[i] + b * s[i + half];
                        o[i + half] = b * c[i + half] - a * s[i];
                    } else {
                        o[i] = a * c[i] - b * s[i];
                        o[i + half] = b * c[i + half] + a * s[i + half];
                    }
                }
            });
    }
    Tensor::from_vec(out, x.shape())
}
