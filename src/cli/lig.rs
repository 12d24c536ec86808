//! `gradpath lig`: set-to-set Layer-wise Integrated Gradients (token-to-token flow inside every
//! layer; `docs/LIG.md`). Parses the flags, runs [`crate::attribution::lig::explain_lig`], prints
//! a summary and writes the JSON (the package's `explain()` schema plus gradpath's additions)
//! and the HTML page.

use super::args::{load, write, ModelArgs, OutputArgs, RunArgs};
use crate::attribution::lig::{
    explain_lig, word_groups, AttBaseline, Granularity, LayerBaseline, Lig, LigOptions, MlpBaseline,
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
    #[arg(long)]
    pub text: String,
    /// Which maps: all, att (z → u per head), mlp (u → z), layer (z → z), or a list (att,mlp).
    #[arg(long, default_value = "all")]
    pub granularity: String,
    /// Layers, e.g. `0,3`, or `all`.
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Target tokens of the att and mlp maps, e.g. `1,2` (default: all; the layer map is always
    /// computed for every target).
    #[arg(long, value_delimiter = ',')]
    pub target_tokens: Option<Vec<usize>>,
    /// ATT baseline: zero, self_input_token, itb_zero_ratio, itb_map_ratio.
    #[arg(long, default_value = "self_input_token")]
    pub baseline_att: String,
    /// MLP baseline: zero, att_itb_a0.
    #[arg(long, default_value = "zero")]
    pub baseline_mlp: String,
    /// Layer baseline: zero, self_input_token, itb_zero_ratio.
    #[arg(long, default_value = "self_input_token")]
    pub baseline_layer: String,
    /// Path points per map (the package's num_steps).
    #[arg(long, default_value_t = 32)]
    pub steps: usize,
    /// Quadrature rule: gauss-legendre, captum-trapezoid (the package's nodes and weights),
    /// riemann-left, riemann-right, riemann-middle, riemann-trapezoid.
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
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_layers(s: &str) -> Result<Option<Vec<usize>>> {
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

/// `gradpath lig`.
pub fn run(a: &LigArgs) -> Result<()> {
    let rule = Rule::parse(&a.method)?;
    let mut o = LigOptions::new(rule, a.steps);
    o.granularity = Granularity::parse(&a.granularity)?;
    o.layers = parse_layers(&a.layers)?;
    o.target_tokens = a.target_tokens.clone();
    o.baseline_att = AttBaseline::parse(&a.baseline_att)?;
    o.baseline_mlp = MlpBaseline::parse(&a.baseline_mlp)?;
    o.baseline_layer = LayerBaseline::parse(&a.baseline_layer)?;
    o.tolerance = a.tolerance;
    o.max_points = a.max_points;
    if let Some(t) = a.tolerance {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::BadValue {
                name: "--tolerance",
                detail: format!("{t} is not a positive number"),
            });
        }
    }
    let (ex, _bar) = load(&a.model.model, a.run.options(None)?, true)?;
    let enc = ex.encode(&a.text, false)?;
    if a.words {
        o.words = Some(word_groups(&enc.words));
    }
    let model_type = crate::io::ModelDir::open(&a.model.model)
        .and_then(|d| d.config_json())
        .ok()
        .and_then(|c| c["model_type"].as_str().map(str::to_string))
        .unwrap_or_else(|| ex.model().describe());
    let lig = Lig::new(Subject::new(ex.model(), &enc.ids, &enc.type_ids))?;
    let r = explain_lig(
        &lig,
        &a.text,
        &enc.tokens,
        &a.model.model.display().to_string(),
        &model_type,
        &a.run.dtype,
        &o,
    )?;
    if !a.run.quiet {
        println!(
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
            println!("{line}");
        }
    }
    a.output.write_json(&r)?;
    if let Some(path) = &a.output.html {
        write(path, &crate::report::lig_html::render(&r))?;
    }
    Ok(())
}
