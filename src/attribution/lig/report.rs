//! A whole LIG run over a sentence (the maps of every requested layer, the composition and the
//! diagnostic) as a serialisable report in the package's `explain()` schema (LIG_SPEC §5.3) plus
//! gradpath's additions: per-column completeness, the composed map, the diagnostic, the path
//! points used. `docs/LIG.md` documents every field.

use super::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Which maps to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularity {
    pub att: bool,
    pub mlp: bool,
    pub layer: bool,
}

impl Granularity {
    /// `all`, or a comma-separated list of `att`, `mlp`, `layer`.
    pub fn parse(s: &str) -> Result<Granularity> {
        let mut g = Granularity {
            att: false,
            mlp: false,
            layer: false,
        };
        for part in s.split(',').map(str::trim) {
            match part {
                "all" => {
                    g = Granularity {
                        att: true,
                        mlp: true,
                        layer: true,
                    }
                }
                "att" => g.att = true,
                "mlp" => g.mlp = true,
                "layer" => g.layer = true,
                _ => return unknown("granularity", part, &["all", "att", "mlp", "layer"]),
            }
        }
        Ok(g)
    }
    /// The package's list form (`["att", "mlp", "layer"]`).
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.att {
            v.push("att");
        }
        if self.mlp {
            v.push("mlp");
        }
        if self.layer {
            v.push("layer");
        }
        v
    }
}

/// Options of a LIG run.
#[derive(Debug, Clone, PartialEq)]
pub struct LigOptions {
    pub granularity: Granularity,
    /// Layers (all when `None`).
    pub layers: Option<Vec<usize>>,
    /// Target tokens of the ATT and MLP maps (all when `None`); the layer map is always full.
    pub target_tokens: Option<Vec<usize>>,
    pub baseline_att: AttBaseline,
    pub baseline_mlp: MlpBaseline,
    pub baseline_layer: LayerBaseline,
    pub rule: Rule,
    pub steps: usize,
    /// Double the points of a map (per layer) until every column's relative completeness delta
    /// is below this, up to `max_points`.
    pub tolerance: Option<f64>,
    pub max_points: usize,
    /// Token indices of each word (for the word-level maps and diagnostic), if wanted.
    pub words: Option<Vec<Vec<usize>>>,
    pub chunking: Chunking,
    /// Run the zero-baseline layer map and the attention maps unit by unit
    /// ([`LigConfig::per_target`]: the reference path, same maps to rounding, many times the
    /// rows).
    pub per_target: bool,
}

impl LigOptions {
    /// The package's defaults: all maps, ITB for ATT and layer, zero for the MLP, 32 points.
    pub fn new(rule: Rule, steps: usize) -> LigOptions {
        LigOptions {
            granularity: Granularity {
                att: true,
                mlp: true,
                layer: true,
            },
            layers: None,
            target_tokens: None,
            baseline_att: AttBaseline::Itb,
            baseline_mlp: MlpBaseline::Zero,
            baseline_layer: LayerBaseline::Itb,
            rule,
            steps,
            tolerance: None,
            max_points: 1024,
            words: None,
            chunking: Chunking::Budget(LIG_BUDGET),
            per_target: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LigReport {
    pub text: String,
    pub tokens: Vec<String>,
    pub model: String,
    pub model_type: String,
    /// `encoder` or `decoder`.
    pub architecture: &'static str,
    pub config: ReportConfig,
    pub layers: BTreeMap<String, LayerReport>,
    /// Words (when `--words`): the token indices of each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<Vec<usize>>>,
    /// Model rows (target × path point) run, over all maps.
    pub rows: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportConfig {
    pub num_steps: usize,
    pub granularity: Vec<&'static str>,
    pub baseline_att: &'static str,
    pub baseline_mlp: &'static str,
    pub baseline_layer: &'static str,
    pub layers: Vec<usize>,
    pub target_tokens: Vec<usize>,
    pub target_head: Option<usize>,
    pub include_residual_connection: bool,
    /// gradpath: the quadrature rule, the dtype and the tolerance.
    pub method: &'static str,
    pub dtype: String,
    pub tolerance: Option<f64>,
}

/// Completeness of one column (or one MLP target).
#[derive(Debug, Clone, Serialize)]
pub struct Completeness {
    /// Σ of the contributions.
    pub sum: f64,
    /// g_j(X) = ‖F_j(X) − F_j(X′)‖₂, what an exact integral sums to.
    pub target_norm: f64,
    /// sum − target_norm.
    pub delta: f64,
    pub relative_delta: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub layer_idx: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z2z: Option<Z2z>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<BTreeMap<String, TargetReport>>,
    /// gradpath: `C[i][j] = Σ_h ATT[h][i][j] · MLP[j][h]` (att and mlp requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composition: Option<Composition>,
    /// gradpath: word-level maps (`--words`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<WordMaps>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Z2z {
    pub baseline: &'static str,
    pub description: &'static str,
    pub shape: [usize; 2],
    /// matrix[i][j]: source i → target j.
    pub matrix: Vec<Vec<f64>>,
    pub token_to_token: Vec<TokenToToken>,
    /// gradpath: completeness per target column j (0..T).
    pub completeness: Vec<Completeness>,
    pub max_relative_delta: f64,
    /// gradpath: path points per target and rows run.
    pub points: usize,
    pub rows: usize,
    pub converged: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenToToken {
    pub target_token_idx: usize,
    pub target_token: String,
    pub contributions: Vec<SourceValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceValue {
    pub source_token_idx: usize,
    pub source_token: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target_token_idx: usize,
    pub target_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z2u: Option<Z2u>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub u2z: Option<U2z>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Z2u {
    pub baseline: &'static str,
    pub description: &'static str,
    pub heads: BTreeMap<String, HeadReport>,
    pub points: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeadReport {
    /// One per source token i (T floats).
    pub contributions: Vec<f64>,
    pub token_l2_norm: f64,
    pub completeness: Completeness,
}

#[derive(Debug, Clone, Serialize)]
pub struct U2z {
    pub baseline: &'static str,
    pub description: &'static str,
    /// One per dimension of u_j (d floats).
    pub contributions: Vec<f64>,
    /// ‖z(u) − z(u′)‖₂ (the encoder package's meaning; the decoder package writes the IG sum).
    pub l2_total: f64,
    pub completeness: Completeness,
    /// gradpath: contributions summed over contiguous blocks of d / H dims (the composition's
    /// MLP[j][h]).
    pub per_head: Vec<f64>,
    pub points: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Composition {
    pub matrix: Vec<Vec<f64>>,
    /// Columns composed (the ATT and MLP targets).
    pub targets: Vec<usize>,
    /// Against z2z on the same sub-word tokens (when the layer map is computed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<Diagnostic>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WordMaps {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z2z: Option<Vec<Vec<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub composed: Option<Vec<Vec<f64>>>,
    /// Word-level diagnostic (both maps summed into words the same way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<Diagnostic>,
}

fn completeness(sum: f64, target_norm: f64) -> Completeness {
    let delta = sum - target_norm;
    Completeness {
        sum,
        target_norm,
        delta,
        relative_delta: if target_norm != 0.0 {
            delta.abs() / target_norm.abs()
        } else {
            delta.abs()
        },
    }
}

/// Runs `f` with `steps` points, doubling while `err` exceeds `tol` (up to `max`): the result,
/// the points used and whether it converged (`None` without a tolerance).
fn refined<T>(
    o: &LigOptions,
    mut f: impl FnMut(&LigConfig) -> Result<T>,
    err: impl Fn(&T) -> f64,
) -> Result<(T, usize, Option<bool>)> {
    let mut n = o.steps;
    loop {
        let mut cfg = LigConfig::new(o.rule, n)?;
        cfg.chunking = o.chunking;
        cfg.per_target = o.per_target;
        let r = f(&cfg)?;
        let Some(tol) = o.tolerance else {
            return Ok((r, n, None));
        };
        let e = err(&r);
        if e <= tol {
            return Ok((r, n, Some(true)));
        }
        if n * 2 > o.max_points {
            return Ok((r, n, Some(false)));
        }
        n *= 2;
    }
}

/// Checks a layer list against the model (all layers when `None`).
fn layers_of(lig: &Lig, layers: &Option<Vec<usize>>) -> Result<Vec<usize>> {
    match layers {
        None => Ok((0..lig.n_layers()).collect()),
        Some(v) => {
            for &l in v {
                lig.check_layer(l)?;
            }
            if v.is_empty() {
                return Err(Error::Empty("layer list"));
            }
            Ok(v.clone())
        }
    }
}

/// Runs LIG on a prepared sentence. `tokens` are the token strings; `model`, `model_type`,
/// `dtype` and `text` are reported as given.
pub fn explain_lig(
    lig: &Lig,
    text: &str,
    tokens: &[String],
    model: &str,
    model_type: &str,
    dtype: &str,
    o: &LigOptions,
) -> Result<LigReport> {
    let t0 = Instant::now();
    let t = lig.n_tokens();
    if tokens.len() != t {
        return Err(Error::Mismatch {
            what: "LIG tokens".into(),
            detail: format!("{} token strings for {t} tokens", tokens.len()),
        });
    }
    if o.steps < o.rule.min_points() {
        return Err(Error::BadValue {
            name: "steps",
            detail: format!(
                "{} needs at least {} points",
                o.rule.name(),
                o.rule.min_points()
            ),
        });
    }
    let layers = layers_of(lig, &o.layers)?;
    let targets = lig.targets(o.target_tokens.as_deref().unwrap_or(&[]))?;
    let g = o.granularity;
    if !(g.att || g.mlp || g.layer) {
        return Err(Error::Empty("granularity"));
    }
    let mut rows = 0;
    let mut out = BTreeMap::new();
    for &l in &layers {
        let mut lr = LayerReport {
            layer_idx: l,
            z2z: None,
            targets: None,
            composition: None,
            words: None,
        };
        let mut direct: Option<Vec<Vec<f64>>> = None;
        if g.layer {
            let (m, points, converged) = refined(
                o,
                |cfg| lig.layer_map(l, o.baseline_layer, cfg),
                TokenMap::max_relative_delta,
            )?;
            rows += m.rows;
            let sums = m.column_sums();
            let comp: Vec<Completeness> = sums
                .iter()
                .zip(&m.target_norm)
                .map(|(s, n)| completeness(*s, *n))
                .collect();
            let ttt = targets
                .iter()
                .map(|&j| TokenToToken {
                    target_token_idx: j,
                    target_token: tokens[j].clone(),
                    contributions: targets
                        .iter()
                        .map(|&i| SourceValue {
                            source_token_idx: i,
                            source_token: tokens[i].clone(),
                            value: m.matrix[i][j],
                        })
                        .collect(),
                })
                .collect();
            direct = Some(m.matrix.clone());
            lr.z2z = Some(Z2z {
                baseline: o.baseline_layer.name(),
                description:
                    "Layer-whole IG (z -> z), L2-scalarized; matrix[i][j] = source i -> target j",
                shape: [t, t],
                max_relative_delta: m.max_relative_delta(),
                matrix: m.matrix,
                token_to_token: ttt,
                completeness: comp,
                points,
                rows: m.rows,
                converged,
            });
        }
        let mut att: Option<(Vec<TokenMap>, usize)> = None;
        let mut mlp: Option<(MlpMap, usize)> = None;
        if g.att {
            let (maps, points, _) = refined(
                o,
                |cfg| lig.att_map(l, o.baseline_att, &targets, cfg),
                |v: &Vec<TokenMap>| {
                    v.iter()
                        .map(TokenMap::max_relative_delta)
                        .fold(0.0, f64::max)
                },
            )?;
            rows += maps.first().map_or(0, |m| m.rows);
            att = Some((maps, points));
        }
        if g.mlp {
            let (m, points, _) = refined(
                o,
                |cfg| lig.mlp_map(l, o.baseline_mlp, &targets, cfg),
                |m: &MlpMap| m.relative_delta().into_iter().fold(0.0, f64::max),
            )?;
            rows += m.rows;
            mlp = Some((m, points));
        }
        if g.att || g.mlp {
            let mut tm = BTreeMap::new();
            for (ti, &j) in targets.iter().enumerate() {
                let z2u = att.as_ref().map(|(maps, points)| Z2u {
                    baseline: o.baseline_att.name(),
                    description: "ATT IG (z -> u): per-head context before the output projection, L2-scalarized; per-head token scores",
                    heads: maps
                        .iter()
                        .enumerate()
                        .map(|(h, m)| {
                            let c: Vec<f64> = (0..t).map(|i| m.matrix[i][j]).collect();
                            let sum = c.iter().sum();
                            (
                                h.to_string(),
                                HeadReport {
                                    token_l2_norm: c.iter().map(|v| v * v).sum::<f64>().sqrt(),
                                    contributions: c,
                                    completeness: completeness(sum, m.target_norm[ti]),
                                },
                            )
                        })
                        .collect(),
                    points: *points,
                });
                let u2z = mlp.as_ref().map(|(m, points)| {
                    let c = m.contributions[ti].clone();
                    let sum = c.iter().sum();
                    U2z {
                        baseline: o.baseline_mlp.name(),
                        description: "MLP IG (u -> z): u_j to z_j^(l+1), L2-scalarized; per dimension of u_j",
                        l2_total: m.target_norm[ti],
                        completeness: completeness(sum, m.target_norm[ti]),
                        per_head: m.per_head(ti),
                        contributions: c,
                        points: *points,
                    }
                });
                tm.insert(
                    j.to_string(),
                    TargetReport {
                        target_token_idx: j,
                        target_token: tokens[j].clone(),
                        z2u,
                        u2z,
                    },
                );
            }
            lr.targets = Some(tm);
        }
        let mut composed: Option<Vec<Vec<f64>>> = None;
        if let (Some((a, _)), Some((m, _))) = (&att, &mlp) {
            let c = compose(a, m)?;
            let diagnostic = direct.as_ref().map(|d| diagnostic(d, &c, &targets));
            composed = Some(c.clone());
            lr.composition = Some(Composition {
                matrix: c,
                targets: targets.clone(),
                diagnostic,
            });
        }
        if let Some(groups) = &o.words {
            let wd = direct.as_ref().map(|d| words_map(d, groups));
            let wc = composed.as_ref().map(|c| words_map(c, groups));
            // Word columns whose every token is a computed target.
            let cols: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.iter().all(|j| targets.contains(j)))
                .map(|(w, _)| w)
                .collect();
            let diag = match (&wd, &wc) {
                (Some(d), Some(c)) => Some(diagnostic(d, c, &cols)),
                _ => None,
            };
            lr.words = Some(WordMaps {
                z2z: wd,
                composed: wc,
                diagnostic: diag,
            });
        }
        out.insert(l.to_string(), lr);
    }
    Ok(LigReport {
        text: text.to_string(),
        tokens: tokens.to_vec(),
        model: model.to_string(),
        model_type: model_type.to_string(),
        architecture: if lig.is_decoder() {
            "decoder"
        } else {
            "encoder"
        },
        config: ReportConfig {
            num_steps: o.steps,
            granularity: g.names(),
            baseline_att: o.baseline_att.name(),
            baseline_mlp: o.baseline_mlp.name(),
            baseline_layer: o.baseline_layer.name(),
            layers,
            target_tokens: targets,
            target_head: None,
            include_residual_connection: true,
            method: o.rule.name(),
            dtype: dtype.to_string(),
            tolerance: o.tolerance,
        },
        layers: out,
        words: o.words.clone(),
        rows,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Word groups from per-token word indices (`None`: a special token, its own group), in order.
pub fn word_groups(words: &[Option<u32>]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<u32> = None;
    for (i, w) in words.iter().enumerate() {
        match (w, last) {
            (Some(w), Some(p)) if *w == p => groups.last_mut().expect("a group").push(i),
            _ => groups.push(vec![i]),
        }
        last = *w;
    }
    groups
}
