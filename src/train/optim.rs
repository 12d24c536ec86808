//! AdamW, the linear warm-up/decay schedule and global gradient-norm clipping, each written to
//! compute what PyTorch and transformers compute:
//!
//! - [`AdamW`] is `torch.optim.AdamW` (single-tensor path, `amsgrad=False`, `maximize=False`),
//!   per parameter with step `t` (from 1), learning rate `lr` and weight decay `λ`:
//!
//!   ```text
//!   p ← p · (1 − lr·λ)                     decoupled weight decay (λ = 0 for the no-decay group)
//!   m ← m + (g − m)·(1 − β₁)               torch's lerp(m, g, 1 − β₁)
//!   v ← v·β₂ + (1 − β₂)·g·g
//!   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//!   ```
//!   with PyTorch's defaults lr = 1e-3, β = (0.9, 0.999), ε = 1e-8, λ = 1e-2 ([`AdamWConfig`]).
//! - [`LinearSchedule`] is `transformers.get_linear_schedule_with_warmup`: the factor of the
//!   base learning rate at optimizer step s (from 0) is `s / w` for `s < w`, then
//!   `max(0, (T − s) / max(1, T − w))`. As with transformers' `LambdaLR`, the first step uses the
//!   factor at s = 0 (0 when there is a warm-up).
//! - [`clip_grad_norm`] is `torch.nn.utils.clip_grad_norm_`: the global 2-norm `N` of all
//!   gradients, then every gradient times `min(1, max_norm / (N + 1e-6))`.
//!
//! The arithmetic runs in the parameters' dtype (f32 or f64), element by element, in the order
//! above. `tests/train.rs` checks three steps against PyTorch in f64.

use crate::models::Param;
use crate::tensor::Float;
use crate::{with_dtype, DType, Error, Result, Tensor};

/// AdamW hyper-parameters (PyTorch's defaults).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// Whether a parameter belongs to the no-decay group: biases and normalisation weights. For the
/// encoder and decoder families gradpath loads these are exactly the rank-1 parameters (the
/// names transformers' Trainer excludes: every `*.bias` and every LayerNorm / RMSNorm weight).
pub fn no_decay(p: &Param) -> bool {
    p.shape().len() == 1
}

/// Optimizer state of one parameter.
#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    /// Weight decay applies (false for the no-decay group).
    pub decay: bool,
    /// First moment, the parameter's shape and dtype.
    pub m: Tensor,
    /// Second moment.
    pub v: Tensor,
}

/// `torch.optim.AdamW` over a model's parameters (see the module doc).
#[derive(Debug, Clone)]
pub struct AdamW {
    pub cfg: AdamWConfig,
    /// Steps taken so far (PyTorch's `state["step"]`; the next step is `t = step + 1`).
    pub step: u64,
    pub slots: Vec<Slot>,
}

impl AdamW {
    /// Zero moments for `params` (in this order); `decay(p)` says whether p is decayed.
    pub fn new(params: &[Param], cfg: AdamWConfig, decay: impl Fn(&Param) -> bool) -> AdamW {
        let slots = params
            .iter()
            .map(|p| Slot {
                name: p.name.clone(),
                decay: decay(p),
                m: Tensor::zeros(p.shape(), p.value.dtype()),
                v: Tensor::zeros(p.shape(), p.value.dtype()),
            })
            .collect();
        AdamW {
            cfg,
            step: 0,
            slots,
        }
    }

    /// One step at learning rate `lr` (the schedule's rate for this step): the new value of every
    /// parameter, to be given to [`crate::models::Model::set_parameters`]. `params` and `grads`
    /// are in the order the optimizer was built with.
    pub fn step(
        &mut self,
        params: &[Param],
        grads: &[Tensor],
        lr: f64,
    ) -> Result<Vec<(String, Tensor)>> {
        if params.len() != self.slots.len() || grads.len() != self.slots.len() {
            return Err(Error::Mismatch {
                what: "optimizer step".into(),
                detail: format!(
                    "{} parameters and {} gradients for an optimizer over {}",
                    params.len(),
                    grads.len(),
                    self.slots.len()
                ),
            });
        }
        self.step += 1;
        let c = self.cfg;
        let t = self.step as f64;
        let bc1 = 1.0 - c.beta1.powf(t);
        let bc2_sqrt = (1.0 - c.beta2.powf(t)).sqrt();
        let step_size = lr / bc1;
        let mut out = Vec::with_capacity(params.len());
        for ((p, g), slot) in params.iter().zip(grads).zip(self.slots.iter_mut()) {
            if p.name != slot.name || g.shape() != p.shape() || g.dtype() != p.value.dtype() {
                return Err(Error::Mismatch {
                    what: format!("gradient of parameter `{}`", p.name),
                    detail: format!(
                        "{:?} {} for slot `{}` of parameter {:?} {}",
                        g.shape(),
                        g.dtype(),
                        slot.name,
                        p.shape(),
                        p.value.dtype()
                    ),
                });
            }
            let wd = if slot.decay { c.weight_decay } else { 0.0 };
            let new = with_dtype!(p.value.dtype(), T => {
                let h = Hyper::<T> {
                    decay: T::from_f64(1.0 - lr * wd),
                    w1: T::from_f64(1.0 - c.beta1),
                    b2: T::from_f64(c.beta2),
                    w2: T::from_f64(1.0 - c.beta2),
                    bc2_sqrt: T::from_f64(bc2_sqrt),
                    eps: T::from_f64(c.eps),
                    step_size: T::from_f64(step_size),
                };
                update::<T>(&p.value, g, &mut slot.m, &mut slot.v, &h)?
            });
            out.push((p.name.clone(), new));
        }
        Ok(out)
    }
}

struct Hyper<T> {
    decay: T,
    w1: T,
    b2: T,
    w2: T,
    bc2_sqrt: T,
    eps: T,
    step_size: T,
}

/// One parameter's update. The moments are updated in place when the optimizer owns them alone
/// (always, unless a caller holds a clone), else replaced; the new parameter comes from the
/// buffer pool. Elements are independent, so large tensors are split over threads.
fn update<T: Float>(
    p: &Tensor,
    g: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    h: &Hyper<T>,
) -> Result<Tensor> {
    let (ps, gs) = (p.as_slice::<T>()?, g.as_slice::<T>()?);
    if m.as_mut_slice_if_unique::<T>().is_none() {
        *m = Tensor::from_vec(m.as_slice::<T>()?.to_vec(), p.shape())?;
    }
    if v.as_mut_slice_if_unique::<T>().is_none() {
        *v = Tensor::from_vec(v.as_slice::<T>()?.to_vec(), p.shape())?;
    }
    let ms = m
        .as_mut_slice_if_unique::<T>()
        .ok_or_else(|| Error::Internal("AdamW first moment is shared".into()))?;
    let vs = v
        .as_mut_slice_if_unique::<T>()
        .ok_or_else(|| Error::Internal("AdamW second moment is shared".into()))?;
    let mut p_new = crate::tensor::pool::take::<T>(ps.len());
    const CHUNK: usize = 1 << 16;
    if ps.len() > CHUNK {
        use rayon::prelude::*;
        p_new
            .par_chunks_mut(CHUNK)
            .zip(ms.par_chunks_mut(CHUNK).zip(vs.par_chunks_mut(CHUNK)))
            .zip(ps.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
            .for_each(|((pn, (mc, vc)), (pc, gc))| elements(pn, mc, vc, pc, gc, h));
    } else {
        elements(&mut p_new, ms, vs, ps, gs, h);
    }
    Tensor::from_vec(p_new, p.shape())
}

/// The AdamW formulas of the module doc on aligned slices: new parameters into `pn`, moments in
/// place.
fn elements<T: Float>(pn: &mut [T], m: &mut [T], v: &mut [T], p: &[T], g: &[T], h: &Hyper<T>) {
    // Zipped slices (no bounds checks) at the CPU's SIMD level: the loop vectorises.
    crate::ops::simd::run(
        #[inline(always)]
        || {
            for ((pn, (m, v)), (&p, &gi)) in pn
                .iter_mut()
                .zip(m.iter_mut().zip(v.iter_mut()))
                .zip(p.iter().zip(g))
            {
                let decayed = p * h.decay;
                *m = *m + (gi - *m) * h.w1;
                *v = *v * h.b2 + h.w2 * gi * gi;
                let denom = v.sqrt() / h.bc2_sqrt + h.eps;
                *pn = decayed - h.step_size * (*m / denom);
            }
        },
    )
}

/// transformers' linear schedule with warm-up (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinearSchedule {
    pub warmup: usize,
    pub total: usize,
}

impl LinearSchedule {
    /// The factor of the base learning rate for optimizer step `s` (counted from 0).
    pub fn factor(&self, s: usize) -> f64 {
        if s < self.warmup {
            s as f64 / self.warmup.max(1) as f64
        } else {
            (self.total as f64 - s as f64).max(0.0)
                / (self.total.saturating_sub(self.warmup)).max(1) as f64
        }
    }

    /// Warm-up steps as transformers' Trainer computes them from a ratio: `ceil(total · ratio)`.
    pub fn from_ratio(total: usize, ratio: f64) -> LinearSchedule {
        LinearSchedule {
            warmup: (total as f64 * ratio).ceil() as usize,
            total,
        }
    }
}

/// Scales `grads` in place (new tensors) so that their global 2-norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    // torch: the norm of the per-tensor norms, each computed in the tensor's dtype.
    let mut norms = Vec::with_capacity(grads.len());
    for g in grads.iter() {
        let n = with_dtype!(g.dtype(), T => {
            let s = g.as_slice::<T>()?;
            sum_squares(s).sqrt().to_f64()
        });
        norms.push(n);
    }
    let total = norms.iter().map(|n| n * n).sum::<f64>().sqrt();
    let coef = (max_norm / (total + 1e-6)).min(1.0);
    for g in grads.iter_mut() {
        let dtype = g.dtype();
        let t = std::mem::replace(g, Tensor::zeros(&[0], dtype));
        *g = scale(t, coef, dtype)?;
    }
    Ok(total)
}

/// Σ x² in fixed blocks (each summed with [`crate::tensor::sum_by_lanes`], the blocks in order):
/// parallel and vectorised, and the same result for any number of threads.
fn sum_squares<T: Float>(s: &[T]) -> T {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 15;
    let block = |b: &[T]| {
        let mut t = T::zero();
        crate::ops::simd::run(
            #[inline(always)]
            || t = crate::tensor::sum_by_lanes(b.len(), |j| b[j] * b[j]),
        );
        t
    };
    let partials: Vec<T> = if s.len() > BLOCK {
        s.par_chunks(BLOCK).map(block).collect()
    } else {
        s.chunks(BLOCK).map(block).collect()
    };
    partials.into_iter().fold(T::zero(), |a, b| a + b)
}

fn scale(mut g: Tensor, coef: f64, dtype: DType) -> Result<Tensor> {
    with_dtype!(dtype, T => {
        let c = T::from_f64(coef);
        if coef == 1.0 {
            return Ok(g); // no clipping: x·1 = x
        }
        if let Some(s) = g.as_mut_slice_if_unique::<T>() {
            use rayon::prelude::*;
            s.par_chunks_mut(1 << 15).for_each(|b| {
                crate::ops::simd::run(#[inline(always)] || b.iter_mut().for_each(|x| *x *= c))
            });
            return Ok(g);
        }
        let src = g.as_slice::<T>()?;
        let mut v = crate::tensor::pool::take::<T>(src.len());
        v.iter_mut().zip(src).for_each(|(o, &x)| *o = x * c);
        Tensor::from_vec(v, g.shape())
    })
}
