//! The z → z layer map for a baseline that does not depend on the target (`zero`), with
//! **every target from one forward per path point**, and the z → u attention maps from the
//! block's forwards alone (last section), for every model that reports its blocks'
//! attention structure ([`crate::models::Model::block_attention`]: BERT, RoBERTa, DistilBERT,
//! GPT-2, Llama, Mistral, Qwen2, GGUF Llama). Other models keep the per-target path.
//!
//! The per-target path ([`Lig::pass`]) runs T targets × n path points as rows, each a forward and
//! a backward of the block. With the zero baseline the path points Y(α) = αZ are the same for
//! every target, and the block's structure lets one forward and one backward per point serve all
//! T targets exactly. Write the block as `post(Y, O)` with `O = AttnMix(P(Y))`, P the row-local
//! pre part (post-LN: the q/k/v projections; pre-LN: norm N₁, then the projections, then RoPE on
//! q and k where the model rotates):
//!
//! - `post` (output projection, residual, norms, MLP) is **row-local**: output row j depends
//!   only on `Y_j` and `O_j`. So one backward of `Σ_j g_j` with `attn.hook_z` replaced by its
//!   own value (a separate leaf, so the attention path is cut) gives, at row j, target j's own
//!   gradients `dY_j` (the direct path) and `dO_j`.
//! - **Tangents of P** along source i's direction `Δz_i = z_i` at `Y_i = αz_i`: the zero
//!   baseline's path is a ray, so the tangent is `d/dα P(αz_i)`. The projections and RoPE are
//!   affine per row and the norms have a closed form along a ray: with `v_i` the variance of
//!   `z_i` (LayerNorm) or its mean square (RMSNorm), `N(αz_i) = c + γ⊙α·x̃_i/√(α²v_i + ε)`
//!   (`x̃_i = z_i − mean` or `z_i`), hence
//!   `d/dα P(αz_i) = f_i(α)·(P(z)_i − P(0)_i)` with `f_i(α) = ε·√(v_i + ε)/(α²v_i + ε)^{3/2}`
//!   (and `f = 1` with no norm). `P(z) − P(0)` comes from two forwards (q, k after RoPE, v).
//!   This is the exact JVP, without the cancellation autodiff meets in
//!   `ẋ − x̂·mean(x̂⊙ẋ)` when `ẋ ∥ x`.
//! - Only the attention mixes rows. Target j's gradient reaches source i through the softmax row
//!   j and through `v_i`: with `dA_h[j,i] = dO_{j,h}·v_{i,h}` (query head h reads kv head
//!   `h / (H / H_kv)`), `dS_h[j,i] = A_h[j,i](dA_h[j,i] − Σ_k A_h[j,k] dA_h[j,k])`, `s = 1/√d_head`
//!   and the tangents `t·_i = f_i(α)(P(z)_i − P(0)_i)`,
//!
//!   `M[i][j] += w·Σ_h ( s·dS_h[j,i]·(tk_{i,h}·q_{j,h}) + A_h[j,i]·(tv_{i,h}·dO_{j,h}) )`, and on
//!   the diagonal `M[j][j] += w·( Σ_h s·tq_{j,h}·Σ_k dS_h[j,k] k_{k,h} + Δz_j·dY_j )`.
//!
//!   A causal mask makes `A_h[j,i] = 0` and so `dS_h[j,i] = 0` for i > j: those entries stay
//!   exactly 0.
//!
//! That is the chain rule of the per-target backward, term by term, so the map equals the
//! per-target path's to rounding (`tests/lig_fast.rs`, f64, every family's fixture). A layer
//! costs, per path point, one forward (the values) and one forward + backward of `post` (the
//! gradients), plus three forwards (the reference at the baseline, P at Z and at 0), and
//! O(T²·d) arithmetic for the contraction, instead of T forwards and backwards per point.
//! α = 0 and zero-weight points are skipped, as the per-target path gives them 0.
//!
//! **The attention maps z → u** ([`Lig::att_shared`]) read head h's slot of `attn.hook_z` row j,
//! so the gradient there is the unit residual `U_{j,h}` itself and the same terms (through k_i,
//! v_i and, on the diagonal, q_j) with `dO_{j,h} = U_{j,h}` give every source's contribution:
//! no backward at all, one forward of the block per path point for the zero baseline (every
//! target and head), and one per target and point for ITB, whose path `z′_j + α(z − z′_j)` is not
//! a ray from 0, so its tangent `P(z) − P(z′_j)` is constant only where q/k/v are affine in the
//! residual stream (post-LN encoders); pre-LN models keep the per-target ITB path. The
//! per-target path runs T · heads units × n points, a forward and a backward each
//! (`tests/lig_fast.rs` compares the two in f64 on every family).

use super::{hook, slot_norm, unit_residual, Lig, LigConfig, TokenMap};
use crate::attribution::probe::{self, Capture, Objective, Request, RowSpec, Rows};
use crate::models::{AttentionInput, BlockAttention, HookName, Site};
use crate::{Error, Result, Tensor, Var};
use std::ops::Range;

/// One path point's block internals (f64, one row).
struct Point {
    /// `[t, heads, d_head]`
    q: Vec<f64>,
    /// `[t, kv_heads, d_head]`
    k: Vec<f64>,
    v: Vec<f64>,
    /// `[heads, t, t]`
    pattern: Vec<f64>,
    /// `attn.hook_z`, `[t, heads, d_head]`
    z: Vec<f64>,
}

impl Lig<'_> {
    /// The structure of layer `l` when [`Lig::layer_shared`] serves it: the model reports it
    /// ([`crate::models::Model::block_attention`]) and its kv heads divide the heads.
    pub(super) fn shared_structure(&self, l: usize) -> Option<BlockAttention> {
        self.s
            .model
            .block_attention(l)
            .filter(|b| b.n_kv_heads > 0 && self.heads.is_multiple_of(b.n_kv_heads))
    }

    /// The values of `sites` of layer `l` at each of `rows` (each a `t × d` residual stream
    /// entering the block), one forward of the block per row.
    fn block_values(
        &self,
        l: usize,
        rows: &[Vec<f64>],
        sites: &[Site],
        cfg: &LigConfig,
    ) -> Result<Vec<Vec<Vec<f64>>>> {
        let reads: Vec<HookName> = sites.iter().map(|&site| hook(l, site)).collect();
        self.values_at(hook(l, Site::ResidPre), rows, &reads, cfg.chunking)
    }

    /// The path points that contribute, as (α, weight) (α = 0 contributes 0 by convention, and
    /// zero-weight points nothing), and how many of them one chunk takes.
    fn points(&self, cfg: &LigConfig) -> (Vec<(f64, f64)>, usize) {
        let pts: Vec<(f64, f64)> = cfg
            .alphas
            .iter()
            .zip(&cfg.weights)
            .filter(|(a, w)| **a != 0.0 && **w != 0.0)
            .map(|(a, w)| (*a, *w))
            .collect();
        let per = match self.chunk(cfg.chunking) {
            probe::Chunking::Rows(r) => r.max(1),
            _ => pts.len().max(1),
        };
        (pts, per)
    }

    /// The zero-baseline z → z map of layer `l`, every target from one forward per path point
    /// (see the module documentation). Callers check [`Lig::shared_applies`].
    pub(super) fn layer_shared(
        &self,
        l: usize,
        b: BlockAttention,
        cfg: &LigConfig,
    ) -> Result<TokenMap> {
        let (t, d, heads, dh) = (self.t, self.d, self.heads, self.d_head);
        let z = &self.z[l];
        let zero = vec![0.0; t * d];
        let (at, read, site_z) = (
            hook(l, Site::ResidPre),
            hook(l, Site::ResidPost),
            hook(l, Site::Z),
        );
        let refs = self.at_baselines(at, read, std::slice::from_ref(&zero), cfg.chunking)?;
        let r0 = &refs[0];
        // q and k as the scores read them (rotated where the model rotates)
        let (site_q, site_k) = if b.rotary {
            (Site::RotQ, Site::RotK)
        } else {
            (Site::Q, Site::K)
        };
        // the tangents' directions (module documentation): P(Z) − P(0) per row, for q, k, v
        let ends = self.block_values(l, &[z.clone(), zero], &[site_q, site_k, Site::V], cfg)?;
        let diff = |s: usize| -> Vec<f64> {
            ends[0][s]
                .iter()
                .zip(&ends[1][s])
                .map(|(a, b)| a - b)
                .collect()
        };
        let (tq, tk, tv) = (diff(0), diff(1), diff(2));
        let kv = b.n_kv_heads;
        if tk.len() != t * kv * dh || tq.len() != t * heads * dh {
            return Err(Error::Mismatch {
                what: "LIG shared layer map".into(),
                detail: format!(
                    "q/k of {} and {} values for {t} tokens, {heads} heads, {kv} kv heads of {dh}",
                    tq.len(),
                    tk.len()
                ),
            });
        }
        let input = Input::new(b.input, z, t, d);
        let group = (heads / kv.max(1)).max(1);
        let scale = 1.0 / (dh as f64).sqrt();
        let (pts, per) = self.points(cfg);
        let mut m = vec![vec![0.0; t]; t];
        let mut rows = 3;
        let (dtype, device) = (self.s.model.dtype(), self.s.model.device());
        for group_pts in pts.chunks(per) {
            let ys = path_rows(None, z, group_pts);
            let sites = [site_q, site_k, Site::V, Site::Pattern, Site::Z];
            let vals = self.block_values(l, &ys, &sites, cfg)?;
            let points: Vec<Point> = vals
                .into_iter()
                .map(|mut v| Point {
                    z: v.pop().unwrap_or_default(),
                    pattern: v.pop().unwrap_or_default(),
                    v: v.pop().unwrap_or_default(),
                    k: v.pop().unwrap_or_default(),
                    q: v.pop().unwrap_or_default(),
                })
                .collect();
            // one backward of Σ_j g_j with the attention output its own leaf: target j's dY_j
            // (direct path) and dO_j at row j
            let specs: Vec<RowSpec> = ys
                .iter()
                .zip(&points)
                .map(|(y, p)| {
                    Ok(RowSpec::new()
                        .replace(at, Tensor::from_f64_on(y, &[t, d], dtype, device)?)
                        .replace(
                            site_z,
                            Tensor::from_f64_on(&p.z, &[t, heads, dh], dtype, device)?,
                        ))
                })
                .collect::<Result<_>>()?;
            let reads = [read];
            let eval = |fw: &probe::Forward| -> Result<Var> {
                let y = fw.boundary(read)?;
                let nr = fw.rows().len();
                let yv = y.value().to_vec_f64()?;
                let mut u = vec![0.0; nr * t * d];
                let mut c = vec![0.0; nr];
                for (i, ci) in c.iter_mut().enumerate() {
                    for j in 0..t {
                        let s = i * t * d + j * d;
                        *ci +=
                            unit_residual(&yv[s..s + d], &r0[j * d..(j + 1) * d], &mut u[s..s + d]);
                    }
                }
                let u = Tensor::from_f64_on(&u, &[nr, t * d], dtype, device)?;
                let c = Tensor::from_f64_on(&c, &[nr], dtype, device)?;
                y.reshape(&[nr, t * d])?
                    .mul(&Var::constant(u))?
                    .sum(&[1], false)?
                    .sub(&Var::constant(c))
            };
            let req = Request::new(
                Rows::Specs(&specs),
                Objective::Custom {
                    reads: &reads,
                    model_output: false,
                    eval: &eval,
                },
            )
            .capture(Capture::grad(at))
            .capture(Capture::grad(site_z))
            .chunking(probe::Chunking::Rows(specs.len()));
            let mut grads: Vec<(Vec<f64>, Vec<f64>)> = Vec::with_capacity(specs.len());
            probe::run(&self.s, &req, &mut |_, _| {}, &mut |c| {
                let (gy, go) = (c.grad(0)?.to_vec_f64()?, c.grad(1)?.to_vec_f64()?);
                let n = c.rows.len();
                let (wy, wo) = (gy.len() / n, go.len() / n);
                for r in 0..n {
                    grads.push((
                        gy[r * wy..(r + 1) * wy].to_vec(),
                        go[r * wo..(r + 1) * wo].to_vec(),
                    ));
                }
                Ok(())
            })?;
            rows += 2 * specs.len();
            for ((&(a, w), p), (dy, d_o)) in group_pts.iter().zip(&points).zip(&grads) {
                contract(
                    &mut m,
                    w,
                    &input.factors(a),
                    p,
                    dy,
                    d_o,
                    [&tq, &tk, &tv],
                    z,
                    Dims {
                        t,
                        d,
                        heads,
                        kv,
                        group,
                        dh,
                        scale,
                    },
                );
            }
        }
        let targets: Vec<usize> = (0..t).collect();
        let target_norm = targets
            .iter()
            .map(|&j| slot_norm(&self.z_next[l], r0, &(j * d..(j + 1) * d)))
            .collect();
        Ok(TokenMap {
            matrix: m,
            targets,
            target_norm,
            rows,
        })
    }
}

impl Lig<'_> {
    /// The z → u map of layer `l` (one [`TokenMap`] per head, columns `targets`) from forwards
    /// of the block alone: one per path point for the zero baseline (every target and head
    /// share it), one per target and point for ITB (`itb`, models whose attention reads the
    /// residual stream directly, where the tangent `P(z) − P(z′)` is constant along the path).
    /// The read is head h's slot of `attn.hook_z` row j, so its gradient is the unit residual
    /// there and no backward is needed: the terms are those of [`head_column`] (module
    /// documentation), α = 0 and zero-weight points skipped as in the per-target path.
    pub(super) fn att_shared(
        &self,
        l: usize,
        b: BlockAttention,
        itb: bool,
        targets: &[usize],
        cfg: &LigConfig,
    ) -> Result<Vec<TokenMap>> {
        let (t, d, heads, dh) = (self.t, self.d, self.heads, self.d_head);
        let kv = b.n_kv_heads;
        let z = &self.z[l];
        let (site_q, site_k) = if b.rotary {
            (Site::RotQ, Site::RotK)
        } else {
            (Site::Q, Site::K)
        };
        // ITB's tangents are constant only when q/k/v are affine in the residual stream
        let input = if itb { AttentionInput::Direct } else { b.input };
        // Z, then each baseline; their q, k, v and hook_z give the tangents' directions and the
        // references of the norms
        let mut ends_in = vec![z.clone()];
        if itb {
            ends_in.extend(targets.iter().map(|&j| self.itb(l, j)));
        } else {
            ends_in.push(vec![0.0; t * d]);
        }
        let baselines = &ends_in[1..];
        let ends = self.block_values(l, &ends_in, &[site_q, site_k, Site::V, Site::Z], cfg)?;
        let (nq, nk) = (ends[0][0].len(), ends[0][1].len());
        if nk != t * kv * dh || nq != t * heads * dh {
            return Err(Error::Mismatch {
                what: "LIG shared attention map".into(),
                detail: format!(
                    "q/k of {nq} and {nk} values for {t} tokens, {heads} heads, {kv} kv heads of {dh}"
                ),
            });
        }
        let dims = Dims {
            t,
            d,
            heads,
            kv,
            group: (heads / kv.max(1)).max(1),
            dh,
            scale: 1.0 / (dh as f64).sqrt(),
        };
        let (pts, per) = self.points(cfg);
        let factors = Input::new(input, z, t, d);
        let mut maps = vec![vec![vec![0.0; t]; t]; heads];
        let mut norms = vec![vec![0.0; targets.len()]; heads];
        let mut rows = ends_in.len();
        let mut scratch = Scratch::new(dims);
        let mut u = vec![0.0; dh];
        for (bi, base) in baselines.iter().enumerate() {
            let (at_z, at_b) = (&ends[0], &ends[bi + 1]);
            let diff = |s: usize| -> Vec<f64> {
                at_z[s].iter().zip(&at_b[s]).map(|(a, b)| a - b).collect()
            };
            let (tq, tk, tv) = (diff(0), diff(1), diff(2));
            let reference = &at_b[3];
            // (index into targets, token) of the columns this baseline serves
            let cols: Vec<(usize, usize)> = if itb {
                vec![(bi, targets[bi])]
            } else {
                targets.iter().copied().enumerate().collect()
            };
            for &(ti, j) in &cols {
                for (h, n) in norms.iter_mut().enumerate() {
                    n[ti] = slot_norm(&self.ctx[l], reference, &dims.qi(j, h));
                }
            }
            for group_pts in pts.chunks(per) {
                let ys = path_rows(Some(base), z, group_pts);
                let sites = [site_q, site_k, Site::V, Site::Pattern, Site::Z];
                let vals = self.block_values(l, &ys, &sites, cfg)?;
                rows += ys.len();
                for (&(a, w), mut v) in group_pts.iter().zip(vals) {
                    let p = Point {
                        z: v.pop().unwrap_or_default(),
                        pattern: v.pop().unwrap_or_default(),
                        v: v.pop().unwrap_or_default(),
                        k: v.pop().unwrap_or_default(),
                        q: v.pop().unwrap_or_default(),
                    };
                    let f = factors.factors(a);
                    for &(_, j) in &cols {
                        for (h, m) in maps.iter_mut().enumerate() {
                            let slot = dims.qi(j, h);
                            unit_residual(&p.z[slot.clone()], &reference[slot], &mut u);
                            head_column(
                                m,
                                j,
                                h,
                                w,
                                &f,
                                &p,
                                &u,
                                [&tq, &tk, &tv],
                                dims,
                                &mut scratch,
                            );
                        }
                    }
                }
            }
        }
        Ok(maps
            .into_iter()
            .zip(norms)
            .map(|(matrix, target_norm)| TokenMap {
                matrix,
                targets: targets.to_vec(),
                target_norm,
                rows,
            })
            .collect())
    }
}

/// The attention input's tangent scale per token: the tangent of q, k and v of row i at
/// Y_i = α z_i along Δz_i = z_i is `f_i(α)·(P(z)_i − P(0)_i)` (module documentation).
struct Input {
    t: usize,
    /// `None`: affine input (f = 1); else (ε, v_i per token).
    norm: Option<(f64, Vec<f64>)>,
}

impl Input {
    fn new(input: AttentionInput, z: &[f64], t: usize, d: usize) -> Input {
        let rows = || z.chunks(d.max(1)).take(t);
        let mean = |r: &[f64]| r.iter().sum::<f64>() / d as f64;
        let norm = match input {
            AttentionInput::Direct => None,
            AttentionInput::LayerNorm { eps } => Some((
                eps,
                rows()
                    .map(|r| {
                        let mu = mean(r);
                        r.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / d as f64
                    })
                    .collect(),
            )),
            AttentionInput::RmsNorm { eps } => Some((
                eps,
                rows()
                    .map(|r| r.iter().map(|x| x * x).sum::<f64>() / d as f64)
                    .collect(),
            )),
        };
        Input { t, norm }
    }

    /// `f_i(α) = ε·√(v_i + ε) / (α²v_i + ε)^{3/2}` per token (1 without a norm).
    fn factors(&self, a: f64) -> Vec<f64> {
        match &self.norm {
            None => vec![1.0; self.t],
            Some((eps, v)) => v
                .iter()
                .map(|v| eps * (v + eps).sqrt() / (a * a * v + eps).powf(1.5))
                .collect(),
        }
    }
}

#[derive(Clone, Copy)]
struct Dims {
    t: usize,
    d: usize,
    heads: usize,
    kv: usize,
    group: usize,
    dh: usize,
    scale: f64,
}

/// The block inputs at the path points `pts` (α, weight): `base + α(z − base)`, `αz` without a
/// base, and `z` itself at α = 1.
fn path_rows(base: Option<&[f64]>, z: &[f64], pts: &[(f64, f64)]) -> Vec<Vec<f64>> {
    pts.iter()
        .map(|&(a, _)| match base {
            _ if a == 1.0 => z.to_vec(),
            None => z.iter().map(|x| a * x).collect(),
            Some(base) => base.iter().zip(z).map(|(b, x)| b + a * (x - b)).collect(),
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Adds one path point's contributions (weight `w`) to every column of `m`: the attention terms
/// through the softmax and v of every source, the q term and the direct residual term on the
/// diagonal (module documentation).
#[allow(clippy::too_many_arguments)]
fn contract(
    m: &mut [Vec<f64>],
    w: f64,
    f: &[f64],
    p: &Point,
    dy: &[f64],
    d_o: &[f64],
    tangents: [&Vec<f64>; 3],
    dz: &[f64],
    n: Dims,
) {
    let mut scratch = Scratch::new(n);
    for h in 0..n.heads {
        for j in 0..n.t {
            let o_j = &d_o[n.qi(j, h)];
            head_column(m, j, h, w, f, p, o_j, tangents, n, &mut scratch);
        }
    }
    let d = n.d;
    for j in 0..n.t {
        m[j][j] += w * dot(&dz[j * d..(j + 1) * d], &dy[j * d..(j + 1) * d]);
    }
}

/// Work buffers of [`head_column`].
struct Scratch {
    da: Vec<f64>,
    ds: Vec<f64>,
    kq: Vec<f64>,
}

impl Scratch {
    fn new(n: Dims) -> Scratch {
        Scratch {
            da: vec![0.0; n.t],
            ds: vec![0.0; n.t],
            kq: vec![0.0; n.dh],
        }
    }
}

impl Dims {
    /// Query head h of token i in `[t, heads, d_head]`.
    fn qi(&self, i: usize, h: usize) -> Range<usize> {
        (i * self.heads + h) * self.dh..(i * self.heads + h + 1) * self.dh
    }
    /// Key/value head g of token i in `[t, kv_heads, d_head]`.
    fn ki(&self, i: usize, g: usize) -> Range<usize> {
        (i * self.kv + g) * self.dh..(i * self.kv + g + 1) * self.dh
    }
}

/// Column j of head h at one path point (weight `w`, tangent scales `f`), given the gradient
/// `o_j` at head h's slot of `attn.hook_z` row j: every source i's terms through the softmax
/// row j (via k_i) and through v_i, and on the diagonal the term through q_j (module
/// documentation).
#[allow(clippy::too_many_arguments)]
fn head_column(
    m: &mut [Vec<f64>],
    j: usize,
    h: usize,
    w: f64,
    f: &[f64],
    p: &Point,
    o_j: &[f64],
    [tq, tk, tv]: [&Vec<f64>; 3],
    n: Dims,
    s: &mut Scratch,
) {
    let (t, g) = (n.t, h / n.group);
    let q_j = &p.q[n.qi(j, h)];
    let a_row = &p.pattern[(h * t + j) * t..(h * t + j + 1) * t];
    for (i, x) in s.da.iter_mut().enumerate() {
        *x = dot(o_j, &p.v[n.ki(i, g)]);
    }
    let sdot = dot(a_row, &s.da);
    for ((x, a), dai) in s.ds.iter_mut().zip(a_row).zip(&s.da) {
        *x = a * (dai - sdot);
    }
    s.kq.iter_mut().for_each(|x| *x = 0.0);
    for i in 0..t {
        let through_k = n.scale * s.ds[i] * dot(&tk[n.ki(i, g)], q_j);
        let through_v = a_row[i] * dot(&tv[n.ki(i, g)], o_j);
        m[i][j] += w * f[i] * (through_k + through_v);
        for (acc, kk) in s.kq.iter_mut().zip(&p.k[n.ki(i, g)]) {
            *acc += s.ds[i] * kk;
        }
    }
    m[j][j] += w * f[j] * n.scale * dot(&tq[n.qi(j, h)], &s.kq);
}
