//! `gradpath lig`: set-to-set Layer-wise Integrated Gradients (token-to-token flow inside every
//! layer; `docs/LIG.md`). Parses the flags, runs [`crate::attribution::lig::explain_lig`], prints
//! a summary and writes the JSON (the package's `explain()` schema plus gradpath's additions)
//! and the HTML page.

use super::args::{load, write, ModelArgs, OutputArgs, RunArgs};
use crate::attribution::lig::{
    AttBaseline, Granularity, LayerBaseline, Lig, LigOptions, MlpBaseline,
};
use crate::attribution::probe::Subject;
use crate::integrate::Rule;
use crate::{Error, Result};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct LigArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The sentence to explain.
    #[arg(
        long,
        required_unless_present = "text_file",
        conflicts_with = "text_file"
    )]
    pub text: Option<String>,
    /// A file of sentences, one per line: with --granularity all, writes the 24-pair
    /// consistency table (layer × ATT × MLP baselines: L2 and Pearson between the direct and
    /// the composed maps, pooled over layers, columns and sentences) instead of maps.
    #[arg(long)]
    pub text_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub maps: LigMapArgs,
    /// Layers, e.g. `0,3`, or `all`.
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Path points per map (the package's num_steps).
    #[arg(long, default_value_t = 32)]
    pub steps: usize,
    /// Quadrature rule: gauss-legendre, captum-trapezoid (the package's nodes and weights),
    /// riemann-left, riemann-right, riemann-middle, riemann-trapezoid, clenshaw-curtis,
    /// tanh-sinh, gauss-kronrod.
    #[arg(long, default_value = "gauss-legendre")]
    pub method: String,
    /// Double the points of each map, layer by layer, until every column's relative
    /// completeness delta is below this.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// The most points --tolerance may use per map.
    #[arg(long, default_value_t = 1024)]
    pub max_points: usize,
    /// Also report word-level maps and diagnostic (sub-words summed on both axes).
    #[arg(long)]
    pub words: bool,
    /// Model rows per forward (default: as many as fit a 512 MiB activation budget).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Run the zero-baseline layer map and the attention maps unit by unit (T × n rows of
    /// each block per layer map, T × heads × n per attention map), the reference path, instead
    /// of forwards of the block shared by every target and head: the same maps to rounding,
    /// many times slower (for checks and benchmarks).
    #[arg(long)]
    pub per_target: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Which maps and baselines (`gradpath lig` and `gradpath batch --method lig`).
#[derive(Args, Debug, Clone)]
pub struct LigMapArgs {
    /// Which maps: all (default), att (z → u per head), mlp (u → z), layer (z → z), or a list
    /// (att,mlp).
    #[arg(long)]
    pub granularity: Option<String>,
    /// Target tokens of the att and mlp maps, e.g. `1,2` (default: all; the layer map is always
    /// computed for every target).
    #[arg(long, value_delimiter = ',')]
    pub target_tokens: Option<Vec<usize>>,
    /// ATT baseline: zero, self_input_token (default), itb_zero_ratio, itb_map_ratio.
    #[arg(long)]
    pub baseline_att: Option<String>,
    /// MLP baseline: zero (default), att_itb_a0.
    #[arg(long)]
    pub baseline_mlp: Option<String>,
    /// Layer baseline: zero, self_input_token (default), itb_zero_ratio.
    #[arg(long)]
    pub baseline_layer: Option<String>,
}

impl LigMapArgs {
    /// Whether any of these flags was given.
    pub fn any(&self) -> bool {
        self.granularity.is_some()
            || self.target_tokens.is_some()
            || self.baseline_att.is_some()
            || self.baseline_mlp.is_some()
            || self.baseline_layer.is_some()
    }

    /// Sets the maps, target tokens and baselines of `o` (the defaults where not given).
    pub fn apply(&self, o: &mut LigOptions) -> Result<()> {
        o.granularity = Granularity::parse(self.granularity.as_deref().unwrap_or("all"))?;
        o.target_tokens = self.target_tokens.clone();
        o.baseline_att =
            AttBaseline::parse(self.baseline_att.as_deref().unwrap_or("self_input_token"))?;
        o.baseline_mlp = MlpBaseline::parse(self.baseline_mlp.as_deref().unwrap_or("zero"))?;
        o.baseline_layer =
            LayerBaseline::parse(self.baseline_layer.as_deref().unwrap_or("self_input_token"))?;
        Ok(())
    }
}

/// A layer list, `0,3`, or `all` (`None`).
pub(crate) fn parse_layers(s: &str) -> Result<Option<Vec<usize>>> {
    if s.trim() == "all" {
        return Ok(None);
    }
    s.split(',')
        .map(|p| {
            p.trim().parse::<usize>().map_err(|_| Error::BadValue {
                name: "--layers",
                detail: format!("`{p}` is not a layer index (use e.g. 0,3 or all)"),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The LIG options of the flags `gradpath lig` and `gradpath batch --method lig` share: the
/// rule and its points, the maps and baselines, the layers, `--tolerance` / `--max-points` and
/// `--batch` (model rows per forward).
pub(crate) fn options(
    rule: Rule,
    steps: usize,
    maps: &LigMapArgs,
    layers: &str,
    tolerance: Option<f64>,
    max_points: usize,
    batch: Option<usize>,
) -> Result<LigOptions> {
    let mut o = LigOptions::new(rule, steps);
    maps.apply(&mut o)?;
    o.layers = parse_layers(layers)?;
    o.tolerance = tolerance;
    o.max_points = max_points;
    if let Some(b) = batch {
        if b == 0 {
            return Err(Error::BadValue {
                name: "batch",
                detail: "must be at least 1 row per forward".into(),
            });
        }
        o.chunking = crate::attribution::probe::Chunking::Rows(b);
    }
    if let Some(t) = tolerance {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::BadValue {
                name: "--tolerance",
                detail: format!("{t} is not a positive number"),
            });
        }
    }
    Ok(o)
}

/// `gradpath lig`.
pub fn run(a: &LigArgs) -> Result<()> {
    let rule = Rule::parse(&a.method)?;
    let o = options(
        rule,
        a.steps,
        &a.maps,
        &a.layers,
        a.tolerance,
        a.max_points,
        a.batch,
    )?;
    let o = LigOptions {
        per_target: a.per_target,
        ..o
    };
    let (ex, _bar) = load(&a.model.model, a.run.options(None)?, true)?;
    if let Some(file) = &a.text_file {
        return run_table(a, &ex, file, &o);
    }
    let text = a.text.as_deref().unwrap_or_default();
    let r = ex.lig(&crate::explain::Input::text(text), &o, a.words)?;
    if !a.run.quiet {
        outln!(
            "LIG on {} tokens, layers {:?}, maps {:?}, {} × {} points, {} model rows, {:.2}s",
            r.tokens.len(),
            r.config.layers,
            r.config.granularity,
            r.config.method,
            r.config.num_steps,
            r.rows,
            r.seconds
        );
        for (l, lr) in &r.layers {
            let mut line = format!("layer {l}:");
            if let Some(z) = &lr.z2z {
                line += &format!(
                    " z2z ({}) max relative completeness delta {:.3e} ({} points)",
                    z.baseline, z.max_relative_delta, z.points
                );
            }
            if let Some(d) = lr.composition.as_ref().and_then(|c| c.diagnostic.as_ref()) {
                line += &format!(
                    "; composed vs direct: L2 mean {:.4}, Pearson mean {:.4}",
                    d.l2_mean, d.pearson_mean
                );
            }
            outln!("{line}");
        }
    }
    a.output.write_json(&r)?;
    if let Some(path) = &a.output.html {
        write(path, &crate::report::lig_html::render(&r))?;
    }
    Ok(())
}

/// `gradpath lig --text-file`: the 24-pair table over the sentences of a file.
fn run_table(
    a: &LigArgs,
    ex: &crate::explain::Explainer,
    file: &std::path::Path,
    o: &LigOptions,
) -> Result<()> {
    use crate::attribution::lig::{LigConfig, PairTable};
    let g = o.granularity;
    if !(g.att && g.mlp && g.layer) {
        return Err(Error::BadValue {
            name: "--granularity",
            detail: "--text-file writes the 24-pair table, which needs all three maps (--granularity all)".into(),
        });
    }
    let body = std::fs::read_to_string(file).map_err(|e| Error::Io {
        path: file.display().to_string(),
        source: e,
    })?;
    let sentences: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if sentences.is_empty() {
        return Err(Error::Empty("the text file (no sentences)"));
    }
    let mut cfg = LigConfig::new(o.rule, o.steps)?;
    cfg.chunking = o.chunking;
    cfg.per_target = o.per_target;
    let t0 = std::time::Instant::now();
    let mut table = PairTable::new();
    let n_layers = ex.model().n_layers();
    for (k, s) in sentences.iter().enumerate() {
        let enc = ex.encode(s, false)?;
        let lig = Lig::new(Subject::new(ex.model(), &enc.ids, &enc.type_ids))?;
        let layers = match &o.layers {
            Some(v) => v.clone(),
            None => (0..n_layers).collect(),
        };
        table.add(&lig, &layers, &cfg)?;
        if !a.run.quiet {
            eprintln!(
                "sentence {}/{} ({} tokens), {:.1}s",
                k + 1,
                sentences.len(),
                enc.len(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    let rows = table.rows();
    if !a.run.quiet {
        outln!(
            "| layer-direct | ATT | MLP | L2 mean | L2 std | Pearson mean | Pearson std | pairs |"
        );
        outln!("|---|---|---|---|---|---|---|---|");
        for r in &rows {
            outln!(
                "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
                r.layer,
                r.att,
                r.mlp,
                r.l2_mean,
                r.l2_std,
                r.corr_mean,
                r.corr_std,
                r.n_pairs
            );
        }
    }
    #[derive(serde::Serialize)]
    struct TableReport<'a> {
        model: String,
        text_file: String,
        sentences: usize,
        method: &'static str,
        num_steps: usize,
        dtype: &'a str,
        layers: Option<Vec<usize>>,
        pairs: Vec<crate::attribution::lig::PairStats>,
        seconds: f64,
    }
    a.output.write_json(&TableReport {
        model: a.model.model.display().to_string(),
        text_file: file.display().to_string(),
        sentences: sentences.len(),
        method: o.rule.name(),
        num_steps: o.steps,
        dtype: &a.run.dtype,
        layers: o.layers.clone(),
        pairs: rows,
        seconds: t0.elapsed().as_secs_f64(),
    })
}
