//! Set-to-set Layer-wise Integrated Gradients (LIG; `LIG_SPEC.md`, `METHODS.md` §2.7): the
//! token-to-token flow inside one transformer layer, as IG of a vector map scalarised by the L2
//! norm of its change per target token.
//!
//! Three maps per layer l, all read at the model's boundaries (`docs/HOOKS.md`):
//!
//! | map | path boundary (interpolated) | read boundary | target of token j | score |
//! |---|---|---|---|---|
//! | layer z → z | `blocks.{l}.hook_resid_pre` (z, all T tokens) | `blocks.{l}.hook_resid_post` | `z_next_j` (d dims) | `M[i][j]`, source i → target j |
//! | ATT z → u, head h | `blocks.{l}.hook_resid_pre` | `blocks.{l}.attn.hook_z` | the head's context `ctx_{j,h}` (d_head dims, before W_O) | `ATT[h][i][j]` |
//! | MLP u → z | `blocks.{l}.hook_resid_mid` (u) | `blocks.{l}.hook_resid_post` | `z_next_j` (a function of `u_j` only) | per dimension `k` of `u_j` |
//!
//! For target j, `g_j(Y) = ‖F_j(Y) − F_j(X′)‖₂` and
//! `a_{i,k} = (x_{i,k} − x′_{i,k}) Σ_a w_a ∂g_j/∂y_{i,k}(X′ + α_a (X − X′))`; the layer and ATT
//! scores sum `a` over the hidden axis. Completeness per column: `Σ_i M[i][j] = g_j(X)` for an
//! exact integral (reported as [`TokenMap::delta`]).
//!
//! **All targets at once.** Every (target, path point) pair of a layer is one row of the probe
//! ([`probe::Rows::Fill`]): T × n rows for the layer map, T × H × n for ATT, n for the MLP (the MLP
//! acts token by token, so one row carries every target: `Σ_j g_j` has gradient `∂g_j/∂u_j` at
//! token j). Rows run in chunks by memory; a replaced `hook_resid_pre` makes blocks before l
//! dead work that the models skip ([`crate::models::Hooks::first_live_block`]), and the forward
//! stops after the read boundary, so a layer's map costs one block per row. Sums are in f64.
//!
//! **Conventions.** The L2 norm has no gradient where the residual is 0 (at α = 0): there it
//! contributes exactly 0 (the package gets autograd's 0 for an exactly zero residual and a
//! random direction for a ~1e-16 one). Under ITB the self term `x_j − x′_j` is exactly 0, so
//! `M[j][j] = 0` exactly; decoders' causal masks (−∞) make every source after the target exactly
//! 0 without post-hoc zeroing.
//!
//! ```
//! # fn main() -> gradpath::Result<()> {
//! use gradpath::attribution::lig::{Lig, LigConfig, LayerBaseline};
//! use gradpath::attribution::probe::Subject;
//! use gradpath::integrate::Rule;
//! use gradpath::{models, DType};
//! let model = models::load("tests/fixtures/models/tiny-gpt2".as_ref(), DType::F64)?;
//! let ids = [45, 20, 78, 210];
//! let lig = Lig::new(Subject::new(model.as_ref(), &ids, &[0; 4]))?;
//! let cfg = LigConfig::new(Rule::GaussLegendre, 16)?;
//! let m = lig.layer_map(0, LayerBaseline::Itb, &cfg)?;
//! assert_eq!(m.matrix[2][2], 0.0); // ITB: no self term
//! assert_eq!(m.matrix[3][1], 0.0); // causal: a later source never reaches an earlier target
//! # Ok(()) }
//! ```

mod report;
pub use report::{explain_lig, word_groups, Granularity, LigOptions, LigReport};
mod set_map;
mod shared;
pub use set_map::{set_map_ig, TokenReduce};
mod consistency;
mod types;
use consistency::ratio_map;
pub use consistency::{
    compose, diagnostic, itb_map_ratio, itb_zero_ratio, pearson, words_map, Diagnostic, PairStats,
    PairTable,
};
use types::unknown;
pub use types::{AttBaseline, LayerBaseline, LigConfig, MlpBaseline, MlpMap, TokenMap, LIG_BUDGET};

use super::probe::{self, Capture, Chunking, Objective, Request, Rows, Subject};
use crate::integrate::Rule;
use crate::models::{AttentionInput, HookName, Site};
use crate::{Error, Result, Tensor, Var};
use std::ops::Range;

/// One unit of rows: a baseline, the slots of the read boundary it scalarises (one L2 norm per
/// slot, summed) and the accumulator its gradients go to.
struct Unit {
    baseline: usize,
    slots: Vec<Range<usize>>,
}

/// How gradients reduce per unit.
#[derive(Clone, Copy, PartialEq)]
enum Reduce {
    /// `Σ_d Δ_{i,d} Σ_a w_a g_{i,d}` per token i of the path boundary.
    Token,
    /// `Δ_{i,d} Σ_a w_a g_{i,d}` per coordinate.
    Coord,
}

/// A sentence prepared for LIG: the plain forward's boundaries of every layer.
pub struct Lig<'a> {
    s: Subject<'a>,
    t: usize,
    d: usize,
    heads: usize,
    d_head: usize,
    /// Per layer: z (resid_pre), u (resid_mid), z_next (resid_post), ctx (attn.hook_z), pattern.
    z: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
    z_next: Vec<Vec<f64>>,
    ctx: Vec<Vec<f64>>,
    pattern: Vec<Vec<f64>>,
}

fn hook(l: usize, site: Site) -> HookName {
    HookName::block(l, site)
}

impl<'a> Lig<'a> {
    /// Runs the plain forward once and keeps every layer's boundaries.
    pub fn new(s: Subject<'a>) -> Result<Lig<'a>> {
        let m = s.model;
        let (t, d, heads, d_head) = (s.len(), m.d_model(), m.n_heads(), m.d_head());
        if t == 0 {
            return Err(Error::Empty("the text"));
        }
        let sites = [
            Site::ResidPre,
            Site::ResidMid,
            Site::ResidPost,
            Site::Z,
            Site::Pattern,
        ];
        let mut req = Request::new(Rows::Count(1), Objective::None);
        for l in 0..m.n_layers() {
            for site in sites {
                req = req.capture(Capture::value(hook(l, site)));
            }
        }
        let mut vals: Vec<Vec<f64>> = Vec::new();
        probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
            for i in 0..c.values.len() {
                vals.push(c.value(i)?.to_vec_f64()?);
            }
            Ok(())
        })?;
        let n = sites.len();
        let take = |k: usize| -> Vec<Vec<f64>> {
            (0..m.n_layers()).map(|l| vals[l * n + k].clone()).collect()
        };
        Ok(Lig {
            s,
            t,
            d,
            heads,
            d_head,
            z: take(0),
            u: take(1),
            z_next: take(2),
            ctx: take(3),
            pattern: take(4),
        })
    }

    pub fn n_tokens(&self) -> usize {
        self.t
    }
    pub fn n_layers(&self) -> usize {
        self.z.len()
    }
    pub fn n_heads(&self) -> usize {
        self.heads
    }
    pub fn d_model(&self) -> usize {
        self.d
    }
    pub fn is_decoder(&self) -> bool {
        self.s.model.is_decoder()
    }

    pub fn check_layer(&self, l: usize) -> Result<()> {
        if l >= self.n_layers() {
            return Err(Error::OutOfRange {
                what: "layer",
                index: l,
                len: self.n_layers(),
            });
        }
        Ok(())
    }

    /// Checks target indices (all tokens when empty).
    pub fn targets(&self, targets: &[usize]) -> Result<Vec<usize>> {
        if targets.is_empty() {
            return Ok((0..self.t).collect());
        }
        for &j in targets {
            if j >= self.t {
                return Err(Error::OutOfRange {
                    what: "target token",
                    index: j,
                    len: self.t,
                });
            }
        }
        Ok(targets.to_vec())
    }

    /// The ITB baseline of target j: every position holds z_j (T·d).
    fn itb(&self, l: usize, j: usize) -> Vec<f64> {
        let zj = &self.z[l][j * self.d..(j + 1) * self.d];
        (0..self.t).flat_map(|_| zj.iter().copied()).collect()
    }

    /// The attention weight α_jj of head h at layer l.
    pub fn self_attention(&self, l: usize, h: usize, j: usize) -> f64 {
        let t = self.t;
        self.pattern[l][h * t * t + j * t + j]
    }

    /// Rows per forward: a budget is spent on ONE block (the models skip the blocks before a
    /// replaced `hook_resid_pre`, and the forward stops inside block l).
    fn chunk(&self, c: Chunking) -> Chunking {
        match c {
            Chunking::Budget(b) => {
                let m = self.s.model;
                let per = m.activation_bytes_per_row(self.t) / m.n_layers().max(1);
                Chunking::Rows((b / per.max(1)).clamp(1, 4096))
            }
            rows => rows,
        }
    }

    /// The read boundary's value at each baseline (a forward of one row per baseline).
    fn at_baselines(
        &self,
        at: HookName,
        read: HookName,
        baselines: &[Vec<f64>],
        chunking: Chunking,
    ) -> Result<Vec<Vec<f64>>> {
        Ok(self
            .values_at(at, baselines, &[read], chunking)?
            .into_iter()
            .map(|mut v| v.swap_remove(0))
            .collect())
    }

    /// The values of `reads` for each of `rows` written at boundary `at` (one forward per row,
    /// stopped after the last read): `out[row][read]`.
    fn values_at(
        &self,
        at: HookName,
        rows: &[Vec<f64>],
        reads: &[HookName],
        chunking: Chunking,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        let fill = |k: usize, row: &mut [f64]| -> Result<()> {
            row.copy_from_slice(&rows[k]);
            Ok(())
        };
        let mut req = Request::new(
            Rows::Fill {
                n: rows.len(),
                at,
                fill: &fill,
            },
            Objective::None,
        )
        .chunking(self.chunk(chunking));
        for &read in reads {
            req = req.capture(Capture::value(read));
        }
        let mut out: Vec<Vec<Vec<f64>>> = Vec::with_capacity(rows.len());
        probe::run(&self.s, &req, &mut |_, _| {}, &mut |c| {
            let n = c.rows.len();
            let per_read: Vec<Vec<f64>> = (0..reads.len())
                .map(|i| c.value(i)?.to_vec_f64())
                .collect::<Result<_>>()?;
            for r in 0..n {
                out.push(
                    per_read
                        .iter()
                        .map(|v| {
                            let w = v.len() / n;
                            v[r * w..(r + 1) * w].to_vec()
                        })
                        .collect(),
                );
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The set-to-set IG pass: rows = units × path points. Returns, per unit, the reduced
    /// attributions ([`Reduce`]) and the number of rows run.
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        at: HookName,
        read: HookName,
        x: &[f64],
        baselines: &[Vec<f64>],
        refs: &[Vec<f64>],
        units: &[Unit],
        reduce: Reduce,
        cfg: &LigConfig,
    ) -> Result<(Vec<Vec<f64>>, usize)> {
        let n = cfg.alphas.len();
        let per = x.len();
        let (t, d) = (self.t, per / self.t.max(1));
        let rows = units.len() * n;
        let fill = |k: usize, row: &mut [f64]| -> Result<()> {
            let (u, a) = (&units[k / n], cfg.alphas[k % n]);
            let b = &baselines[u.baseline];
            for ((o, x), b) in row.iter_mut().zip(x).zip(b) {
                *o = if a == 1.0 { *x } else { b + a * (x - b) };
            }
            Ok(())
        };
        let reads = [read];
        let (dtype, device) = (self.s.model.dtype(), self.s.model.device());
        // g = Σ_slots ‖y_s − ref_s‖ as ⟨y, U⟩ − c with U the (constant) unit residual on each
        // slot: the value is the norm, the gradient the norm's; U = 0 where the residual is 0
        // or α = 0 (the convention: no contribution there).
        let eval = |fw: &probe::Forward| -> Result<Var> {
            let y = fw.boundary(read)?;
            let r = fw.rows();
            let nr = r.len();
            let p = y.value().numel() / nr.max(1);
            let yv = y.value().to_vec_f64()?;
            let mut uvec = vec![0.0; nr * p];
            let mut c = vec![0.0; nr];
            for (i, k) in r.enumerate() {
                if cfg.alphas[k % n] == 0.0 {
                    continue;
                }
                let unit = &units[k / n];
                let rf = &refs[unit.baseline];
                for s in &unit.slots {
                    c[i] += unit_residual(
                        &yv[i * p + s.start..i * p + s.end],
                        &rf[s.clone()],
                        &mut uvec[i * p + s.start..i * p + s.end],
                    );
                }
            }
            let u = Tensor::from_f64_on(&uvec, &[nr, p], dtype, device)?;
            let c = Tensor::from_f64_on(&c, &[nr], dtype, device)?;
            y.reshape(&[nr, p])?
                .mul(&Var::constant(u))?
                .sum(&[1], false)?
                .sub(&Var::constant(c))
        };
        let req = Request::new(
            Rows::Fill {
                n: rows,
                at,
                fill: &fill,
            },
            Objective::Custom {
                reads: &reads,
                model_output: false,
                eval: &eval,
            },
        )
        .capture(Capture::grad(at))
        .chunking(self.chunk(cfg.chunking));
        let width = match reduce {
            Reduce::Token => t,
            Reduce::Coord => per,
        };
        let mut acc = vec![vec![0.0; width]; units.len()];
        let deltas: Vec<Vec<f64>> = baselines
            .iter()
            .map(|b| x.iter().zip(b).map(|(x, b)| x - b).collect())
            .collect();
        probe::run(&self.s, &req, &mut |_, _| {}, &mut |c| {
            let g = c.grad(0)?.to_vec_f64()?;
            for (i, k) in c.rows.clone().enumerate() {
                let (ui, a) = (k / n, k % n);
                let w = cfg.weights[a];
                if cfg.alphas[a] == 0.0 || w == 0.0 {
                    continue;
                }
                let dl = &deltas[units[ui].baseline];
                let gr = &g[i * per..(i + 1) * per];
                let out = &mut acc[ui];
                match reduce {
                    Reduce::Token => {
                        for (tok, o) in out.iter_mut().enumerate() {
                            let s: f64 = gr[tok * d..(tok + 1) * d]
                                .iter()
                                .zip(&dl[tok * d..(tok + 1) * d])
                                .map(|(g, dl)| g * dl)
                                .sum();
                            *o += w * s;
                        }
                    }
                    Reduce::Coord => {
                        for ((o, g), dl) in out.iter_mut().zip(gr).zip(dl) {
                            *o += w * g * dl;
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok((acc, rows))
    }

    /// The layer map z → z of layer `l` over every target (raw `zero` or `self_input_token`;
    /// `itb_zero_ratio` post-processes both).
    pub fn layer_map(
        &self,
        l: usize,
        baseline: LayerBaseline,
        cfg: &LigConfig,
    ) -> Result<TokenMap> {
        self.check_layer(l)?;
        match baseline {
            LayerBaseline::Zero => self.layer_raw(l, false, cfg),
            LayerBaseline::Itb => self.layer_raw(l, true, cfg),
            LayerBaseline::ItbZeroRatio => {
                let r = self.layer_raw(l, true, cfg)?;
                let q = self.layer_raw(l, false, cfg)?;
                Ok(ratio_map(r, &q, None))
            }
        }
    }

    fn layer_raw(&self, l: usize, itb: bool, cfg: &LigConfig) -> Result<TokenMap> {
        if !itb && !cfg.per_target {
            if let Some(b) = self.shared_structure(l) {
                return self.layer_shared(l, b, cfg);
            }
        }
        let (t, d) = (self.t, self.d);
        let (at, read) = (hook(l, Site::ResidPre), hook(l, Site::ResidPost));
        let baselines: Vec<Vec<f64>> = if itb {
            (0..t).map(|j| self.itb(l, j)).collect()
        } else {
            vec![vec![0.0; t * d]]
        };
        let units: Vec<Unit> = (0..t)
            .map(|j| Unit {
                baseline: if itb { j } else { 0 },
                slots: std::iter::once(j * d..(j + 1) * d).collect(),
            })
            .collect();
        let refs = self.at_baselines(at, read, &baselines, cfg.chunking)?;
        let (acc, rows) = self.pass(
            at,
            read,
            &self.z[l],
            &baselines,
            &refs,
            &units,
            Reduce::Token,
            cfg,
        )?;
        let targets: Vec<usize> = (0..t).collect();
        let norm = |u: &Unit| slot_norm(&self.z_next[l], &refs[u.baseline], &u.slots[0]);
        Ok(TokenMap {
            matrix: transpose(&acc, t),
            target_norm: units.iter().map(norm).collect(),
            targets,
            rows,
        })
    }

    /// The attention map z → u of layer `l`: one [`TokenMap`] per head, over `targets` (all
    /// tokens when empty).
    pub fn att_map(
        &self,
        l: usize,
        baseline: AttBaseline,
        targets: &[usize],
        cfg: &LigConfig,
    ) -> Result<Vec<TokenMap>> {
        self.check_layer(l)?;
        let targets = self.targets(targets)?;
        match baseline {
            AttBaseline::Zero => self.att_raw(l, false, &targets, cfg),
            AttBaseline::Itb => self.att_raw(l, true, &targets, cfg),
            AttBaseline::ItbZeroRatio => {
                let r = self.att_raw(l, true, &targets, cfg)?;
                let q = self.att_raw(l, false, &targets, cfg)?;
                Ok(r.into_iter()
                    .zip(&q)
                    .map(|(r, q)| ratio_map(r, q, None))
                    .collect())
            }
            AttBaseline::ItbMapRatio => {
                let r = self.att_raw(l, true, &targets, cfg)?;
                Ok(r.into_iter()
                    .enumerate()
                    .map(|(h, r)| {
                        let alpha: Vec<f64> =
                            (0..self.t).map(|j| self.self_attention(l, h, j)).collect();
                        let q = r.clone();
                        ratio_map(r, &q, Some(&alpha))
                    })
                    .collect())
            }
        }
    }

    fn att_raw(
        &self,
        l: usize,
        itb: bool,
        targets: &[usize],
        cfg: &LigConfig,
    ) -> Result<Vec<TokenMap>> {
        if !cfg.per_target {
            if let Some(b) = self.shared_structure(l) {
                if !itb || b.input == AttentionInput::Direct {
                    return self.att_shared(l, b, itb, targets, cfg);
                }
            }
        }
        let (t, d, nh, dh) = (self.t, self.d, self.heads, self.d_head);
        let (at, read) = (hook(l, Site::ResidPre), hook(l, Site::Z));
        let baselines: Vec<Vec<f64>> = if itb {
            targets.iter().map(|&j| self.itb(l, j)).collect()
        } else {
            vec![vec![0.0; t * d]]
        };
        // Units: (target, head), target-major.
        let mut units = Vec::with_capacity(targets.len() * nh);
        for (ti, &j) in targets.iter().enumerate() {
            for h in 0..nh {
                let s = (j * nh + h) * dh;
                units.push(Unit {
                    baseline: if itb { ti } else { 0 },
                    slots: std::iter::once(s..s + dh).collect(),
                });
            }
        }
        let refs = self.at_baselines(at, read, &baselines, cfg.chunking)?;
        let (acc, rows) = self.pass(
            at,
            read,
            &self.z[l],
            &baselines,
            &refs,
            &units,
            Reduce::Token,
            cfg,
        )?;
        Ok((0..nh)
            .map(|h| {
                let mut matrix = vec![vec![0.0; t]; t];
                let mut target_norm = Vec::with_capacity(targets.len());
                for (ti, &j) in targets.iter().enumerate() {
                    let u = ti * nh + h;
                    for (i, row) in matrix.iter_mut().enumerate() {
                        row[j] = acc[u][i];
                    }
                    let unit = &units[u];
                    target_norm.push(slot_norm(
                        &self.ctx[l],
                        &refs[unit.baseline],
                        &unit.slots[0],
                    ));
                }
                TokenMap {
                    matrix,
                    targets: targets.to_vec(),
                    target_norm,
                    rows,
                }
            })
            .collect())
    }

    /// The MLP baseline u′ of layer `l` (T·d).
    pub fn mlp_baseline(
        &self,
        l: usize,
        baseline: MlpBaseline,
        cfg: &LigConfig,
    ) -> Result<Vec<f64>> {
        self.check_layer(l)?;
        let (t, d) = (self.t, self.d);
        Ok(match baseline {
            MlpBaseline::Zero => vec![0.0; t * d],
            MlpBaseline::AttItbA0 => {
                let itb: Vec<Vec<f64>> = (0..t).map(|j| self.itb(l, j)).collect();
                let mid = self.at_baselines(
                    hook(l, Site::ResidPre),
                    hook(l, Site::ResidMid),
                    &itb,
                    cfg.chunking,
                )?;
                (0..t)
                    .flat_map(|j| mid[j][j * d..(j + 1) * d].to_vec())
                    .collect()
            }
        })
    }

    /// The MLP map u → z of layer `l` over `targets` (all tokens when empty): one row per path
    /// point carries every target (the MLP is token-wise).
    pub fn mlp_map(
        &self,
        l: usize,
        baseline: MlpBaseline,
        targets: &[usize],
        cfg: &LigConfig,
    ) -> Result<MlpMap> {
        let targets = self.targets(targets)?;
        let d = self.d;
        let (at, read) = (hook(l, Site::ResidMid), hook(l, Site::ResidPost));
        let base = self.mlp_baseline(l, baseline, cfg)?;
        let baselines = vec![base];
        let refs = self.at_baselines(at, read, &baselines, cfg.chunking)?;
        let units = vec![Unit {
            baseline: 0,
            slots: targets.iter().map(|&j| j * d..(j + 1) * d).collect(),
        }];
        let (acc, rows) = self.pass(
            at,
            read,
            &self.u[l],
            &baselines,
            &refs,
            &units,
            Reduce::Coord,
            cfg,
        )?;
        Ok(MlpMap {
            contributions: targets
                .iter()
                .map(|&j| acc[0][j * d..(j + 1) * d].to_vec())
                .collect(),
            target_norm: targets
                .iter()
                .map(|&j| slot_norm(&self.z_next[l], &refs[0], &(j * d..(j + 1) * d)))
                .collect(),
            targets,
            n_heads: self.heads,
            rows,
        })
    }
}

/// ‖a_s − b_s‖₂ on slot s.
/// Writes the unit residual `(y − r)/‖y − r‖` into `u` and returns `⟨r, u⟩`, so that
/// `⟨y, u⟩ − ⟨r, u⟩ = ‖y − r‖` with a constant `u`: the value is the norm, the gradient the
/// norm's. A zero residual leaves `u` at 0 and returns 0 (it contributes nothing).
fn unit_residual(y: &[f64], r: &[f64], u: &mut [f64]) -> f64 {
    let norm = y
        .iter()
        .zip(r)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    let mut c = 0.0;
    for ((o, a), b) in u.iter_mut().zip(y).zip(r) {
        let e = (a - b) / norm;
        *o = e;
        c += b * e;
    }
    c
}

fn slot_norm(a: &[f64], b: &[f64], s: &Range<usize>) -> f64 {
    a[s.clone()]
        .iter()
        .zip(&b[s.clone()])
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt()
}

/// `acc[j][i]` (per target, per source) → `m[i][j]`.
fn transpose(acc: &[Vec<f64>], t: usize) -> Vec<Vec<f64>> {
    (0..t).map(|i| acc.iter().map(|c| c[i]).collect()).collect()
}
