//! Perturbation methods at the path boundary (`hook_embed` by default), token by token:
//! - **embedding ablation** (Captum `FeatureAblation` with one feature group per token):
//!   `Attr_t = F(x) − F(x with token t's row := replacement)`, the replacement being the
//!   baseline's row (e.g. the `[PAD]` embedding) or zero;
//! - **noise sensitivity**: Gaussian noise of σ on one token's row at a time, `draws` seeded
//!   draws per token; the standard deviation (population, ddof = 0) and mean of F over the draws.
//!
//! Only forwards (no tape), the perturbed inputs travel as rows of batches.

use super::gradients::Gaussian;
use super::ig::{PathProblem, Progress};
use super::probe::{self, Chunking, Objective, Request, Rows};
use crate::{Error, Result, Tensor};

/// The result of an ablation.
#[derive(Debug, Clone)]
pub struct AblationResult {
    pub f_input: f64,
    /// F with token t ablated.
    pub f_ablated: Vec<f64>,
    /// F(x) − F(x with t ablated).
    pub per_token: Vec<f64>,
}

/// F at `n_rows` rows of the path boundary, row k written by `make(k, row)` (built chunk by
/// chunk: memory does not grow with the number of rows). Forwards only.
fn eval_rows(
    p: &PathProblem,
    n_rows: usize,
    make: &mut dyn FnMut(usize, &mut [f64]),
    batch: usize,
    progress: Progress,
) -> Result<Vec<f64>> {
    let path = p.path()?;
    let make = std::cell::RefCell::new(make);
    let fill = |k: usize, row: &mut [f64]| -> Result<()> {
        (make.borrow_mut())(k, row);
        Ok(())
    };
    let req = Request::new(
        Rows::Fill {
            n: n_rows,
            at: path.segments[0].at,
            fill: &fill,
        },
        Objective::Target(p.target),
    )
    .chunking(Chunking::Rows(batch));
    probe::run(&p.subject(), &req, progress, &mut |_| Ok(()))
}

/// Ablates each position (first axis of the path boundary) in turn, replacing its row by the
/// same row of `replacement` (the path boundary's shape: the baseline, or zeros).
pub fn ablation(
    p: &PathProblem,
    replacement: &Tensor,
    batch: usize,
    progress: Progress,
) -> Result<AblationResult> {
    p.check()?;
    replacement.same_shape("ablation", p.input)?;
    let x = p.input.to_vec_f64()?;
    let rep = replacement.to_vec_f64()?;
    let t = p.input.shape()[0];
    let c = x.len() / t.max(1);
    let rows = |k: usize, v: &mut [f64]| {
        v.copy_from_slice(&x);
        v[k * c..(k + 1) * c].copy_from_slice(&rep[k * c..(k + 1) * c]);
    };
    let mut f = eval_rows(
        p,
        t + 1,
        &mut |k, v| {
            if k < t {
                rows(k, v)
            } else {
                v.copy_from_slice(&x)
            }
        },
        batch,
        progress,
    )?;
    let f_input = f.pop().unwrap_or(f64::NAN);
    let per_token = f.iter().map(|fa| f_input - fa).collect();
    Ok(AblationResult {
        f_input,
        f_ablated: f,
        per_token,
    })
}

/// The result of a noise-sensitivity run.
#[derive(Debug, Clone)]
pub struct SensitivityResult {
    pub f_input: f64,
    /// Standard deviation of F over the draws (ddof = 0), per token.
    pub std: Vec<f64>,
    /// Mean of F over the draws, per token.
    pub mean: Vec<f64>,
    /// Every F, `draws` per token in token order.
    pub f: Vec<f64>,
}

/// Gaussian noise N(0, σ²) on one position's row at a time, `draws` seeded draws per position.
pub fn noise_sensitivity(
    p: &PathProblem,
    sigma: f64,
    draws: usize,
    seed: u64,
    batch: usize,
    progress: Progress,
) -> Result<SensitivityResult> {
    let t = p.input.shape().first().copied().unwrap_or(0);
    noise_sensitivity_on(p, 0..t, sigma, draws, seed, batch, progress)
}

/// As [`noise_sensitivity`], perturbing only the positions in `positions` (e.g. a prompt, not
/// the teacher-forced answer after it, which is part of the target). Every other position is
/// left as it is: its standard deviation is 0, its mean and its draws are F(x), and no forward
/// is spent on it. Draws for position t are the same whichever range is given.
pub fn noise_sensitivity_on(
    p: &PathProblem,
    positions: std::ops::Range<usize>,
    sigma: f64,
    draws: usize,
    seed: u64,
    batch: usize,
    progress: Progress,
) -> Result<SensitivityResult> {
    p.check()?;
    if draws == 0 {
        return Err(Error::BadValue {
            name: "draws",
            detail: "must be at least 1".into(),
        });
    }
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(Error::BadValue {
            name: "sigma",
            detail: format!("must be a finite number ≥ 0, got {sigma}"),
        });
    }
    let x = p.input.to_vec_f64()?;
    let t = p.input.shape()[0];
    if positions.start > positions.end || positions.end > t {
        return Err(Error::OutOfRange {
            what: "perturbed position",
            index: positions.end.max(positions.start),
            len: t,
        });
    }
    let c = x.len() / t.max(1);
    // every F is kept (and written to the JSON, about 24 bytes each)
    crate::memory::check(
        "the F values of --draws",
        crate::memory::product(&[t, draws, 32]),
        "use fewer --draws",
    )?;
    let mut g = Gaussian::new(seed);
    // Draws of the positions before the range are skipped so position t always gets the same
    // noise.
    for _ in 0..positions.start * draws * c {
        g.sample();
    }
    let first = positions.start;
    let n = positions.len();
    let mut f = eval_rows(
        p,
        n * draws + 1,
        &mut |k, v| {
            v.copy_from_slice(&x);
            if k < n * draws {
                let tok = first + k / draws;
                for e in &mut v[tok * c..(tok + 1) * c] {
                    *e += sigma * g.sample();
                }
            }
        },
        batch,
        progress,
    )?;
    let f_input = f.pop().unwrap_or(f64::NAN);
    let mut all = Vec::with_capacity(t * draws);
    for tok in 0..t {
        if positions.contains(&tok) {
            let k = (tok - first) * draws;
            all.extend_from_slice(&f[k..k + draws]);
        } else {
            all.extend(std::iter::repeat_n(f_input, draws));
        }
    }
    let nd = draws as f64;
    let mut std = Vec::with_capacity(t);
    let mut mean = Vec::with_capacity(t);
    for (tok, d) in all.chunks(draws).enumerate() {
        if !positions.contains(&tok) {
            mean.push(f_input);
            std.push(0.0);
            continue;
        }
        let m = d.iter().sum::<f64>() / nd;
        let var = d.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / nd;
        mean.push(m);
        std.push(var.sqrt());
    }
    Ok(SensitivityResult {
        f_input,
        std,
        mean,
        f: all,
    })
}
