//! `gradpath converge`: every quadrature rule at every point count on a text's token IG path (or
//! on each text of a JSONL file), against a converged reference; prints a table, writes JSON and
//! an HTML page with the log–log plot.

use super::args::{
    load, write, BaselineArgs, BatchArgs, ModelArgs, OutputArgs, RunArgs, TargetArgs, TextArgs,
};
use crate::attribution::converge::ConvergeConfig;
use crate::explain::{ConvergeOptions, ConvergeReport, ConvergeSummary};
use crate::integrate::Rule;
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
#[command(mut_arg("dtype", |a| a.default_value("f64")))]
pub struct ConvergeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text whose IG path is integrated.
    #[arg(long, required_unless_present = "data", conflicts_with = "data")]
    pub text: Option<String>,
    /// A JSONL file of texts (`{"text": ...}` per line, with optional per-line targets as in
    /// `gradpath batch`): one report per text and medians over them.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    /// Rules to compare, comma-separated: gauss-legendre, riemann-left, riemann-right,
    /// riemann-middle, riemann-trapezoid, captum-trapezoid, clenshaw-curtis, tanh-sinh,
    /// gauss-kronrod.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "gauss-legendre,riemann-left,riemann-trapezoid,clenshaw-curtis,tanh-sinh,gauss-kronrod"
    )]
    pub rules: Vec<String>,
    /// Point counts asked of every rule, comma-separated (gauss-kronrod rounds to panels of 15;
    /// counts below a rule's minimum are skipped).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4,8,16,32,64,128,256,512"
    )]
    pub points: Vec<usize>,
    /// The reference (adaptive Gauss–Kronrod panels) stops at this relative error estimate.
    #[arg(long, default_value_t = 1e-10)]
    pub reference_tolerance: f64,
    /// Most path points the reference may spend.
    #[arg(long, default_value_t = 8192)]
    pub reference_max_points: usize,
    /// Cut texts longer than the model's positions instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_rules(names: &[String]) -> Result<Vec<Rule>> {
    let mut out: Vec<Rule> = Vec::new();
    for n in names {
        let r = Rule::parse(n.trim())?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Runs `gradpath converge`.
pub fn run(a: &ConvergeArgs) -> Result<()> {
    let options = a.run.options(a.batch.batch)?;
    let config = ConvergeConfig {
        rules: parse_rules(&a.rules)?,
        points: a.points.clone(),
        reference_tolerance: a.reference_tolerance,
        reference_max_points: a.reference_max_points,
    };
    config.check()?;
    let opts = ConvergeOptions {
        baseline: a.baseline.parse()?,
        config,
    };
    let inputs = match (&a.text, &a.data) {
        (Some(t), None) => {
            let text = TextArgs {
                text: t.clone(),
                truncate: a.truncate,
                chat: false,
                system: None,
            };
            vec![a.target.input(&text)?]
        }
        (None, Some(path)) => {
            super::output::protect(path);
            let text = TextArgs {
                text: String::new(),
                truncate: a.truncate,
                chat: false,
                system: None,
            };
            // Each line's targets override the flags, exactly as in `gradpath batch`.
            let defaults = crate::batch::ExampleDefaults {
                target: a.target.input(&text)?.target,
                truncate: a.truncate,
                label_as_target: false,
            };
            let mut v = Vec::new();
            for e in crate::batch::input::read_examples(path)? {
                v.push(defaults.input(&e.map_err(|b| b.error(path))?));
            }
            v
        }
        _ => {
            return Err(Error::BadValue {
                name: "text",
                detail: "give --text or --data".into(),
            })
        }
    };
    let (ex, bar) = load(&a.model.model, options, a.run.quiet)?;
    let mut reports: Vec<ConvergeReport> = Vec::new();
    for input in &inputs {
        let r = ex
            .converge(input, &opts)
            .map_err(|e| a.target.explain(e, ex.model().is_decoder()))?;
        reports.push(r);
    }
    bar.finish_and_clear();
    if !a.run.quiet {
        for r in &reports {
            print_report(r);
        }
    }
    let mut warnings: Vec<String> = Vec::new();
    for r in &reports {
        for w in &r.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if a.data.is_some() {
        let summary = ConvergeSummary::of(&reports);
        if !a.run.quiet {
            print_summary(&summary);
        }
        #[derive(serde::Serialize)]
        struct DataReport<'a> {
            method: &'static str,
            gradpath_version: &'static str,
            model: String,
            summary: &'a ConvergeSummary,
            examples: &'a [ConvergeReport],
            warnings: &'a [String],
        }
        let model = reports
            .first()
            .map(|r| r.header.model_description.clone())
            .unwrap_or_default();
        a.output.write_json(&DataReport {
            method: "converge",
            gradpath_version: env!("CARGO_PKG_VERSION"),
            model: model.clone(),
            summary: &summary,
            examples: &reports,
            warnings: &warnings,
        })?;
        if let Some(path) = &a.output.html {
            write(
                path,
                &crate::report::converge_html::render_summary(&summary, &model, &warnings),
            )?;
        }
    } else {
        let r = &reports[0];
        a.output.write_json(r)?;
        if let Some(path) = &a.output.html {
            write(path, &crate::report::converge_html::render(r))?;
        }
    }
    Ok(())
}

fn print_report(r: &ConvergeReport) {
    let h = &r.header;
    outln!("{}", h.model_description);
    outln!(
        "text: {}   target: {}   baseline: {}   dtype: {}",
        h.text,
        h.target_description(),
        h.baseline,
        h.dtype
    );
    outln!(
        "reference: {} Kronrod panels, {} points, error estimate {:.2e}{}, relative delta {:.2e}",
        r.reference.panels,
        r.reference.points,
        r.reference.error_estimate,
        if r.reference.converged {
            ""
        } else {
            " (NOT converged)"
        },
        r.reference.relative_delta
    );
    outln!(
        "{:<18} {:>6} {:>6} {:>9} {:>11} {:>11} {:>11} {:>8}",
        "rule",
        "asked",
        "points",
        "refining",
        "rel. delta",
        "attr. error",
        "successive",
        "seconds"
    );
    for rc in &r.rules {
        for (k, x) in rc.runs.iter().enumerate() {
            outln!(
                "{:<18} {:>6} {:>6} {:>9} {:>11.2e} {:>11.2e} {:>11} {:>8.3}",
                if k == 0 { rc.rule.name() } else { "" },
                x.requested,
                x.points,
                x.passes_refining,
                x.relative_delta,
                x.attribution_error,
                x.successive_estimate
                    .map_or("–".into(), |e| format!("{e:.2e}")),
                x.seconds
            );
        }
        outln!(
            "{:<18} fitted order {}{}",
            "",
            rc.order.map_or("–".into(), |o| format!("{o:.2}")),
            if rc.skipped.is_empty() {
                String::new()
            } else {
                format!("   (skipped counts {:?})", rc.skipped)
            }
        );
    }
    outln!(
        "{} distinct passes in all, {:.4} s per pass",
        r.total_passes,
        r.seconds_per_pass
    );
}

fn print_summary(s: &ConvergeSummary) {
    outln!("medians over {} texts:", s.texts);
    for r in &s.rules {
        let errs: Vec<String> = r
            .runs
            .iter()
            .map(|x| format!("{}:{:.1e}", x.points, x.median_attribution_error))
            .collect();
        outln!(
            "{:<18} order {:>6}  {}",
            r.rule.name(),
            r.median_order.map_or("–".into(), |o| format!("{o:.2}")),
            errs.join("  ")
        );
    }
}
