//! `gradpath ig`: token Integrated Gradients on a sentence, printed as a table, written as JSON
//! and HTML.

use super::args::*;
use crate::explain::{IgOptions, TokenReport};
use crate::report;
use crate::Result;
use clap::Args;

pub use super::args::DEFAULT_MODEL;

#[derive(Args, Debug, Clone)]
pub struct IgArgs {
    #[command(flatten)]
    pub common: super::methods::Common,
    #[command(flatten)]
    pub quadrature: QuadratureArgs,
    #[command(flatten)]
    pub adaptive: AdaptiveArgs,
    #[command(flatten)]
    pub words: WordsArgs,
    /// With --answer: one IG path per answer token (its log-probability given the prompt and the
    /// answer's earlier tokens), as Captum's LLMGradientAttribution; prints seq_attr, the JSON
    /// also has token_attr.
    #[arg(long, requires = "answer")]
    pub per_token_paths: bool,
    /// Run the attribution N times in this process and report the last run, with every run's
    /// seconds in the JSON's `repeat_attribution_s` (for benchmarks: the first run pays
    /// first-touch page faults and thread start-up; later runs reuse warm buffers, as a library
    /// caller's repeated calls do).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000), conflicts_with = "per_token_paths")]
    pub repeat: u32,
}

/// Runs `gradpath ig`.
pub fn run(a: &IgArgs) -> Result<()> {
    let options = a.common.run.options(a.common.batch.batch)?;
    let q = a.quadrature.parse()?;
    let opts = IgOptions {
        adaptive: a.adaptive.parse(&q)?,
        path: path_options(&a.common.baseline, &a.quadrature)?,
    };
    let words = a.words.parse()?;
    let input = a.common.target.input(&a.common.text)?;
    let (ex, bar) = load(&a.common.model.model, options, a.common.run.quiet)?;
    if a.per_token_paths {
        if opts.adaptive.is_some() {
            return Err(crate::Error::BadValue {
                name: "per_token_paths",
                detail: "runs a fixed rule per answer token; drop --tolerance".into(),
            });
        }
        let r = ex
            .answer_token_paths(&input, &opts.path)
            .map_err(|e| a.common.target.explain(e, ex.model().is_decoder()))?;
        bar.finish_and_clear();
        let h = &r.header;
        if !a.common.run.quiet {
            outln!("{}", h.model_description);
            outln!(
                "target: {}, one path per answer token   baseline: {}   {} × {} points",
                h.target_description(),
                h.baseline,
                r.quadrature,
                r.n_steps
            );
            let scores = crate::report::TokenScores {
                labels: h.labels(),
                scores: r.seq_attr.clone(),
            };
            out!("{}", report::table::render(&scores, 20));
            for s in &r.steps {
                outln!(
                    "answer token {:<12} F(input) = {:.6}  F(baseline) = {:.6}  delta = {:+.3e}  relative = {:.3e}",
                    s.token_str, s.f_input, s.f_baseline, s.delta, s.relative_delta
                );
            }
        }
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        a.common.output.write_json(&r)?;
        if let Some(path) = &a.common.output.html {
            let info = report::html::PageInfo {
                title: "gradpath · integrated gradients, one path per answer token",
                model: &h.model_description,
                text: &h.text,
                target: &h.target_description(),
                f_input: r.steps.iter().map(|s| s.f_input).sum(),
                f_baseline: r.steps.iter().map(|s| s.f_baseline).sum(),
                delta: r.delta,
                relative_delta: r.delta.abs()
                    / r.steps
                        .iter()
                        .map(|s| s.f_input - s.f_baseline)
                        .sum::<f64>()
                        .abs(),
                method: &format!(
                    "{} × {} per answer token, baseline {}",
                    r.quadrature, r.n_steps, h.baseline
                ),
                warning: r.warnings.first().map(String::as_str),
                path_alphas: &[],
                path_f: &[],
            };
            let scores = crate::report::TokenScores {
                labels: h.labels(),
                scores: r.seq_attr.clone(),
            };
            write(path, &report::html::render(&scores, &info))?;
        }
        return Ok(());
    }
    let run_once = || {
        ex.ig(&input, &opts)
            .map_err(|e| a.common.target.explain(e, ex.model().is_decoder()))
    };
    let mut r = run_once()?;
    if a.repeat > 1 {
        let mut times = vec![r.header.timing.attribution_s];
        for _ in 1..a.repeat {
            r = run_once()?;
            times.push(r.header.timing.attribution_s);
        }
        r.repeat_attribution_s = Some(times);
    }
    bar.finish_and_clear();
    if std::env::var_os("GRADPATH_POOL_STATS").is_some() {
        let (h, m, b) = <f32 as crate::tensor::pool::Pooled>::pool().stats();
        let (h64, m64, b64) = <f64 as crate::tensor::pool::Pooled>::pool().stats();
        eprintln!("buffer pool: f32 {h} hits, {m} misses, {} MB held; f64 {h64} hits, {m64} misses, {} MB held", b >> 20, b64 >> 20);
    }
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let scores = r.scores();
    let h = &r.header;
    let target_desc = h.target_description();
    let warning = r.warnings.first();
    if !a.common.run.quiet {
        outln!("{}", h.model_description);
        outln!(
            "target: {target_desc}   baseline: {}   {} × {} points{}",
            h.baseline,
            r.quadrature,
            r.steps,
            if r.refinement.is_some() {
                format!(" (adaptive, {} passes)", r.points_used)
            } else {
                String::new()
            }
        );
        out!("{}", report::table::render(&scores, 20));
        outln!(
            "F(input) = {:.6}   F(baseline) = {:.6}   Σ attributions = {:.6}",
            r.f_input,
            r.f_baseline,
            r.attributions.iter().sum::<f64>()
        );
        outln!(
            "completeness delta = {:+.3e}   relative = {:.3e}",
            r.delta,
            r.relative_delta
        );
        outln!(
            "time: load {:.2} s, attribution {:.2} s",
            h.timing.load_s,
            h.timing.attribution_s
        );
    }
    if let Some(w) = warning {
        eprintln!("warning: {w}");
    }
    a.common.output.write_json(&r)?;
    if let Some(path) = &a.common.output.html {
        let info = report::html::PageInfo {
            title: "gradpath · integrated gradients",
            model: &h.model_description,
            text: &h.text,
            target: &target_desc,
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            delta: r.delta,
            relative_delta: r.relative_delta,
            method: &format!(
                "{} × {}, baseline {}, {}",
                r.quadrature, r.steps, h.baseline, h.dtype
            ),
            warning: warning.map(String::as_str),
            path_alphas: &r.path.alphas,
            path_f: &r.path.f,
        };
        write(path, &report::html::render(&scores, &info))?;
    }
    Ok(())
}
