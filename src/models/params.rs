//! Named parameters: every weight of a model under its Hugging Face tensor name, in a registry a
//! caller can iterate, and a way to make any subset of them tape leaves for one forward.
//!
//! **The registry is the source of truth; the components are a view built from it.** A loader
//! reads every weight through a `Source`: from a checkpoint it records each tensor it reads into
//! the model's [`Params`] (under the checkpoint's name; GGUF files under the HF names the GGUF
//! loader maps to; a tied unembedding is the one embedding parameter). The same loader, run on the
//! registry, builds
//!
//! - the model again after [`Model::set_parameters`] changed values: the transposed weight copies
//!   ([`super::components::Linear::wt`]) are recomputed from the new values, so they never go
//!   stale;
//! - a *view* for [`Model::forward_with_params`], in which the parameters named in a [`Leaves`]
//!   are those tape leaves (GPT-2's packed `c_attn` is split with recorded `narrow`s, its
//!   `Conv1D` weights transposed with recorded `permute`s, so gradients reach the HF tensor). The
//!   view keeps no transposed copies: its Linear layers read the weight itself, which is what a
//!   training step needs, and nothing of it outlives the call.
//!
//! A plain [`Model::forward`] is untouched: weights stay constants and nothing is recorded for
//! them.
//!
//! ```
//! # use gradpath::{models::{self, Batch, Hooks, Leaves}, DType, Tape, Tensor};
//! # fn main() -> gradpath::Result<()> {
//! # let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert");
//! let mut model = models::load(&dir, DType::F64)?;
//! let tape = Tape::new();
//! let leaves = Leaves::all(&tape, model.as_ref())?; // or Leaves::new(&tape, model, &[names])
//! let x = Batch::repeat(&[2, 63, 3], &[0, 0, 0], 1);
//! let out = model.forward_with_params(&x, &mut Hooks::new(), &leaves)?;
//! let loss = out.logits.unwrap().sum_all()?;
//! let grads = tape.grad(&[&loss], &[Tensor::ones(loss.shape(), DType::F64)], &leaves.vars())?;
//! // One SGD step: every parameter set at once (one rebuild of the transposed copies).
//! let mut step = Vec::new();
//! for (p, g) in model.parameters().iter().zip(&grads) {
//!     let (v, g) = (p.value.to_vec_f64()?, g.as_ref().unwrap().to_vec_f64()?);
//!     let new: Vec<f64> = v.iter().zip(&g).map(|(v, g)| v - 0.1 * g).collect();
//!     step.push((p.name.clone(), Tensor::from_f64(&new, p.shape(), DType::F64)?));
//! }
//! model.set_parameters(step)?;
//! # Ok(()) }
//! ```

use super::Model;
use crate::io::Weights;
use crate::{DType, Error, Result, Tape, Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;

/// One named parameter: its HF tensor name and its value, in the checkpoint's layout (GPT-2's
/// `Conv1D` weights `[in, out]`, everything else as stored).
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub value: Tensor,
}

impl Param {
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }
}

/// The registry: every parameter of a model in load order, with lookup by name.
#[derive(Debug, Clone)]
pub struct Params {
    list: Vec<Param>,
    index: HashMap<String, usize>,
    /// Where the values came from (for messages).
    origin: String,
    dtype: DType,
    /// Checkpoint tensors the model did not read (sorted), e.g. a pooler or a pre-training head
    /// the architecture has no use for.
    unused: Vec<String>,
}

impl Params {
    fn new(origin: String, dtype: DType) -> Params {
        Params {
            list: Vec::new(),
            index: HashMap::new(),
            origin,
            dtype,
            unused: Vec::new(),
        }
    }

    /// The checkpoint's tensors that the model did not read, sorted (empty for a registry that
    /// was not loaded from a checkpoint).
    pub fn unused(&self) -> &[String] {
        &self.unused
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.list.iter()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.index.get(name).map(|&i| &self.list[i])
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Total number of scalar values.
    pub fn numel(&self) -> usize {
        self.list.iter().map(|p| p.value.numel()).sum()
    }

    fn insert(&mut self, name: &str, value: Tensor) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_string(), self.list.len());
            self.list.push(Param {
                name: name.to_string(),
                value,
            });
        }
    }

    /// An error unless every leaf names a parameter of this registry.
    pub(crate) fn check_leaves(&self, leaves: &Leaves) -> Result<()> {
        match leaves.names().find(|n| self.get(n).is_none()) {
            Some(n) => Err(self.unknown(n)),
            None => Ok(()),
        }
    }

    fn unknown(&self, name: &str) -> Error {
        Error::Unknown {
            what: "parameter",
            value: name.to_string(),
            valid: self.list.iter().map(|p| p.name.clone()).collect(),
        }
    }

    /// Replaces values (same shapes; converted to the model's dtype). Errors before changing
    /// anything if a name is unknown or a shape differs.
    pub(crate) fn set(&mut self, values: Vec<(String, Tensor)>) -> Result<()> {
        let mut checked = Vec::with_capacity(values.len());
        for (name, v) in values {
            let i = *self.index.get(&name).ok_or_else(|| self.unknown(&name))?;
            let want = self.list[i].value.shape();
            if v.shape() != want {
                return Err(Error::Mismatch {
                    what: format!("new value of parameter `{name}`"),
                    detail: format!("shape {:?}, the parameter has {want:?}", v.shape()),
                });
            }
            checked.push((i, v.to_dtype(self.dtype)?));
        }
        for (i, v) in checked {
            self.list[i].value = v;
        }
        Ok(())
    }
}

/// Tape leaves standing in for some parameters during [`Model::forward_with_params`], in the
/// order they were asked for. Each leaf starts at the parameter's current value.
pub struct Leaves {
    list: Vec<(String, Var)>,
    index: HashMap<String, usize>,
}

impl Leaves {
    /// Leaves on `tape` for the parameters `names` of `model` (an unknown name is an error that
    /// lists the model's parameters).
    pub fn new(tape: &Tape, model: &dyn Model, names: &[&str]) -> Result<Leaves> {
        let all = model.parameters();
        let by_name: HashMap<&str, &Param> = all.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut out = Leaves {
            list: Vec::with_capacity(names.len()),
            index: HashMap::new(),
        };
        for &n in names {
            let p = by_name.get(n).ok_or_else(|| Error::Unknown {
                what: "parameter",
                value: n.to_string(),
                valid: all.iter().map(|p| p.name.clone()).collect(),
            })?;
            if !out.index.contains_key(n) {
                out.index.insert(n.to_string(), out.list.len());
                out.list.push((n.to_string(), tape.var(p.value.clone())));
            }
        }
        Ok(out)
    }

    /// Leaves for every parameter of `model`, in registry order.
    pub fn all(tape: &Tape, model: &dyn Model) -> Result<Leaves> {
        let names: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Leaves::new(tape, model, &refs)
    }

    /// No leaves: [`Model::forward_with_params`] is then a plain forward.
    pub fn none() -> Leaves {
        Leaves {
            list: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.index.get(name).map(|&i| &self.list[i].1)
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// Parameter names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(n, _)| n.as_str())
    }
    /// The leaves, in order: the `wrt` of [`Tape::grad`].
    pub fn vars(&self) -> Vec<&Var> {
        self.list.iter().map(|(_, v)| v).collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.list.iter().map(|(n, v)| (n.as_str(), v))
    }
}

/// Where a loader reads weights from: a checkpoint (recording what it reads) or a registry
/// (optionally with leaves).
pub(crate) struct Source<'a> {
    from: From<'a>,
    read: RefCell<Params>,
}

enum From<'a> {
    Weights(&'a Weights),
    Params(&'a Params, Option<&'a Leaves>),
}

impl<'a> Source<'a> {
    /// Reads a checkpoint; [`Source::into_params`] then holds every tensor read.
    pub(crate) fn weights(w: &'a Weights) -> Source<'a> {
        Source {
            from: From::Weights(w),
            read: RefCell::new(Params::new(w.path().display().to_string(), w.dtype())),
        }
    }

    /// Reads a registry; parameters named in `leaves` come back as those leaves.
    pub(crate) fn params(p: &'a Params, leaves: Option<&'a Leaves>) -> Source<'a> {
        Source {
            from: From::Params(p, leaves),
            read: RefCell::new(Params::new(p.origin.clone(), p.dtype)),
        }
    }

    /// An empty registry (the loader's placeholder until [`Source::into_params`]).
    pub(crate) fn empty_params(&self) -> Params {
        let r = self.read.borrow();
        Params::new(r.origin.clone(), r.dtype)
    }

    /// Every tensor read; from a checkpoint, also the names it holds that were not read
    /// ([`Params::unused`]; `gamma`/`beta` aliases count as read).
    pub(crate) fn into_params(self) -> Params {
        let mut p = self.read.into_inner();
        p.unused = match self.from {
            From::Weights(w) => w
                .names()
                .into_iter()
                .filter(|n| p.get(n).is_none())
                .map(str::to_string)
                .collect(),
            From::Params(q, _) => q.unused.clone(),
        };
        p
    }

    pub(crate) fn dtype(&self) -> DType {
        match self.from {
            From::Weights(w) => w.dtype(),
            From::Params(p, _) => p.dtype,
        }
    }

    /// The file the weights came from (for messages).
    pub(crate) fn origin(&self) -> String {
        match self.from {
            From::Weights(w) => w.path().display().to_string(),
            From::Params(p, _) => p.origin.clone(),
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        match self.from {
            From::Weights(w) => w.contains(name),
            From::Params(p, _) => p.get(name).is_some(),
        }
    }

    /// Whether any tensor's name starts with `prefix.` (a module the checkpoint holds).
    pub(crate) fn has_module(&self, prefix: &str) -> bool {
        let dotted = format!("{prefix}.");
        match self.from {
            From::Weights(w) => w.names().iter().any(|n| n.starts_with(&dotted)),
            From::Params(p, _) => p.iter().any(|q| q.name.starts_with(&dotted)),
        }
    }

    pub(crate) fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        match self.from {
            From::Weights(w) => w.shape_of(name).map(<[usize]>::to_vec),
            From::Params(p, _) => p.get(name).map(|p| p.shape().to_vec()),
        }
    }

    /// Tensor `name` with the expected shape, as a constant or (registry with leaves) a leaf.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Var> {
        match self.from {
            From::Weights(w) => {
                let t = w.get_shaped(name, shape)?;
                self.read.borrow_mut().insert(name, t.clone());
                Ok(Var::constant(t))
            }
            From::Params(p, leaves) => {
                let v = p.get(name).ok_or_else(|| p.unknown(name))?;
                if v.shape() != shape {
                    return Err(Error::Internal(format!(
                        "parameter `{name}` has shape {:?}, the model expects {shape:?}",
                        v.shape()
                    )));
                }
                self.read.borrow_mut().insert(name, v.value.clone());
                match leaves.and_then(|l| l.get(name)) {
                    Some(leaf) => {
                        if leaf.shape() != shape || leaf.dtype() != p.dtype {
                            return Err(Error::Mismatch {
                                what: format!("leaf for parameter `{name}`"),
                                detail: format!(
                                    "{:?} {}, the parameter is {shape:?} {}",
                                    leaf.shape(),
                                    leaf.dtype(),
                                    p.dtype
                                ),
                            });
                        }
                        Ok(leaf.clone())
                    }
                    None => Ok(Var::constant(v.value.clone())),
                }
            }
        }
    }

    pub(crate) fn root(&'a self, prefix: &str) -> ParamPath<'a> {
        ParamPath {
            src: self,
            prefix: prefix.to_string(),
        }
    }
}

/// A prefix into a [`Source`], mirroring checkpoint module paths (`p.pp("encoder.layer").pp(0)`).
pub(crate) struct ParamPath<'a> {
    src: &'a Source<'a>,
    prefix: String,
}

impl<'a> ParamPath<'a> {
    /// A sub-path `prefix.name`.
    pub(crate) fn pp(&self, name: impl std::fmt::Display) -> ParamPath<'a> {
        ParamPath {
            src: self.src,
            prefix: self.full(&name.to_string()),
        }
    }

    /// Errors when the checkpoint holds a layer `n` under this path (`encoder.layer`, `h`,
    /// `layers`): the config says `n` layers (`key`) but the checkpoint has more, which would
    /// otherwise truncate the model silently.
    pub(crate) fn no_layer(&self, n: usize, key: &str) -> Result<()> {
        let next = self.full(&n.to_string());
        if self.src.has_module(&next) {
            return Err(super::config::error(
                key,
                format!(
                    "is {n} but the checkpoint {} has more layers (it holds `{next}.*`)",
                    self.src.origin()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// Tensor `prefix.name` with the expected shape; `gamma`/`beta` are accepted for old
    /// LayerNorm checkpoints that use them instead of `weight`/`bias` (the parameter then keeps
    /// the checkpoint's name).
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Var> {
        let full = self.full(name);
        if !self.src.contains(&full) {
            let alias = match name {
                "weight" => Some("gamma"),
                "bias" => Some("beta"),
                _ => None,
            };
            if let Some(a) = alias.map(|a| self.full(a)).filter(|a| self.src.contains(a)) {
                return self.src.get(&a, shape);
            }
        }
        self.src.get(&full, shape)
    }
}
