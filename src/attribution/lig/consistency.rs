//! The ITB ratio variants (LIG_SPEC §3), the composition of ATT and MLP maps, and the
//! consistency diagnostic between the direct layer map and the composed one (LIG_SPEC §4.2),
//! per sentence ([`diagnostic`]) and pooled over sentences ([`PairTable`]).

use super::{AttBaseline, LayerBaseline, Lig, LigConfig, MlpBaseline, MlpMap, TokenMap};
use crate::{Error, Result};

/// Applies [`itb_zero_ratio`] (`alpha` None, with q's columns) or [`itb_map_ratio`] (`alpha`
/// per target) to every computed column of the ITB map `r`.
pub(super) fn ratio_map(mut r: TokenMap, q: &TokenMap, alpha: Option<&[f64]>) -> TokenMap {
    let t = r.matrix.len();
    for &j in &r.targets.clone() {
        let col: Vec<f64> = (0..t).map(|i| r.matrix[i][j]).collect();
        let out = match alpha {
            None => {
                let qc: Vec<f64> = (0..t).map(|i| q.matrix[i][j]).collect();
                itb_zero_ratio(&col, &qc, j)
            }
            Some(a) => itb_map_ratio(&col, a[j], j),
        };
        for (i, v) in out.into_iter().enumerate() {
            r.matrix[i][j] = v;
        }
    }
    r.rows += if alpha.is_none() { q.rows } else { 0 };
    r
}

/// Sets the self term of column r to `s_hat` and rescales to keep the column total (the
/// package's `itb_self_contrib`).
fn set_self(r: &[f64], j: usize, s_hat: f64) -> Vec<f64> {
    let mut p = r.to_vec();
    p[j] = s_hat;
    let (sr, sp): (f64, f64) = (r.iter().sum(), p.iter().sum());
    let gamma = if sp.abs() <= 1e-8 { 1.0 } else { sr / sp };
    p.iter().map(|v| gamma * v).collect()
}

/// ITB-zeroRatio of one column: `ŝ = q_j · S_r / S_q` (0 if |S_q| ≤ 1e-8), p = r with p_j = ŝ,
/// rescaled to r's total (LIG_SPEC §3).
pub fn itb_zero_ratio(r: &[f64], q: &[f64], j: usize) -> Vec<f64> {
    let off = |v: &[f64]| -> f64 {
        v.iter()
            .enumerate()
            .filter(|(i, _)| *i != j)
            .map(|(_, x)| x)
            .sum()
    };
    let (sr, sq) = (off(r), off(q));
    let s_hat = if sq.abs() <= 1e-8 {
        0.0
    } else {
        q[j] * sr / sq
    };
    set_self(r, j, s_hat)
}

/// ITB-mapRatio of one column: `ŝ = S_r · α_jj / (1 − α_jj)` (0 if |1 − α_jj| ≤ 1e-8), then as
/// [`itb_zero_ratio`]: the self share becomes α_jj.
pub fn itb_map_ratio(r: &[f64], alpha_jj: f64, j: usize) -> Vec<f64> {
    let sr: f64 = r
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != j)
        .map(|(_, x)| x)
        .sum();
    let s_hat = if (1.0 - alpha_jj).abs() <= 1e-8 {
        0.0
    } else {
        sr * alpha_jj / (1.0 - alpha_jj)
    };
    set_self(r, j, s_hat)
}

/// The composed map `C[i][j] = Σ_h ATT[h][i][j] · MLP[j][h]` over the targets both computed.
/// `mlp_heads[t][h]` belongs to target `mlp_targets[t]`.
pub fn compose(att: &[TokenMap], mlp: &MlpMap) -> Result<Vec<Vec<f64>>> {
    let t = att.first().map_or(0, |a| a.matrix.len());
    if att.len() != mlp.n_heads {
        return Err(Error::Mismatch {
            what: "LIG composition".into(),
            detail: format!(
                "{} ATT heads and {} MLP head slices",
                att.len(),
                mlp.n_heads
            ),
        });
    }
    let mut c = vec![vec![0.0; t]; t];
    for (ti, &j) in mlp.targets.iter().enumerate() {
        if !att[0].targets.contains(&j) {
            continue;
        }
        let w = mlp.per_head(ti);
        for (h, a) in att.iter().enumerate() {
            for (i, row) in c.iter_mut().enumerate() {
                row[j] += a.matrix[i][j] * w[h];
            }
        }
    }
    Ok(c)
}

/// The L2 / Pearson consistency diagnostic between a direct and a composed map, column by
/// column over `columns` (columns whose direct values are all 0 are skipped, as the package
/// does). Both maps must be over the same tokens (sub-words, or words aggregated alike).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    /// Per column of `columns`: `‖D[:,j] − C[:,j]‖₂` (None where skipped).
    pub l2: Vec<Option<f64>>,
    /// Per column: `Pearson(D[:,j], C[:,j])` (NaN → 1 if the columns are all-close, else 0).
    pub pearson: Vec<Option<f64>>,
    pub l2_mean: f64,
    pub l2_std: f64,
    pub pearson_mean: f64,
    pub pearson_std: f64,
    pub n_columns: usize,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// Pearson correlation with numpy's NaN rule of the package (1 if all-close, else 0).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (ma, _) = mean_std(a);
    let (mb, _) = mean_std(b);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    let r = sab / (saa * sbb).sqrt();
    if r.is_finite() {
        r
    } else if a
        .iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() <= 1e-8 + 1e-5 * y.abs())
    {
        1.0
    } else {
        0.0
    }
}

/// Per-column diagnostic of `direct` against `composed` on `columns`.
pub fn diagnostic(direct: &[Vec<f64>], composed: &[Vec<f64>], columns: &[usize]) -> Diagnostic {
    let t = direct.len();
    let mut l2 = Vec::with_capacity(columns.len());
    let mut pr = Vec::with_capacity(columns.len());
    for &j in columns {
        let d: Vec<f64> = (0..t).map(|i| direct[i][j]).collect();
        let c: Vec<f64> = (0..t).map(|i| composed[i][j]).collect();
        if d.iter().all(|v| *v == 0.0) {
            l2.push(None);
            pr.push(None);
            continue;
        }
        l2.push(Some(
            d.iter()
                .zip(&c)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt(),
        ));
        pr.push(Some(pearson(&d, &c)));
    }
    let l2v: Vec<f64> = l2.iter().flatten().copied().collect();
    let prv: Vec<f64> = pr.iter().flatten().copied().collect();
    let (l2_mean, l2_std) = mean_std(&l2v);
    let (pearson_mean, pearson_std) = mean_std(&prv);
    Diagnostic {
        n_columns: l2v.len(),
        l2,
        pearson: pr,
        l2_mean,
        l2_std,
        pearson_mean,
        pearson_std,
    }
}

/// Sums a T×T map into words: `W[a][b] = Σ_{i ∈ a} Σ_{j ∈ b} M[i][j]` with `groups[a]` the
/// token indices of word a (the same grouping on both axes, so no positional misalignment).
pub fn words_map(m: &[Vec<f64>], groups: &[Vec<usize>]) -> Vec<Vec<f64>> {
    groups
        .iter()
        .map(|ga| {
            groups
                .iter()
                .map(|gb| {
                    ga.iter()
                        .map(|&i| gb.iter().map(|&j| m[i][j]).sum::<f64>())
                        .sum()
                })
                .collect()
        })
        .collect()
}

/// One (direct layer baseline, ATT baseline, MLP baseline) pair of the paper's consistency
/// table (LIG_SPEC §4.2): the per-column L2 distances and Pearson correlations between the
/// direct layer map and the composed ATT × MLP map, pooled over layers and sentences.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairStats {
    pub layer: &'static str,
    pub att: &'static str,
    pub mlp: &'static str,
    pub l2_mean: f64,
    pub l2_std: f64,
    pub corr_mean: f64,
    pub corr_std: f64,
    /// (sentence, layer, column) triples kept.
    pub n_pairs: usize,
    pub n_samples: usize,
}

/// Accumulates the 24 pairs (3 layer × 4 ATT × 2 MLP baselines) over sentences.
#[derive(Debug, Clone, Default)]
pub struct PairTable {
    /// Per pair: the L2 and Pearson values of every kept column, and the sentences seen.
    acc: Vec<(Vec<f64>, Vec<f64>)>,
    samples: usize,
}

const LAYER_PAIRS: [LayerBaseline; 3] = [
    LayerBaseline::Zero,
    LayerBaseline::Itb,
    LayerBaseline::ItbZeroRatio,
];
const ATT_PAIRS: [AttBaseline; 4] = [
    AttBaseline::Zero,
    AttBaseline::Itb,
    AttBaseline::ItbMapRatio,
    AttBaseline::ItbZeroRatio,
];
const MLP_PAIRS: [MlpBaseline; 2] = [MlpBaseline::Zero, MlpBaseline::AttItbA0];

impl PairTable {
    pub fn new() -> PairTable {
        PairTable {
            acc: vec![(Vec::new(), Vec::new()); 24],
            samples: 0,
        }
    }

    /// Adds one sentence: every layer of `layers`, every target column, on its sub-word tokens
    /// (direct and composed maps over the same tokens). Runs the raw zero and ITB maps once
    /// each and derives the ratio variants from them.
    pub fn add(&mut self, lig: &Lig, layers: &[usize], cfg: &LigConfig) -> Result<()> {
        let t = lig.n_tokens();
        let all: Vec<usize> = (0..t).collect();
        for &l in layers {
            lig.check_layer(l)?;
            let lz = lig.layer_raw(l, false, cfg)?;
            let li = lig.layer_raw(l, true, cfg)?;
            let lr = ratio_map(li.clone(), &lz, None);
            let directs = [lz.matrix, li.matrix, lr.matrix];
            let az = lig.att_raw(l, false, &all, cfg)?;
            let ai = lig.att_raw(l, true, &all, cfg)?;
            let amap: Vec<TokenMap> = ai
                .iter()
                .enumerate()
                .map(|(h, r)| {
                    let alpha: Vec<f64> = (0..t).map(|j| lig.self_attention(l, h, j)).collect();
                    ratio_map(r.clone(), r, Some(&alpha))
                })
                .collect();
            let azr: Vec<TokenMap> = ai
                .iter()
                .zip(&az)
                .map(|(r, q)| ratio_map(r.clone(), q, None))
                .collect();
            let atts = [az, ai, amap, azr];
            let mlps = [
                lig.mlp_map(l, MlpBaseline::Zero, &all, cfg)?,
                lig.mlp_map(l, MlpBaseline::AttItbA0, &all, cfg)?,
            ];
            let mut k = 0;
            for d in &directs {
                for a in &atts {
                    for m in &mlps {
                        let c = compose(a, m)?;
                        let g = diagnostic(d, &c, &all);
                        self.acc[k].0.extend(g.l2.iter().flatten());
                        self.acc[k].1.extend(g.pearson.iter().flatten());
                        k += 1;
                    }
                }
            }
        }
        self.samples += 1;
        Ok(())
    }

    /// The 24 rows, layer-direct baseline major.
    pub fn rows(&self) -> Vec<PairStats> {
        let mut out = Vec::with_capacity(24);
        let mut k = 0;
        for lb in LAYER_PAIRS {
            for ab in ATT_PAIRS {
                for mb in MLP_PAIRS {
                    let (l2, pr) = &self.acc[k];
                    let (l2_mean, l2_std) = mean_std(l2);
                    let (corr_mean, corr_std) = mean_std(pr);
                    out.push(PairStats {
                        layer: lb.name(),
                        att: ab.name(),
                        mlp: mb.name(),
                        l2_mean,
                        l2_std,
                        corr_mean,
                        corr_std,
                        n_pairs: l2.len(),
                        n_samples: self.samples,
                    });
                    k += 1;
                }
            }
        }
        out
    }
}
