//! The reverse rule of every [`Op`], in one exhaustive `match`: a new variant without a rule does
//! not compile. Each arm returns `(input node, gradient contribution)` pairs and computes a
//! contribution only when `need(input)` holds, so nothing is computed for inputs that lead to no
//! requested variable (e.g. no weight gradient unless a weight was asked for). Contributions are
//! accumulated (`+=`) into the gradient store by the sweep, never assigned.

use super::op::{NodeId, Op};
use crate::ops::{
    attention, elementwise, embedding, matmul, movement, norm, reduce, rope, softmax,
};
use crate::{Error, Result, Tensor};

fn want(id: Option<NodeId>, need: &dyn Fn(NodeId) -> bool) -> bool {
    id.is_some_and(need)
}

fn push(out: &mut Vec<(NodeId, Tensor)>, id: Option<NodeId>, g: Option<Tensor>) {
    if let (Some(id), Some(g)) = (id, g) {
        out.push((id, g));
    }
}

/// Gradient contributions of `op` to its inputs, given the gradient `g` of its output (owned:
/// an elementwise rule may write its result into `g`'s buffer when nothing else holds it).
pub fn backward(
    op: &Op,
    g_owned: Tensor,
    need: &dyn Fn(NodeId) -> bool,
) -> Result<Vec<(NodeId, Tensor)>> {
    let g = &g_owned;
    let mut out = Vec::with_capacity(2);
    match op {
        Op::Leaf => {}
        Op::Identity { x, .. } => {
            if need(*x) {
                out.push((*x, g.clone()));
            }
        }
        Op::Unary { x, op, saved } => {
            if need(*x) {
                let s = if op.saves_nothing() {
                    None
                } else {
                    Some(saved.as_ref().ok_or_else(|| {
                        Error::Autodiff(format!("{} backward: saved value missing", op.name()))
                    })?)
                };
                out.push((*x, elementwise::unary_backward_owned(g_owned, s, *op)?));
                return Ok(out);
            }
        }
        Op::Binary {
            a,
            b,
            op,
            sa,
            sb,
            a_shape,
            b_shape,
        } => {
            let [da, db] = elementwise::binary_backward(
                g,
                sa.as_ref(),
                sb.as_ref(),
                a_shape,
                b_shape,
                *op,
                [want(*a, need), want(*b, need)],
            )?;
            push(&mut out, *a, da);
            push(&mut out, *b, db);
        }
        Op::MatMul {
            a,
            b,
            ta,
            tb,
            sa,
            sb,
            a_shape,
            b_shape,
        } => {
            let [da, db] = matmul::backward(
                g,
                sa.as_ref(),
                sb.as_ref(),
                a_shape,
                b_shape,
                *ta,
                *tb,
                [want(*a, need), want(*b, need)],
            )?;
            push(&mut out, *a, da);
            push(&mut out, *b, db);
        }
        Op::Reduce {
            x,
            kind,
            axes,
            in_shape,
        } => {
            if need(*x) {
                out.push((*x, reduce::sum_backward(g, in_shape, axes, *kind)?));
            }
        }
        Op::Max {
            x,
            axis,
            in_shape,
            argmax,
        } => {
            if need(*x) {
                out.push((*x, reduce::max_backward(g, in_shape, *axis, argmax)?));
            }
        }
        Op::Softmax { x, y, log } => {
            if need(*x) {
                out.push((*x, softmax::backward_owned(g_owned, y, *log)?));
                return Ok(out);
            }
        }
        Op::Norm {
            x,
            w,
            b,
            sx,
            sw,
            mean,
            rstd,
        } => {
            let [dx, dw, db] = norm::backward(
                g,
                sx,
                sw,
                mean.as_ref(),
                rstd,
                [want(*x, need), want(*w, need), want(*b, need)],
            )?;
            push(&mut out, *x, dx);
            push(&mut out, *w, dw);
            push(&mut out, *b, db);
        }
        Op::Embedding {
            table,
            ids,
            table_shape,
        } => {
            if need(*table) {
                out.push((*table, embedding::backward(g, ids, table_shape)?));
            }
        }
        Op::Reshape { x, in_shape } => {
            if need(*x) {
                out.push((*x, g.reshape(in_shape)?));
            }
        }
        Op::Permute { x, perm } => {
            if need(*x) {
                out.push((*x, movement::permute(g, &movement::inverse_perm(perm))?));
            }
        }
        Op::Narrow {
            x,
            axis,
            start,
            in_shape,
        } => {
            if need(*x) {
                out.push((*x, movement::narrow_backward(g, in_shape, *axis, *start)?));
            }
        }
        Op::Concat { xs, axis, sizes } => {
            let mut start = 0;
            for (x, &len) in xs.iter().zip(sizes) {
                if want(*x, need) {
                    push(&mut out, *x, Some(movement::narrow(g, *axis, start, len)?));
                }
                start += len;
            }
        }
        Op::IndexSelect {
            x,
            axis,
            indices,
            in_shape,
        } => {
            if need(*x) {
                out.push((
                    *x,
                    movement::index_select_backward(g, in_shape, *axis, indices)?,
                ));
            }
        }
        Op::Rope { x, cos, sin } => {
            if need(*x) {
                out.push((*x, rope::backward(g, cos, sin)?));
            }
        }
        Op::AttnScores {
            q,
            k,
            sq,
            sk,
            scale,
        } => {
            let [dq, dk] =
                attention::scores_backward(g, sq, sk, *scale, [want(*q, need), want(*k, need)])?;
            push(&mut out, *q, dq);
            push(&mut out, *k, dk);
        }
        Op::AttnApply { p, v, sp, sv } => {
            let [dp, dv] = attention::apply_backward(g, sp, sv, [want(*p, need), want(*v, need)])?;
            push(&mut out, *p, dp);
            push(&mut out, *v, dv);
        }
    }
    Ok(out)
}
