//! Plain gradient methods at the path boundary (`hook_embed` by default): saliency (Captum
//! `Saliency`, |∂F/∂x| with `abs=True`), input × gradient (Captum `InputXGradient`), and their
//! noise-tunnel versions SmoothGrad / SmoothGrad² / VarGrad (Captum `NoiseTunnel`): samples
//! x̃_s = x + ε_s, ε ~ N(0, σ²); smoothgrad = mean_s A(x̃_s), smoothgrad_sq = mean_s A(x̃_s)²,
//! vargrad = mean_s A² − (mean_s A)².

use super::ig::{PathProblem, Progress};
use crate::integrate::chunks;
use crate::models::{Batch, Hooks};
use crate::{Error, Result, Tape, Tensor};

/// The attribution a noise tunnel averages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradMethod {
    /// |∂F/∂x| (Captum `Saliency`, `abs=True`).
    Saliency,
    /// x ⊙ ∂F/∂x (Captum `InputXGradient`).
    InputXGradient,
}

impl GradMethod {
    fn apply(self, x: &[f64], g: &[f64]) -> Vec<f64> {
        match self {
            GradMethod::Saliency => g.iter().map(|g| g.abs()).collect(),
            GradMethod::InputXGradient => x.iter().zip(g).map(|(x, g)| x * g).collect(),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            GradMethod::Saliency => "saliency",
            GradMethod::InputXGradient => "input_x_gradient",
        }
    }
}

/// Captum `NoiseTunnel` `nt_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    SmoothGrad,
    SmoothGradSq,
    VarGrad,
}

impl NoiseKind {
    pub fn parse(s: &str) -> Result<NoiseKind> {
        match s {
            "smoothgrad" => Ok(NoiseKind::SmoothGrad),
            "smoothgrad_sq" | "smoothgrad-sq" => Ok(NoiseKind::SmoothGradSq),
            "vargrad" => Ok(NoiseKind::VarGrad),
            _ => Err(Error::Input(format!(
                "unknown noise tunnel `{s}` (expected smoothgrad, smoothgrad-sq or vargrad)"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            NoiseKind::SmoothGrad => "smoothgrad",
            NoiseKind::SmoothGradSq => "smoothgrad_sq",
            NoiseKind::VarGrad => "vargrad",
        }
    }
}

/// F and ∂F/∂x at the given rows `[n, ...]` of the path boundary, `batch` rows per pass.
pub fn gradients_at(
    p: &PathProblem,
    rows: &Tensor,
    batch: usize,
    progress: Progress,
) -> Result<Vec<(f64, Vec<f64>)>> {
    p.check()?;
    let n = rows.shape()[0];
    let per = p.input.numel();
    if rows.numel() != n * per {
        return Err(Error::Input(format!(
            "rows have shape {:?}, the path boundary has {:?} per row",
            rows.shape(),
            p.input.shape()
        )));
    }
    let all = rows.to_vec_f64()?;
    let mut out = Vec::with_capacity(n);
    for r in chunks(n, batch)? {
        let tape = Tape::new();
        let mut shape = vec![r.len()];
        shape.extend_from_slice(p.input.shape());
        let pts = tape.var(Tensor::from_f64(
            &all[r.start * per..r.end * per],
            &shape,
            p.input.dtype(),
        )?);
        let mut hooks = Hooks::new().replace(p.boundary, pts.clone());
        let o = p
            .model
            .forward(&Batch::repeat(p.ids, p.type_ids, r.len()), &mut hooks)?;
        drop(hooks);
        let f = p.target.eval(&o)?;
        drop(o);
        let fv = f.value().to_vec_f64()?;
        let seed = Tensor::ones(f.shape(), f.dtype());
        let g = match tape.grad(&[&f], &[seed], &[&pts])?.remove(0) {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; r.len() * per],
        };
        for (i, fi) in fv.into_iter().enumerate() {
            out.push((fi, g[i * per..(i + 1) * per].to_vec()));
        }
        progress(r.end, n);
    }
    Ok(out)
}

/// Gradient attribution at the input x (row-major over the path boundary's shape) and F(x).
pub fn gradient_attribution(p: &PathProblem, method: GradMethod) -> Result<(f64, Vec<f64>)> {
    let rows = p.input.reshape(&[&[1], p.input.shape()].concat())?;
    let (f, g) = gradients_at(p, &rows, 1, &mut |_, _| {})?.remove(0);
    let x = p.input.to_vec_f64()?;
    Ok((f, method.apply(&x, &g)))
}

/// Noise-tunnel attribution with the noise given: `noise` is `[samples, ...]` (the path
/// boundary's shape per sample), added to x.
pub fn noise_tunnel(
    p: &PathProblem,
    method: GradMethod,
    kind: NoiseKind,
    noise: &Tensor,
    batch: usize,
    progress: Progress,
) -> Result<Vec<f64>> {
    let per = p.input.numel();
    let s = noise.shape().first().copied().unwrap_or(0);
    if s == 0 || noise.numel() != s * per {
        return Err(Error::Input(format!(
            "noise has shape {:?}; expected [samples ≥ 1, {:?}]",
            noise.shape(),
            p.input.shape()
        )));
    }
    let x = p.input.to_vec_f64()?;
    let eps = noise.to_vec_f64()?;
    let mut rows = Vec::with_capacity(s * per);
    for e in eps.chunks(per) {
        rows.extend(x.iter().zip(e).map(|(x, e)| x + e));
    }
    let mut shape = vec![s];
    shape.extend_from_slice(p.input.shape());
    let rows = Tensor::from_f64(&rows, &shape, p.input.dtype())?;
    let xs = rows.to_vec_f64()?;
    let grads = gradients_at(p, &rows, batch, progress)?;
    let mut sum = vec![0.0; per];
    let mut sq = vec![0.0; per];
    for (i, (_, g)) in grads.iter().enumerate() {
        let a = method.apply(&xs[i * per..(i + 1) * per], g);
        for ((s1, s2), a) in sum.iter_mut().zip(sq.iter_mut()).zip(&a) {
            *s1 += a;
            *s2 += a * a;
        }
    }
    let n = s as f64;
    Ok(match kind {
        NoiseKind::SmoothGrad => sum.iter().map(|v| v / n).collect(),
        NoiseKind::SmoothGradSq => sq.iter().map(|v| v / n).collect(),
        NoiseKind::VarGrad => sum
            .iter()
            .zip(&sq)
            .map(|(s1, s2)| s2 / n - (s1 / n) * (s1 / n))
            .collect(),
    })
}

/// Seeded standard normal numbers (SplitMix64 + Box–Muller): reproducible across platforms,
/// no dependency. Not Captum's (torch's) generator: parity tests supply the noise explicitly.
pub struct Gaussian {
    state: u64,
    spare: Option<f64>,
}

impl Gaussian {
    pub fn new(seed: u64) -> Gaussian {
        Gaussian {
            state: seed,
            spare: None,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    /// One N(0, 1) draw.
    pub fn sample(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// `samples` noise tensors N(0, σ²) of the path boundary's shape, `[samples, ...]`.
pub fn gaussian_noise(p: &PathProblem, samples: usize, stdev: f64, seed: u64) -> Result<Tensor> {
    if samples == 0 {
        return Err(Error::Input("--samples must be at least 1".into()));
    }
    if !(stdev.is_finite() && stdev >= 0.0) {
        return Err(Error::Input(format!(
            "--stdev must be a finite number ≥ 0, got {stdev}"
        )));
    }
    let mut g = Gaussian::new(seed);
    let per = p.input.numel();
    let v: Vec<f64> = (0..samples * per).map(|_| stdev * g.sample()).collect();
    let mut shape = vec![samples];
    shape.extend_from_slice(p.input.shape());
    Tensor::from_f64(&v, &shape, p.input.dtype())
}
