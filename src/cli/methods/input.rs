//! `gradpath saliency`, `attention`, `ablate` and `sensitivity`: gradient and perturbation
//! methods on the input tokens and attention maps.

use super::*;
use crate::attribution::NoiseKind;
use crate::explain::{
    AblateOptions, AttentionOptions, SaliencyOptions, SensitivityOptions, Smoothing,
};

/// `gradpath saliency`.
pub fn run_saliency(args: &SaliencyArgs) -> Result<()> {
    let c = &args.common;
    let smooth = match &args.smooth {
        Some(k) => Some(Smoothing {
            kind: NoiseKind::parse(k)?,
            samples: args.samples,
            stdev: args.stdev,
            seed: args.seed,
        }),
        None => None,
    };
    let opts = SaliencyOptions {
        baseline: c.baseline.parse()?,
        times_input: args.times_input,
        smooth,
    };
    let words = args.words.parse()?;
    let (ex, bar, input) = start(c)?;
    let mut r = ex
        .saliency(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let what = match &r.noise_tunnel {
        None => r.header.method.clone(),
        Some(k) => format!(
            "{} of {} ({} samples, σ = {}, seed {})",
            k.kind, r.header.method, k.samples, k.stdev, k.seed
        ),
    };
    header_lines(c, &r.header, &what);
    print_scores(c, &r);
    if !c.run.quiet {
        outln!("F(input) = {:.6}", r.f_input);
    }
    finish_token_scores(
        c,
        &r,
        &format!("gradpath · {}", r.header.method),
        &info_rows(&r.header, what),
        "Attribution per token (sum over the embedding)",
    )
}

/// `gradpath attention`.
pub fn run_attention(args: &AttentionArgs) -> Result<()> {
    let mask_heads = args.mask.parse()?;
    let opts = AttentionOptions {
        baseline: args.baseline.parse()?,
        mask_heads,
    };
    let options = args.run.options(None)?;
    let ex = crate::explain::Explainer::load(&args.model.model, options)?;
    let (n_layers, n_heads) = (ex.model().n_layers(), ex.model().n_heads());
    let layer = args.layer.unwrap_or(n_layers.saturating_sub(1));
    crate::explain::check_head(layer, args.head, n_layers, n_heads)?;
    let r = ex.attention(&plain_input(&args.text), &opts)?;
    let h = &r.header;
    let t = h.tokens.len();
    let labels = h.labels();
    let head = |l: usize, hd: usize| -> Vec<f64> { r.attention[l][hd].concat() };
    let sel = head(layer, args.head);
    if !args.run.quiet {
        outln!("{}", h.model_description);
        outln!(
            "attention: {} layers × {} heads, {} tokens; layer {layer} head {}: strongest key per query",
            r.n_layers, r.n_heads, t, args.head
        );
        for q in 0..t {
            let row = &sel[q * t..(q + 1) * t];
            let (k, v) = row
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(k, v)| (k, *v))
                .unwrap_or((0, 0.0));
            outln!("  {:>16} → {:<16} {v:.3}", labels[q], labels[k]);
        }
    }
    args.output.write_json(&r)?;
    if let Some(path) = &args.output.html {
        let rows = vec![
            ("model", h.model_description.clone()),
            ("text", h.text.clone()),
            (
                "shown",
                format!(
                    "layer {layer}, head {} (choose with --layer/--head)",
                    args.head
                ),
            ),
        ];
        let grid = ah::attention_grid(r.n_layers, r.n_heads, t, &head, (layer, args.head));
        let heat = ah::heatmap(
            &format!(
                "Layer {layer}, head {}: query (rows) × key (columns)",
                args.head
            ),
            &labels,
            &labels,
            &sel,
            false,
        );
        write(
            path,
            &ah::page("gradpath · attention", &rows, &[heat, grid]),
        )?;
    }
    Ok(())
}

/// `gradpath ablate`.
pub fn run_ablate(args: &AblateArgs) -> Result<()> {
    let c = &args.common;
    let opts = AblateOptions {
        baseline: c.baseline.parse()?,
        zero: args.replace == "zero",
    };
    let words = args.words.parse()?;
    let (ex, bar, input) = start(c)?;
    let mut r = ex
        .ablate(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let what = format!(
        "embedding ablation: each token's word embedding replaced by {}",
        if opts.zero {
            "zero".to_string()
        } else {
            format!("the {} baseline's", r.header.baseline)
        }
    );
    header_lines(c, &r.header, &what);
    print_scores(c, &r);
    if !c.run.quiet {
        outln!(
            "F(input) = {:.6}   (score = F(input) − F(ablated))",
            r.f_input
        );
    }
    finish_token_scores(
        c,
        &r,
        "gradpath · embedding ablation",
        &info_rows(&r.header, what),
        "F(input) − F(token ablated)",
    )
}

/// `gradpath sensitivity`.
pub fn run_sensitivity(args: &SensitivityArgs) -> Result<()> {
    let c = &args.common;
    let opts = SensitivityOptions {
        baseline: c.baseline.parse()?,
        sigma: args.sigma,
        draws: args.draws,
        seed: args.seed,
    };
    let words = args.words.parse()?;
    let (ex, bar, input) = start(c)?;
    let mut r = ex
        .sensitivity(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let what = format!(
        "noise sensitivity: N(0, {}²) on one token's word embedding, {} draws (seed {})",
        r.sigma, r.draws, r.seed
    );
    header_lines(c, &r.header, &what);
    print_scores(c, &r);
    if !c.run.quiet {
        outln!(
            "F(input) = {:.6}   (score = standard deviation of F over the draws)",
            r.f_input
        );
    }
    finish_token_scores(
        c,
        &r,
        "gradpath · noise sensitivity",
        &info_rows(&r.header, what),
        "Standard deviation of F per noised token",
    )
}
