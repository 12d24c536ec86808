//! The closed set of recorded operations. Each variant names the input nodes it differentiates
//! into (`None` for a constant input, which gets no gradient) and exactly the tensors its backward
//! reads. `MatMul` and `Binary` keep an operand only when a tracked input's rule reads it (e.g.
//! `x·W` with a constant `W` does not keep `x`, since only `dW` would read it); attention and the
//! norms keep both operands (both are activations in every model).

use crate::ops::elementwise::{Binary, Unary};
use crate::ops::reduce::ReduceKind;
use crate::Tensor;
use std::sync::Arc;

/// Index of a node on its tape.
pub type NodeId = usize;

/// A recorded operation.
pub enum Op {
    /// A variable created with `Tape::var`.
    Leaf,
    /// Identity with a name: a model boundary (hook point).
    Identity {
        x: NodeId,
        name: Arc<str>,
    },
    Unary {
        x: NodeId,
        op: Unary,
        saved: Option<Tensor>,
    },
    Binary {
        a: Option<NodeId>,
        b: Option<NodeId>,
        op: Binary,
        sa: Option<Tensor>,
        sb: Option<Tensor>,
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
    },
    MatMul {
        a: Option<NodeId>,
        b: Option<NodeId>,
        ta: bool,
        tb: bool,
        sa: Option<Tensor>,
        sb: Option<Tensor>,
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
    },
    Reduce {
        x: NodeId,
        kind: ReduceKind,
        axes: Vec<usize>,
        in_shape: Vec<usize>,
    },
    Max {
        x: NodeId,
        axis: usize,
        in_shape: Vec<usize>,
        argmax: Vec<usize>,
    },
    Softmax {
        x: NodeId,
        y: Tensor,
        log: bool,
    },
    Norm {
        x: Option<NodeId>,
        w: Option<NodeId>,
        b: Option<NodeId>,
        sx: Tensor,
        sw: Tensor,
        mean: Option<Tensor>,
        rstd: Tensor,
    },
    Embedding {
        table: NodeId,
        ids: Arc<[usize]>,
        table_shape: Vec<usize>,
    },
    Reshape {
        x: NodeId,
        in_shape: Vec<usize>,
    },
    Permute {
        x: NodeId,
        perm: Vec<usize>,
    },
    Narrow {
        x: NodeId,
        axis: usize,
        start: usize,
        in_shape: Vec<usize>,
    },
    Concat {
        xs: Vec<Option<NodeId>>,
        axis: usize,
        sizes: Vec<usize>,
    },
    IndexSelect {
        x: NodeId,
        axis: usize,
        indices: Arc<[usize]>,
        in_shape: Vec<usize>,
    },
    Rope {
        x: NodeId,
        cos: Tensor,
        sin: Tensor,
    },
    AttnScores {
        q: Option<NodeId>,
        k: Option<NodeId>,
        sq: Tensor,
        sk: Tensor,
        scale: f64,
    },
    AttnApply {
        p: Option<NodeId>,
        v: Option<NodeId>,
        sp: Tensor,
        sv: Tensor,
    },
}

macro_rules! op_kinds {
    ($($k:ident),* $(,)?) => {
        /// Every differentiable primitive, one entry per backward rule. The op-test case table in
        /// `tests/op_cases/` (finite differences in `ops_gradcheck`, two-device runs in
        /// `device_parity`) matches on this exhaustively, so a new kind cannot skip it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpKind { $($k),* }
        impl OpKind {
            /// The whole catalogue.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$k),*];
            pub fn name(&self) -> &'static str { match self { $(OpKind::$k => stringify!($k)),* } }
        }
    };
}

op_kinds!(
    Leaf,
    Identity,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Tanh,
    Powf,
    GeluErf,
    GeluTanh,
    Silu,
    Relu,
    Affine,
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
    Sum,
    Mean,
    Max,
    Softmax,
    LogSoftmax,
    LayerNorm,
    RmsNorm,
    Embedding,
    Reshape,
    Permute,
    Narrow,
    Concat,
    IndexSelect,
    Rope,
    AttnScores,
    AttnApply,
);

impl Op {
    /// The catalogue entry of this op.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Leaf => OpKind::Leaf,
            Op::Identity { .. } => OpKind::Identity,
            Op::Unary { op, .. } => match op {
                Unary::Exp => OpKind::Exp,
                Unary::Log => OpKind::Log,
                Unary::Sqrt => OpKind::Sqrt,
                Unary::Rsqrt => OpKind::Rsqrt,
                Unary::Tanh => OpKind::Tanh,
                Unary::Powf(_) => OpKind::Powf,
                Unary::GeluErf => OpKind::GeluErf,
                Unary::GeluTanh => OpKind::GeluTanh,
                Unary::Silu => OpKind::Silu,
                Unary::Relu => OpKind::Relu,
                Unary::Affine { .. } => OpKind::Affine,
            },
            Op::Binary { op, .. } => match op {
                Binary::Add => OpKind::Add,
                Binary::Sub => OpKind::Sub,
                Binary::Mul => OpKind::Mul,
                Binary::Div => OpKind::Div,
            },
            Op::MatMul { .. } => OpKind::MatMul,
            Op::Reduce {
                kind: ReduceKind::Sum,
                ..
            } => OpKind::Sum,
            Op::Reduce {
                kind: ReduceKind::Mean,
                ..
            } => OpKind::Mean,
            Op::Max { .. } => OpKind::Max,
            Op::Softmax { log: false, .. } => OpKind::Softmax,
            Op::Softmax { log: true, .. } => OpKind::LogSoftmax,
            Op::Norm { mean: Some(_), .. } => OpKind::LayerNorm,
            Op::Norm { mean: None, .. } => OpKind::RmsNorm,
            Op::Embedding { .. } => OpKind::Embedding,
            Op::Reshape { .. } => OpKind::Reshape,
            Op::Permute { .. } => OpKind::Permute,
            Op::Narrow { .. } => OpKind::Narrow,
            Op::Concat { .. } => OpKind::Concat,
            Op::IndexSelect { .. } => OpKind::IndexSelect,
            Op::Rope { .. } => OpKind::Rope,
            Op::AttnScores { .. } => OpKind::AttnScores,
            Op::AttnApply { .. } => OpKind::AttnApply,
        }
    }

    /// The tracked input nodes (gradients flow only into these).
    pub fn inputs(&self) -> Vec<NodeId> {
        let opt = |v: &[Option<NodeId>]| v.iter().flatten().copied().collect();
        match self {
            Op::Leaf => vec![],
            Op::Identity { x, .. }
            | Op::Unary { x, .. }
            | Op::Reduce { x, .. }
            | Op::Max { x, .. }
            | Op::Softmax { x, .. }
            | Op::Reshape { x, .. }
            | Op::Permute { x, .. }
            | Op::Narrow { x, .. }
            | Op::IndexSelect { x, .. }
            | Op::Rope { x, .. } => vec![*x],
            Op::Embedding { table, .. } => vec![*table],
            Op::Binary { a, b, .. } | Op::MatMul { a, b, .. } => opt(&[*a, *b]),
            Op::Norm { x, w, b, .. } => opt(&[*x, *w, *b]),
            Op::Concat { xs, .. } => opt(xs),
            Op::AttnScores { q, k, .. } => opt(&[*q, *k]),
            Op::AttnApply { p, v, .. } => opt(&[*p, *v]),
        }
    }
}
