//! `gradpath heads`: head importance of a classifier over a data set by ATTATTR, raw attention,
//! the Taylor criterion and a random order, and the pruning curves (accuracy with the least
//! important heads masked, no retraining); JSON, an SVG plot in the HTML page.

use super::args::*;
use crate::explain::{AttAttrOptions, HeadCriterion, HeadScores, PruningCurve, Quadrature};
use crate::integrate::Rule;
use crate::report::{attattr_html, attention_html as ah};
use crate::train::data::{read_jsonl, Example};
use crate::Result;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct HeadsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Examples for the importance scores: JSON Lines {"id", "text", "label"} (and "text_pair"),
    /// labels as class indices or id2label names.
    #[arg(long)]
    pub data: PathBuf,
    /// Use the first N examples of --data for the scores (the paper: 200).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Criteria, comma-separated: attattr, attention, taylor, random.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "attattr,attention,taylor,random"
    )]
    pub by: Vec<String>,
    /// Also measure accuracy with 0, 10, ..., 100 % of the heads masked (least important first).
    #[arg(long)]
    pub prune_curve: bool,
    /// Examples for the pruning curve (default: the whole --data file).
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// ATTATTR points per layer (the paper's pruning: 20).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// ATTATTR quadrature rule (the paper's: riemann-left).
    #[arg(long, default_value = "riemann-left")]
    pub method: String,
    /// Seed of the random order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue a killed run: per-example scores already in the checkpoint are reused.
    #[arg(long)]
    pub resume: bool,
    /// Per-example scores, one JSON line per (criterion, example), appended as they are computed
    /// (default: the --json path + `.partial.jsonl`; removed when the run completes).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The JSON document of `gradpath heads`.
#[derive(Debug, Serialize)]
pub struct HeadsReport {
    pub method: &'static str,
    pub model: String,
    pub model_description: String,
    pub data: String,
    pub n_layers: usize,
    pub n_heads: usize,
    pub quadrature: &'static str,
    pub steps: usize,
    pub seed: u64,
    pub importance: Vec<HeadScores>,
    pub eval: Option<String>,
    pub eval_examples: usize,
    pub curves: Vec<PruningCurve>,
}

/// The checkpoint is keyed by id: a repeated id would reuse another example's scores.
fn unique_ids(path: &std::path::Path, data: &[Example]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for e in data {
        if !seen.insert(e.id.as_str()) {
            return Err(crate::Error::Data {
                file: path.display().to_string(),
                line: 0,
                detail: format!("id {:?} appears twice (ids must be unique)", e.id),
            });
        }
    }
    Ok(())
}

fn bar(quiet: bool, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} examples [{{elapsed_precise}}, {{per_sec}}, ETA {{eta}}] {{wide_bar}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// `gradpath heads`.
pub fn run(a: &HeadsArgs) -> Result<()> {
    let by: Vec<HeadCriterion> =
        a.by.iter()
            .map(|s| HeadCriterion::parse(s.trim()))
            .collect::<Result<_>>()?;
    let quadrature = Quadrature {
        rule: Rule::parse(&a.method)?,
        steps: a.steps,
    };
    quadrature.check()?;
    if a.limit == 0 {
        return Err(crate::Error::BadValue {
            name: "--limit",
            detail: "must be at least 1".into(),
        });
    }
    let options = a.run.options(None)?;
    for p in [Some(&a.model.model), Some(&a.data), a.eval.as_ref()]
        .into_iter()
        .flatten()
    {
        super::output::protect(p);
    }
    let ex = crate::explain::Explainer::load(&a.model.model, options)?;
    let labels = ex.classifier_labels()?.to_vec();
    let mut data = read_jsonl(&a.data, &labels)?;
    unique_ids(&a.data, &data)?;
    data.truncate(a.limit);
    let eval = match (&a.eval, a.prune_curve) {
        (Some(p), _) => Some(read_jsonl(p, &labels)?),
        (None, true) => Some(read_jsonl(&a.data, &labels)?),
        (None, false) => None,
    };
    let attattr = AttAttrOptions {
        quadrature,
        ..AttAttrOptions::default()
    };
    let ck_path = match (&a.checkpoint, &a.output.json) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(j)) => Some(PathBuf::from(format!("{}.partial.jsonl", j.display()))),
        (None, None) if a.resume => {
            return Err(crate::Error::BadValue {
                name: "--resume",
                detail: "needs --checkpoint FILE or --json FILE (whose .partial.jsonl it reads)"
                    .into(),
            })
        }
        (None, None) => None,
    };
    let mut ck = Checkpoint::open(ck_path.as_deref(), a.resume)?;
    let mut importance = Vec::new();
    for &c in &by {
        let b = bar(a.run.quiet, &format!("importance by {}", c.name()));
        b.set_length(data.len() as u64);
        let (mut sum, mut deltas) = (Vec::new(), Vec::new());
        if c != HeadCriterion::Random {
            for (k, e) in data.iter().enumerate() {
                let (s, d) = match ck.get(c, &e.id) {
                    Some(x) => x,
                    None => {
                        let x = ex.example_head_scores(e, c, &attattr)?;
                        ck.append(c, &e.id, &x)?;
                        x
                    }
                };
                if sum.is_empty() {
                    sum = s;
                } else {
                    sum.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
                }
                deltas.extend(d);
                b.set_position(k as u64 + 1);
            }
        }
        b.finish_and_clear();
        importance.push(ex.finish_importance(c, sum, data.len(), &deltas, a.seed));
    }
    let mut curves = Vec::new();
    if let (true, Some(ev)) = (a.prune_curve, &eval) {
        let orders: Vec<(HeadCriterion, Vec<usize>)> = importance
            .iter()
            .map(|s| (s.criterion, s.order()))
            .collect();
        let b = bar(a.run.quiet, "pruning curves");
        curves = ex.pruning_curve(ev, &orders, &mut |d, t| {
            b.set_length(t as u64);
            b.set_position(d as u64);
        })?;
        b.finish_and_clear();
    }
    let (nl, nh) = (ex.model().n_layers(), ex.model().n_heads());
    let r = HeadsReport {
        method: "head_importance",
        model: a.model.model.display().to_string(),
        model_description: ex.model().describe(),
        data: a.data.display().to_string(),
        n_layers: nl,
        n_heads: nh,
        quadrature: quadrature.rule.name(),
        steps: quadrature.steps,
        seed: a.seed,
        importance,
        eval: a
            .eval
            .as_ref()
            .or(a.prune_curve.then_some(&a.data))
            .map(|p| p.display().to_string()),
        eval_examples: eval.as_ref().map_or(0, Vec::len),
        curves,
    };
    if !a.run.quiet {
        print_summary(&r, data.len());
    }
    a.output.write_json(&r)?;
    if let Some(path) = &a.output.html {
        write(path, &page(&r))?;
    }
    ck.remove();
    Ok(())
}

/// Per-example scores on disk, so that a killed `heads` run resumes where it stopped: one JSON
/// line `{"criterion", "id", "scores", "delta"}` per (criterion, example), appended and flushed as
/// each is computed. On resume a torn last line (a kill mid-write) is dropped and the file is
/// rewritten without it before anything is appended.
struct Checkpoint {
    path: Option<PathBuf>,
    done: std::collections::HashMap<(String, String), (Vec<f64>, Option<f64>)>,
    file: Option<std::fs::File>,
}

#[derive(Serialize, serde::Deserialize)]
struct CheckpointLine {
    criterion: String,
    id: String,
    scores: Vec<f64>,
    delta: Option<f64>,
}

impl Checkpoint {
    fn io(path: &std::path::Path, e: std::io::Error) -> crate::Error {
        crate::Error::Io {
            path: path.display().to_string(),
            source: e,
        }
    }

    fn open(path: Option<&std::path::Path>, resume: bool) -> Result<Checkpoint> {
        let mut done = std::collections::HashMap::new();
        let Some(path) = path else {
            return Ok(Checkpoint {
                path: None,
                done,
                file: None,
            });
        };
        let mut keep = String::new();
        if resume && path.exists() {
            let s = std::fs::read_to_string(path).map_err(|e| Self::io(path, e))?;
            for line in s.lines() {
                // A line that does not parse is the torn end of a killed run.
                if let Ok(l) = serde_json::from_str::<CheckpointLine>(line) {
                    keep.push_str(line);
                    keep.push('\n');
                    done.insert((l.criterion, l.id), (l.scores, l.delta));
                }
            }
        }
        crate::io::atomic::write_atomic(path, keep.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Self::io(path, e))?;
        Ok(Checkpoint {
            path: Some(path.to_path_buf()),
            done,
            file: Some(file),
        })
    }

    fn get(&self, c: HeadCriterion, id: &str) -> Option<(Vec<f64>, Option<f64>)> {
        self.done
            .get(&(c.name().to_string(), id.to_string()))
            .cloned()
    }

    fn append(&mut self, c: HeadCriterion, id: &str, x: &(Vec<f64>, Option<f64>)) -> Result<()> {
        use std::io::Write;
        let (Some(f), Some(p)) = (self.file.as_mut(), self.path.as_ref()) else {
            return Ok(());
        };
        let line = serde_json::to_string(&CheckpointLine {
            criterion: c.name().into(),
            id: id.into(),
            scores: x.0.clone(),
            delta: x.1,
        })
        .map_err(|e| crate::Error::Internal(e.to_string()))?;
        f.write_all(format!("{line}\n").as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| Self::io(p, e))
    }

    /// The run is complete: the checkpoint is not needed any more.
    fn remove(self) {
        if let Some(p) = self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn print_summary(r: &HeadsReport, n: usize) {
    outln!("{}", r.model_description);
    outln!(
        "head importance over {n} examples of {} ({} layers × {} heads)",
        r.data,
        r.n_layers,
        r.n_heads
    );
    for s in &r.importance {
        let order = s.order();
        let top: Vec<String> = order
            .iter()
            .rev()
            .take(5)
            .map(|&i| format!("{}:{}", i / r.n_heads, i % r.n_heads))
            .collect();
        let extra = s
            .mean_relative_delta
            .map(|d| format!("  (mean worst-layer relative completeness delta {d:.2e})"))
            .unwrap_or_default();
        outln!(
            "  {:<9} most important (layer:head): {}{extra}",
            s.criterion.name(),
            top.join(" ")
        );
    }
    if !r.curves.is_empty() {
        outln!(
            "accuracy on {} examples with the least important heads pruned:",
            r.eval_examples
        );
        out!("  {:<9}", "pruned");
        for f in &r.curves[0].fractions {
            out!(" {:>5.0}%", f * 100.0);
        }
        outln!();
        for c in &r.curves {
            out!("  {:<9}", c.criterion.name());
            for a in &c.accuracy {
                out!(" {:>6.3}", a);
            }
            outln!();
        }
    }
}

fn page(r: &HeadsReport) -> String {
    let rows = vec![
        ("model", r.model_description.clone()),
        ("data", r.data.clone()),
        (
            "ATTATTR",
            format!(
                "{} with {} points per layer, F = probability of the gold label",
                r.quadrature, r.steps
            ),
        ),
    ];
    let mut sections = Vec::new();
    if !r.curves.is_empty() {
        let series: Vec<(String, Vec<f64>)> = r
            .curves
            .iter()
            .map(|c| (c.criterion.name().to_string(), c.accuracy.clone()))
            .collect();
        sections.push(attattr_html::curves_svg(
            &format!(
                "Pruning curves: accuracy on {} examples, no retraining",
                r.eval_examples
            ),
            &r.curves[0].fractions,
            &series,
        ));
    }
    let layers: Vec<String> = (0..r.n_layers).map(|l| format!("layer {l}")).collect();
    let heads: Vec<String> = (0..r.n_heads).map(|h| format!("head {h}")).collect();
    for s in &r.importance {
        sections.push(ah::heatmap(
            &format!(
                "Importance by {} (rows: layers, columns: heads)",
                s.criterion.name()
            ),
            &layers,
            &heads,
            &s.importance.concat(),
            true,
        ));
    }
    ah::page("gradpath · head importance and pruning", &rows, &sections)
}
