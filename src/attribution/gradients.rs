//! Plain gradient methods at the path boundary (`hook_embed` by default): saliency (Captum
//! `Saliency`, |∂F/∂x| with `abs=True`), input × gradient (Captum `InputXGradient`), and their
//! noise-tunnel versions SmoothGrad / SmoothGrad² / VarGrad (Captum `NoiseTunnel`): samples
//! x̃_s = x + ε_s, ε ~ N(0, σ²); smoothgrad = mean_s A(x̃_s), smoothgrad_sq = mean_s A(x̃_s)²,
//! vargrad = mean_s A² − (mean_s A)².

use super::ig::{PathProblem, Progress};
use super::probe::{self, Capture, Chunking, Objective, Request, Rows};
use crate::ops::elementwise::{binary_forward, Binary};
use crate::{DType, Error, Result, Tensor};

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
            _ => Err(Error::Unknown {
                what: "noise tunnel",
                value: s.to_string(),
                valid: vec![
                    "smoothgrad".into(),
                    "smoothgrad-sq".into(),
                    "vargrad".into(),
                ],
            }),
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

/// Gradient attribution at the input x (row-major over the path boundary's shape) and F(x).
pub fn gradient_attribution(p: &PathProblem, method: GradMethod) -> Result<(f64, Vec<f64>)> {
    let path = p.path()?;
    let at = path.segments[0].at;
    let req = Request::new(
        Rows::Path {
            path: &path,
            alphas: &[1.0],
        },
        Objective::Target(p.target),
    )
    .capture(Capture::grad(at))
    .chunking(Chunking::Rows(1));
    let mut g = Vec::new();
    let f = probe::run(&p.subject(), &req, &mut |_, _| {}, &mut |c| {
        g = c.grad(0)?.to_vec_f64()?;
        Ok(())
    })?;
    let x = p.input.to_vec_f64()?;
    Ok((f[0], method.apply(&x, &g)))
}

/// Noise-tunnel attribution with the noise given: `noise` is `[samples, ...]` (the path
/// boundary's shape per sample), added to x. The sums over samples stay on the model's device.
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
        return Err(Error::Mismatch {
            what: "noise".into(),
            detail: format!(
                "has shape {:?}; expected [samples ≥ 1, {:?}]",
                noise.shape(),
                p.input.shape()
            ),
        });
    }
    let x = p.input.to_vec_f64()?;
    let eps = noise.to_vec_f64()?;
    let fill = |k: usize, row: &mut [f64]| -> Result<()> {
        for ((o, x), e) in row.iter_mut().zip(&x).zip(&eps[k * per..(k + 1) * per]) {
            *o = x + e;
        }
        Ok(())
    };
    tunnel(p, method, kind, s, &fill, batch, progress)
}

/// Noise-tunnel attribution with `samples` seeded N(0, σ²) noise samples drawn as the rows are
/// filled, chunk by chunk: memory does not grow with `samples`. The draws (and their rounding to
/// the model's dtype) are exactly those of [`gaussian_noise`] with the same seed, so the result is
/// that of [`noise_tunnel`] on that tensor.
#[allow(clippy::too_many_arguments)]
pub fn noise_tunnel_seeded(
    p: &PathProblem,
    method: GradMethod,
    kind: NoiseKind,
    samples: usize,
    stdev: f64,
    seed: u64,
    batch: usize,
    progress: Progress,
) -> Result<Vec<f64>> {
    check_noise(samples, stdev)?;
    let x = p.input.to_vec_f64()?;
    let f32_model = p.input.dtype() == DType::F32;
    // (generator, the next row it draws for)
    let state = std::cell::RefCell::new((Gaussian::new(seed), 0usize));
    let fill = |k: usize, row: &mut [f64]| -> Result<()> {
        let mut st = state.borrow_mut();
        // The probe fills rows 0, 1, 2, ... in order, which keeps the draws those of
        // `gaussian_noise` row after row.
        if k != st.1 {
            return Err(Error::Internal(format!(
                "noise row {k} asked when row {} was next: rows must be filled in order",
                st.1
            )));
        }
        for (o, x) in row.iter_mut().zip(&x) {
            let e = stdev * st.0.sample();
            *o = x + if f32_model { e as f32 as f64 } else { e };
        }
        st.1 += 1;
        Ok(())
    };
    tunnel(p, method, kind, samples, &fill, batch, progress)
}

/// The noise tunnel over `s` rows filled by `fill` (x + noise of row k).
fn tunnel(
    p: &PathProblem,
    method: GradMethod,
    kind: NoiseKind,
    s: usize,
    fill: &dyn Fn(usize, &mut [f64]) -> Result<()>,
    batch: usize,
    progress: Progress,
) -> Result<Vec<f64>> {
    let path = p.path()?;
    let at = path.segments[0].at;
    let req = Request::new(Rows::Fill { n: s, at, fill }, Objective::Target(p.target))
        .capture(Capture::both(at))
        .chunking(Chunking::Rows(batch));
    let (mut sum, mut sq): (Option<Tensor>, Option<Tensor>) = (None, None);
    probe::run(&p.subject(), &req, progress, &mut |c| {
        let g = c.grad(0)?;
        match method {
            GradMethod::Saliency => {
                probe::add_rows_map(&mut sum, g, f64::abs)?;
                probe::add_rows_map(&mut sq, g, |v| v * v)
            }
            GradMethod::InputXGradient => {
                let xs = c.value(0)?.to_dtype(DType::F64)?;
                let a = binary_forward(&xs, &g.to_dtype(DType::F64)?, Binary::Mul)?;
                probe::add_rows_map(&mut sum, &a, |v| v)?;
                probe::add_rows_map(&mut sq, &a, |v| v * v)
            }
        }
    })?;
    let (sum, sq) = (probe::finish_acc(sum)?, probe::finish_acc(sq)?);
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

fn check_noise(samples: usize, stdev: f64) -> Result<()> {
    if samples == 0 {
        return Err(Error::BadValue {
            name: "samples",
            detail: "must be at least 1".into(),
        });
    }
    if !(stdev.is_finite() && stdev >= 0.0) {
        return Err(Error::BadValue {
            name: "stdev",
            detail: format!("must be a finite number ≥ 0, got {stdev}"),
        });
    }
    Ok(())
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

/// `samples` noise tensors N(0, σ²) of the path boundary's shape, `[samples, ...]`, all in
/// memory (refused beyond the memory budget); [`noise_tunnel_seeded`] streams the same draws.
pub fn gaussian_noise(p: &PathProblem, samples: usize, stdev: f64, seed: u64) -> Result<Tensor> {
    check_noise(samples, stdev)?;
    let per = p.input.numel();
    // the f64 draws, and the tensor made from them
    crate::memory::check(
        "the noise of --samples",
        crate::memory::product(&[samples, per, 16]),
        "use fewer --samples",
    )?;
    let mut g = Gaussian::new(seed);
    let v: Vec<f64> = (0..samples * per).map(|_| stdev * g.sample()).collect();
    let mut shape = vec![samples];
    shape.extend_from_slice(p.input.shape());
    Tensor::from_f64_on(&v, &shape, p.input.dtype(), p.input.device())
}
