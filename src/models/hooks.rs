//! Boundaries (hook points). A model calls [`Hooks::point`] at every named boundary; the point
//! records an identity node on the tape (so the boundary has its own gradient), can **replace** the
//! value with a given tensor (how IG interpolates `hook_embed` and layer IG any boundary), and can
//! **capture** it (value and, through the tape, gradient). Names follow TransformerLens; see
//! `docs/HOOKS.md`.

use crate::{Error, Result, Var};
use std::collections::{HashMap, HashSet};

/// `blocks.{l}.{name}`.
pub fn block(l: usize, name: &str) -> String {
    format!("blocks.{l}.{name}")
}

/// Which boundaries to capture.
#[derive(Debug, Clone, Default)]
enum Capture {
    #[default]
    None,
    All,
    Some(HashSet<String>),
}

/// Observation and replacement requests for one forward pass.
#[derive(Default)]
pub struct Hooks {
    replace: HashMap<String, Var>,
    capture: Capture,
    captured: Vec<(String, Var)>,
    seen: Vec<(String, Vec<usize>)>,
}

impl Hooks {
    pub fn new() -> Hooks {
        Hooks::default()
    }

    /// Replace boundary `name` by `value` (same shape) in the coming forward.
    pub fn replace(mut self, name: &str, value: Var) -> Hooks {
        self.replace.insert(name.to_string(), value);
        self
    }

    /// Capture every boundary.
    pub fn capture_all(mut self) -> Hooks {
        self.capture = Capture::All;
        self
    }

    /// Capture the named boundaries.
    pub fn capture(mut self, names: &[&str]) -> Hooks {
        let mut set = match std::mem::take(&mut self.capture) {
            Capture::Some(s) => s,
            _ => HashSet::new(),
        };
        set.extend(names.iter().map(|s| s.to_string()));
        self.capture = Capture::Some(set);
        self
    }

    /// Called by models at each boundary: applies a replacement, records the identity node,
    /// captures if asked. Returns the value the model continues with.
    pub fn point(&mut self, name: String, x: Var) -> Result<Var> {
        let x = match self.replace.remove(&name) {
            Some(r) => {
                if r.shape() != x.shape() {
                    return Err(Error::Input(format!(
                        "replacement for `{name}` has shape {:?}, the boundary has {:?}",
                        r.shape(),
                        x.shape()
                    )));
                }
                if r.dtype() != x.dtype() {
                    return Err(Error::Input(format!(
                        "replacement for `{name}` is {}, the model computes in {}",
                        r.dtype(),
                        x.dtype()
                    )));
                }
                r
            }
            None => x,
        };
        let x = x.hook(&name)?;
        self.seen.push((name.clone(), x.shape().to_vec()));
        let keep = match &self.capture {
            Capture::None => false,
            Capture::All => true,
            Capture::Some(s) => s.contains(&name),
        };
        if keep {
            self.captured.push((name, x.clone()));
        }
        Ok(x)
    }

    /// Whether `name` is replaced or captured in this pass (models skip optional work otherwise,
    /// e.g. decoder logits at every position).
    pub fn wants(&self, name: &str) -> bool {
        self.replace.contains_key(name)
            || match &self.capture {
                Capture::None => false,
                Capture::All => true,
                Capture::Some(s) => s.contains(name),
            }
    }

    /// After the forward: every requested replacement must have been used.
    pub fn finish(&self) -> Result<()> {
        if let Some(name) = self.replace.keys().next() {
            let valid: Vec<&str> = self.seen.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::Input(format!(
                "unknown boundary `{name}`; this model has: {}",
                valid.join(", ")
            )));
        }
        Ok(())
    }

    /// A captured boundary.
    pub fn get(&self, name: &str) -> Option<&Var> {
        self.captured
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// All captured boundaries in forward order.
    pub fn captured(&self) -> &[(String, Var)] {
        &self.captured
    }

    /// Every boundary the forward passed, with its shape, in order.
    pub fn seen(&self) -> &[(String, Vec<usize>)] {
        &self.seen
    }
}
