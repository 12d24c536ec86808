//! The tape: an ordered list of recorded nodes, and the reverse sweep.
//!
//! Rules (written once, here):
//! - A node is recorded only when an op has at least one tracked input and the tape is recording.
//!   Ops on constants alone produce constants; [`Tape::no_grad`] pauses recording.
//! - `grad(outputs, seeds, wrt)` seeds each output with its cotangent and sweeps the nodes in
//!   reverse. A node's rule runs only for inputs from which a requested variable is reachable
//!   (`needed`), so nothing is computed for unrequested leaves such as weights.
//! - Backward rules return contributions that are **accumulated** (`+=`) into the gradient of each
//!   input (fan-out sums); accumulation is in place when the buffer is not shared.
//! - Each node is dropped as soon as the sweep has used it, releasing its saved tensors; after the
//!   sweep the tape is empty and variables recorded before it can no longer be differentiated
//!   (use [`Tape::grad_retained`] to keep the graph for another sweep).

use super::backward::backward;
use super::op::{NodeId, Op, OpKind};
use super::Var;
use crate::ops::elementwise::accumulate;
use crate::{Error, Result, Tensor};
use std::cell::RefCell;
use std::rc::Rc;

pub(crate) struct Node {
    pub(crate) op: Op,
}

pub(crate) struct TapeInner {
    pub(crate) nodes: Vec<Option<Node>>,
    pub(crate) recording: bool,
    /// Bumped by every consuming sweep; variables of an older generation are stale.
    pub(crate) generation: u64,
}

/// A recording of operations. Cloning gives another handle to the same tape.
#[derive(Clone)]
pub struct Tape(pub(crate) Rc<RefCell<TapeInner>>);

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

/// Restores recording when dropped (see [`Tape::no_grad`]).
pub struct NoGradGuard {
    tape: Tape,
    prev: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        self.tape.0.borrow_mut().recording = self.prev;
    }
}

impl Tape {
    pub fn new() -> Tape {
        Tape(Rc::new(RefCell::new(TapeInner {
            nodes: Vec::new(),
            recording: true,
            generation: 0,
        })))
    }

    /// A differentiable leaf holding `value`.
    pub fn var(&self, value: Tensor) -> Var {
        let id = self.push(Op::Leaf);
        Var::tracked(value, self.clone(), id, self.generation())
    }

    /// Pauses recording until the guard is dropped: ops produce constants (plain forward passes).
    pub fn no_grad(&self) -> NoGradGuard {
        let prev = std::mem::replace(&mut self.0.borrow_mut().recording, false);
        NoGradGuard {
            tape: self.clone(),
            prev,
        }
    }

    pub fn is_recording(&self) -> bool {
        self.0.borrow().recording
    }

    /// Number of live nodes.
    pub fn len(&self) -> usize {
        self.0.borrow().nodes.iter().filter(|n| n.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The op kinds recorded so far, in order (for tests and debugging).
    pub fn kinds(&self) -> Vec<OpKind> {
        self.0
            .borrow()
            .nodes
            .iter()
            .flatten()
            .map(|n| n.op.kind())
            .collect()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.0.borrow().generation
    }

    pub(crate) fn push(&self, op: Op) -> NodeId {
        let mut t = self.0.borrow_mut();
        t.nodes.push(Some(Node { op }));
        t.nodes.len() - 1
    }

    pub(crate) fn same(&self, other: &Tape) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Gradients of `Σ_i ⟨seeds[i], outputs[i]⟩` with respect to each of `wrt`; frees the graph.
    ///
    /// `seeds[i]` must have the shape, dtype and device of `outputs[i]`. A `wrt` variable that the
    /// outputs do not depend on (or a constant) gets `None`.
    pub fn grad(
        &self,
        outputs: &[&Var],
        seeds: &[Tensor],
        wrt: &[&Var],
    ) -> Result<Vec<Option<Tensor>>> {
        self.sweep(outputs, seeds, wrt, false)
    }

    /// As [`Tape::grad`] but keeps the graph (and its saved tensors) for another sweep.
    pub fn grad_retained(
        &self,
        outputs: &[&Var],
        seeds: &[Tensor],
        wrt: &[&Var],
    ) -> Result<Vec<Option<Tensor>>> {
        self.sweep(outputs, seeds, wrt, true)
    }

    fn node_of(&self, v: &Var, what: &str) -> Result<Option<NodeId>> {
        match v.node() {
            None => Ok(None),
            Some((t, id, gen)) => {
                if !t.same(self) {
                    return Err(Error::Autodiff(format!(
                        "{what} was recorded on another tape"
                    )));
                }
                if gen != self.generation() {
                    return Err(Error::Autodiff(format!("{what} was recorded before a previous `grad` freed the graph; record the forward again or use `grad_retained`")));
                }
                Ok(Some(id))
            }
        }
    }

    fn sweep(
        &self,
        outputs: &[&Var],
        seeds: &[Tensor],
        wrt: &[&Var],
        retain: bool,
    ) -> Result<Vec<Option<Tensor>>> {
        if outputs.len() != seeds.len() {
            return Err(Error::Autodiff(format!(
                "{} outputs but {} seeds",
                outputs.len(),
                seeds.len()
            )));
        }
        let mut out_ids = Vec::with_capacity(outputs.len());
        for (i, (o, s)) in outputs.iter().zip(seeds).enumerate() {
            if s.shape() != o.shape() || s.dtype() != o.dtype() {
                return Err(Error::Autodiff(format!(
                    "seed {i} is {:?} {} but output {i} is {:?} {}",
                    s.shape(),
                    s.dtype(),
                    o.shape(),
                    o.dtype()
                )));
            }
            if s.device() != o.device() {
                return Err(Error::Autodiff(format!(
                    "seed {i} is on {} but output {i} is on {} (move the seed with `to_device`)",
                    s.device(),
                    o.device()
                )));
            }
            out_ids.push(self.node_of(o, &format!("output {i}"))?);
        }
        let wrt_ids = wrt
            .iter()
            .enumerate()
            .map(|(i, w)| self.node_of(w, &format!("variable {i}")))
            .collect::<Result<Vec<_>>>()?;

        let mut inner = self.0.borrow_mut();
        let n = inner.nodes.len();
        // Forward pass over the tape: which nodes lie on a path from a requested variable.
        let mut needed = vec![false; n];
        for id in wrt_ids.iter().flatten() {
            needed[*id] = true;
        }
        for (i, node) in inner.nodes.iter().enumerate() {
            if let Some(node) = node {
                if !needed[i] && node.op.inputs().iter().any(|&j| needed[j]) {
                    needed[i] = true;
                }
            }
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; n];
        for (id, s) in out_ids.iter().zip(seeds) {
            if let Some(id) = *id {
                if needed[id] {
                    grads[id] = Some(match grads[id].take() {
                        Some(acc) => accumulate(acc, s)?,
                        None => s.clone(),
                    });
                }
            }
        }
        let mut result: Vec<Option<Tensor>> = vec![None; wrt.len()];
        let top = out_ids.iter().flatten().copied().max();
        if let Some(top) = top {
            for i in (0..=top).rev() {
                let Some(g) = grads[i].take() else {
                    if !retain {
                        inner.nodes[i] = None;
                    }
                    continue;
                };
                for (r, id) in result.iter_mut().zip(&wrt_ids) {
                    if *id == Some(i) {
                        *r = Some(g.clone());
                    }
                }
                let node = if retain { None } else { inner.nodes[i].take() };
                let op = match (&node, inner.nodes[i].as_ref()) {
                    (Some(n), _) | (None, Some(n)) => &n.op,
                    (None, None) => {
                        return Err(Error::Autodiff(format!("node {i} was already freed")))
                    }
                };
                let contribs = backward(op, g, &|j| needed[j])?;
                for (j, gj) in contribs {
                    grads[j] = Some(match grads[j].take() {
                        Some(acc) => accumulate(acc, &gj)?,
                        None => gj,
                    });
                }
                // `node` (and the tensors it saved) is released here.
            }
        }
        if !retain {
            inner.nodes.clear();
            inner.generation += 1;
        }
        Ok(result)
    }
}
