//! [`Explainer::converge`]: how fast each quadrature rule's token IG converges on a text, and a
//! summary over many texts ([`ConvergeSummary`]).

use super::{Explainer, Header, Input};
use crate::attribution::converge::{converge, ConvergeConfig, Reference, RuleConvergence};
use crate::attribution::Baseline;
use crate::integrate::Rule;
use crate::Result;
use serde::Serialize;

/// Options of [`Explainer::converge`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergeOptions {
    pub baseline: Baseline,
    pub config: ConvergeConfig,
}

impl Default for ConvergeOptions {
    /// Gauss–Legendre, left Riemann, the textbook trapezoid, Clenshaw–Curtis, tanh–sinh and
    /// Gauss–Kronrod at 4, 8, ..., 512 points, pad baseline, reference to 1e−10.
    fn default() -> ConvergeOptions {
        ConvergeOptions {
            baseline: Baseline::Pad,
            config: ConvergeConfig::new(
                vec![
                    Rule::GaussLegendre,
                    Rule::RiemannLeft,
                    Rule::RiemannTrapezoid,
                    Rule::ClenshawCurtis,
                    Rule::TanhSinh,
                    Rule::GaussKronrod,
                ],
                vec![4, 8, 16, 32, 64, 128, 256, 512],
            ),
        }
    }
}

/// The convergence of every rule on one text (`gradpath converge --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ConvergeReport {
    #[serde(flatten)]
    pub header: Header,
    pub boundary: &'static str,
    pub batch: usize,
    pub f_input: f64,
    pub f_baseline: f64,
    pub reference_tolerance: f64,
    pub reference: Reference,
    pub rules: Vec<RuleConvergence>,
    /// Distinct path points evaluated (reference included; shared nodes once).
    pub total_passes: usize,
    pub pass_seconds: f64,
    pub seconds_per_pass: f64,
    pub warnings: Vec<String>,
}

impl Explainer {
    /// Runs every rule of `o.config` at every point count on the token IG path of `input`
    /// (`hook_embed`, `o.baseline`), against an adaptive reference
    /// ([`crate::attribution::converge`]). Use the f64 dtype for errors below ~1e−6: in f32 the
    /// errors stop falling at the rounding floor of the gradients.
    pub fn converge(&self, input: &Input, o: &ConvergeOptions) -> Result<ConvergeReport> {
        o.config.check()?;
        let p = self.prepare(input, &o.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        let batch = self.batch_size(p.encoded.len(), 64)?;
        let mut prog = self.progress_fn();
        let c = converge(&problem, &o.config, batch, &mut prog)?;
        let mut warnings = Vec::new();
        if !c.reference.converged {
            warnings.push(format!(
                "the reference did not reach its tolerance {:.0e} within {} points (estimate {:.2e}); errors below that estimate are not resolved: raise the reference budget",
                o.config.reference_tolerance, o.config.reference_max_points, c.reference.error_estimate
            ));
        }
        if self.options.dtype != crate::DType::F64 {
            warnings.push(
                "computed in f32: errors stop falling near 1e-6 (rounding of the gradients); use the f64 dtype to see the rules converge further".into(),
            );
        }
        Ok(ConvergeReport {
            header: self.header("converge", input, &p),
            boundary: "hook_embed",
            batch,
            f_input: c.f_input,
            f_baseline: c.f_baseline,
            reference_tolerance: o.config.reference_tolerance,
            reference: c.reference,
            rules: c.rules,
            total_passes: c.total_passes,
            pass_seconds: c.pass_seconds,
            seconds_per_pass: c.seconds_per_pass,
            warnings,
        })
    }
}

/// One rule at one count over many texts: medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRun {
    pub requested: usize,
    pub points: usize,
    pub passes: usize,
    pub median_relative_delta: f64,
    pub median_attribution_error: f64,
    pub worst_attribution_error: f64,
    pub median_seconds: f64,
}

/// One rule over many texts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRule {
    pub rule: Rule,
    pub runs: Vec<SummaryRun>,
    /// The median of the per-text fitted orders (texts without a fit left out).
    pub median_order: Option<f64>,
}

/// Medians over the texts of a `converge --data` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvergeSummary {
    pub texts: usize,
    pub rules: Vec<SummaryRule>,
    /// Points at which each rule first reaches a median attribution error ≤ 1e−4, per rule
    /// (`None`: not within the counts run).
    pub passes_to_1e4: Vec<(Rule, Option<usize>)>,
}

fn median(v: Vec<f64>) -> f64 {
    super::median(&v).unwrap_or(f64::NAN)
}

impl ConvergeSummary {
    /// Medians per rule and count over `reports` (which ran the same rules and counts).
    pub fn of(reports: &[ConvergeReport]) -> ConvergeSummary {
        let mut rules = Vec::new();
        let mut to_1e4 = Vec::new();
        if let Some(first) = reports.first() {
            for (i, r) in first.rules.iter().enumerate() {
                let mut runs = Vec::new();
                for (k, run) in r.runs.iter().enumerate() {
                    let at = |f: &dyn Fn(&crate::attribution::converge::RuleRun) -> f64| {
                        reports
                            .iter()
                            .filter_map(|x| x.rules.get(i).and_then(|r| r.runs.get(k)))
                            .map(f)
                            .collect::<Vec<f64>>()
                    };
                    let errs = at(&|x| x.attribution_error);
                    runs.push(SummaryRun {
                        requested: run.requested,
                        points: run.points,
                        passes: run.passes,
                        median_relative_delta: median(at(&|x| x.relative_delta)),
                        median_attribution_error: median(errs.clone()),
                        worst_attribution_error: errs.iter().copied().fold(0.0, f64::max),
                        median_seconds: median(at(&|x| x.seconds)),
                    });
                }
                let orders: Vec<f64> = reports
                    .iter()
                    .filter_map(|x| x.rules.get(i).and_then(|r| r.order))
                    .collect();
                to_1e4.push((
                    r.rule,
                    runs.iter()
                        .find(|s| s.median_attribution_error <= 1e-4)
                        .map(|s| s.passes),
                ));
                rules.push(SummaryRule {
                    rule: r.rule,
                    runs,
                    median_order: (!orders.is_empty()).then(|| median(orders)),
                });
            }
        }
        ConvergeSummary {
            texts: reports.len(),
            rules,
            passes_to_1e4: to_1e4,
        }
    }
}
