//! Boundaries (hook points). A model calls [`Hooks::point`] at every named boundary; the point
//! records an identity node on the tape (so the boundary has its own gradient), can **replace** the
//! value with a given tensor (how IG interpolates `hook_embed` and layer IG any boundary), and can
//! **capture** it (value and, through the tape, gradient). Names follow TransformerLens; see
//! `docs/HOOKS.md`.

use crate::{Error, Result, Tensor, Var};
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// Per-layer head masks, applied to `blocks.{l}.attn.hook_pattern`: (rows, one factor per
    /// row and head); rows = 1 applies the same factors to every row.
    head_masks: BTreeMap<usize, (usize, Vec<f64>)>,
    /// Partial replacements: `x ⊙ keep + values` (see [`Hooks::patch`]); no values: `x ⊙ keep`
    /// (see [`Hooks::scale`]).
    patches: HashMap<String, (Tensor, Option<Var>)>,
    /// Boundaries that start the tape when nothing upstream is recorded (see [`Hooks::track`]).
    track: Option<(crate::Tape, HashSet<String>)>,
    /// The forward stops right after this boundary (see [`Hooks::stop_after`]).
    stop_after: Option<String>,
    stopped: bool,
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

    /// Patch boundary `name`: the model continues with `x ⊙ keep + values` (both the boundary's
    /// full shape, batch rows included). `keep` is 1 where the computed value stays and 0 where
    /// `values` is patched in, so gradients still flow to the kept entries (per batch row, per
    /// token, per coordinate: any pattern).
    pub fn patch(self, name: &str, keep: Tensor, values: Tensor) -> Hooks {
        self.patch_var(name, keep, Var::constant(values))
    }

    /// As [`Hooks::patch`], with the patched-in values a variable (a tape leaf gets the gradient
    /// of the patched entries).
    pub fn patch_var(mut self, name: &str, keep: Tensor, values: Var) -> Hooks {
        self.patches.insert(name.to_string(), (keep, Some(values)));
        self
    }

    /// Multiply boundary `name` element by element by `factors` (its full shape): a patch with
    /// zeros patched in, without the zeros (how dropout applies its scaled keep masks).
    pub fn scale(mut self, name: &str, factors: Tensor) -> Hooks {
        self.patches.insert(name.to_string(), (factors, None));
        self
    }

    /// Stop the forward right after boundary `name` (once it is recorded and captured): the
    /// model's `forward` then returns an error and [`Hooks::stopped`] is true. Captured
    /// boundaries stay valid on the tape, so a map across one block costs one block.
    pub fn stop_after(mut self, name: &str) -> Hooks {
        self.stop_after = Some(name.to_string());
        self
    }

    /// Make the named boundaries leaves of `tape` when nothing upstream of them is recorded
    /// (weights and token lookups are constants), so their gradients can be asked for.
    pub fn track(mut self, tape: &crate::Tape, names: &[&str]) -> Hooks {
        let set = names.iter().map(|s| s.to_string()).collect();
        self.track = Some((tape.clone(), set));
        self
    }

    /// The first block a forward must run: `k` when `blocks.{k}.hook_resid_pre` is replaced and
    /// nothing before it (embeddings, blocks < k) is replaced, patched, captured, tracked or
    /// masked, so blocks 0..k are dead work (a map across block k then costs one block);
    /// 0 otherwise.
    pub fn first_live_block(&self) -> usize {
        let layer_of = |n: &str| -> Option<usize> {
            n.strip_prefix("blocks.")?.split('.').next()?.parse().ok()
        };
        let Some(k) = self
            .replace
            .keys()
            .filter(|n| n.ends_with(".hook_resid_pre"))
            .filter_map(|n| layer_of(n))
            .max()
        else {
            return 0;
        };
        let before = |n: &String| layer_of(n).is_none_or(|l| l < k);
        let captured = match &self.capture {
            Capture::None => false,
            Capture::All => true,
            Capture::Some(s) => s.iter().any(before),
        };
        let tracked = self
            .track
            .as_ref()
            .is_some_and(|(_, s)| s.iter().any(before));
        let early = self.replace.keys().chain(self.patches.keys()).any(before);
        if captured || tracked || early || self.head_masks.keys().any(|&l| l < k) {
            0
        } else {
            k
        }
    }

    /// Whether the forward was stopped by [`Hooks::stop_after`].
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Multiply the attention probabilities of layer `l` by one factor per head (HF `head_mask`
    /// semantics: 0 removes a head, 1 keeps it), at `blocks.{l}.attn.hook_pattern`.
    pub fn mask_heads(mut self, l: usize, factors: Vec<f64>) -> Hooks {
        self.head_masks.insert(l, (1, factors));
        self
    }

    /// Per-row head masks of layer `l`: `factors` holds `rows × n_heads` factors, row-major.
    pub fn mask_heads_rows(mut self, l: usize, rows: usize, factors: Vec<f64>) -> Hooks {
        self.head_masks.insert(l, (rows, factors));
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
                    return Err(Error::Mismatch {
                        what: format!("replacement for `{name}`"),
                        detail: format!(
                            "has shape {:?}, the boundary has {:?}",
                            r.shape(),
                            x.shape()
                        ),
                    });
                }
                if r.dtype() != x.dtype() {
                    return Err(Error::Mismatch {
                        what: format!("replacement for `{name}`"),
                        detail: format!("is {}, the model computes in {}", r.dtype(), x.dtype()),
                    });
                }
                r
            }
            None => x,
        };
        let x = match self.patches.remove(&name) {
            Some((keep, values)) => {
                let values_shape = values.as_ref().map_or(x.shape(), |v| v.shape());
                if keep.shape() != x.shape() || values_shape != x.shape() {
                    return Err(Error::Mismatch {
                        what: format!("patch for `{name}`"),
                        detail: format!(
                            "has shapes {:?} / {:?}, the boundary has {:?}",
                            keep.shape(),
                            values_shape,
                            x.shape()
                        ),
                    });
                }
                let values_dtype = values.as_ref().map_or(x.dtype(), |v| v.dtype());
                if values_dtype != x.dtype() {
                    return Err(Error::Mismatch {
                        what: format!("patch for `{name}`"),
                        detail: format!("is {}, the model computes in {}", values_dtype, x.dtype()),
                    });
                }
                let keep = keep.to_dtype(x.dtype())?;
                let kept = x.mul(&Var::constant(keep))?;
                match values {
                    Some(values) => kept.add(&values)?,
                    None => kept,
                }
            }
            None => x,
        };
        let x = match self.head_mask_for(&name) {
            Some((l, rows, f)) => {
                let h = x.shape().get(1).copied().unwrap_or(0);
                let b = x.shape().first().copied().unwrap_or(0);
                if f.len() != rows * h || (rows != 1 && rows != b) {
                    return Err(Error::Mismatch {
                        what: format!("head mask for layer {l}"),
                        detail: format!(
                            "has {} factors for {rows} row(s); the layer has {h} heads and the batch {b} rows",
                            f.len()
                        ),
                    });
                }
                let m = Tensor::from_f64_on(&f, &[rows, h, 1, 1], x.dtype(), x.value().device())?;
                x.mul(&Var::constant(m))?
            }
            None => x,
        };
        let x = match &self.track {
            Some((tape, set)) if !x.is_tracked() && set.contains(&name) => {
                tape.var(x.value().clone())
            }
            _ => x,
        };
        let x = x.hook(&name)?;
        self.seen.push((name.clone(), x.shape().to_vec()));
        let keep = match &self.capture {
            Capture::None => false,
            Capture::All => true,
            Capture::Some(s) => s.contains(&name),
        };
        if keep {
            self.captured.push((name.clone(), x.clone()));
        }
        if self.stop_after.as_deref() == Some(name.as_str()) {
            self.stopped = true;
            return Err(Error::Internal(format!(
                "forward stopped after `{name}` as requested"
            )));
        }
        Ok(x)
    }

    /// The head mask for `name` if it is the pattern of a masked layer (removed once used).
    fn head_mask_for(&mut self, name: &str) -> Option<(usize, usize, Vec<f64>)> {
        let l = name
            .strip_prefix("blocks.")?
            .strip_suffix(".attn.hook_pattern")?
            .parse::<usize>()
            .ok()?;
        self.head_masks.remove(&l).map(|(rows, f)| (l, rows, f))
    }

    /// Whether `name` is replaced or captured in this pass (models skip optional work otherwise,
    /// e.g. decoder logits at every position).
    pub fn wants(&self, name: &str) -> bool {
        self.replace.contains_key(name)
            || self.patches.contains_key(name)
            || match &self.capture {
                Capture::None => false,
                Capture::All => true,
                Capture::Some(s) => s.contains(name),
            }
    }

    /// Whether boundary `name` must be computed as the plain forward computes it: it is
    /// replaced, patched, captured, tracked or the stop point of this pass. Models may skip or
    /// narrow work behind boundaries nobody touches (see [`Hooks::replacement`]).
    pub fn touches(&self, name: &str) -> bool {
        self.wants(name)
            || self.track.as_ref().is_some_and(|(_, s)| s.contains(name))
            || self.stop_after.as_deref() == Some(name)
    }

    /// The value that replaces boundary `name` for every row in this pass ([`Hooks::replace`];
    /// `None` for a patch, which keeps part of the computed value). What only feeds such a
    /// boundary is dead work.
    pub fn replacement(&self, name: &str) -> Option<&Var> {
        if self.patches.contains_key(name) {
            return None;
        }
        self.replace.get(name)
    }

    /// After the forward: every requested replacement must have been used.
    pub fn finish(&self) -> Result<()> {
        if let Some(l) = self.head_masks.keys().next() {
            let n = self
                .seen
                .iter()
                .filter(|(n, _)| n.ends_with(".attn.hook_pattern"))
                .count();
            return Err(Error::OutOfRange {
                what: "layer",
                index: *l,
                len: n,
            });
        }
        if let Some(name) = self.replace.keys().chain(self.patches.keys()).next() {
            return Err(Error::UnknownBoundary {
                name: name.clone(),
                valid: self.seen.iter().map(|(n, _)| n.clone()).collect(),
            });
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
