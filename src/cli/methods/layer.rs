//! `gradpath layer-ig`, `conductance` and `neuron`: the layer methods.

use super::*;
use crate::explain::{ConductanceOptions, LayerIgOptions, NeuronOptions};

/// `gradpath layer-ig`.
pub fn run_layer_ig(args: &LayerIgArgs) -> Result<()> {
    let c = &args.common;
    let opts = LayerIgOptions {
        path: path_options(&c.baseline, &args.quadrature)?,
        boundary: args.boundary.clone(),
    };
    let words = args.words.parse()?;
    let (ex, bar, input) = start(c)?;
    let mut r = ex
        .layer_ig(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let what = format!("layer IG at {}, {} × {}", r.boundary, r.quadrature, r.steps);
    header_lines(c, &r.header, &what);
    if !c.run.quiet {
        if r.attributions.is_empty() {
            outln!("(the boundary has no token axis; total = {:.6})", r.total);
        } else {
            print_scores(c, &r);
        }
        outln!(
            "F(input) = {:.6}   F(baseline) = {:.6}   Σ attributions = {:.6}",
            r.f_input,
            r.f_baseline,
            r.total
        );
        if let (Some(d), Some(rd)) = (r.delta, r.relative_delta) {
            outln!("completeness delta = {d:+.3e}   relative = {rd:.3e}");
        }
    }
    let mut rows = info_rows(&r.header, what);
    rows.push((
        "F(input) / F(baseline)",
        format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
    ));
    rows.push((
        "completeness delta",
        format!("{:+.3e}", r.delta.unwrap_or(f64::NAN)),
    ));
    finish_token_scores(
        c,
        &r,
        "gradpath · layer integrated gradients",
        &rows,
        "Attributions per token",
    )
}

/// `gradpath conductance`.
pub fn run_conductance(args: &ConductanceArgs) -> Result<()> {
    let c = &args.common;
    let opts = ConductanceOptions {
        path: path_options(&c.baseline, &args.quadrature)?,
        layers: args.layers.clone(),
        at: args.at.clone(),
        path_boundary: args.path_boundary.clone(),
        token: args.token.clone(),
        influence: args.influence,
    };
    let (ex, bar, input) = start(c)?;
    let r = ex
        .conductance(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    let h = &r.header;
    let what = format!(
        "{} at blocks.*.{} ({} layers, one sweep of {} path points at {}), {} nodes",
        h.method,
        r.at,
        r.layers.len(),
        r.points,
        r.path_boundary,
        r.quadrature
    );
    header_lines(c, h, &what);
    let n = r.layers.len();
    let matrix = r.matrix();
    if !c.run.quiet {
        out!("{:>16}", "token \\ layer");
        for l in &r.layer_indices {
            out!(" {:>10}", l);
        }
        outln!();
        for (i, tk) in h.labels().iter().enumerate() {
            let tk: String = tk.chars().take(16).collect();
            out!("{tk:>16}");
            for j in 0..n {
                out!(" {:>+10.4}", matrix[i * n + j]);
            }
            outln!();
        }
        out!("{:>16}", "total");
        for l in &r.layers {
            out!(" {:>+10.4}", l.total);
        }
        outln!();
        if !args.influence {
            out!("{:>16}", "rel. delta");
            for l in &r.layers {
                out!(" {:>10.2e}", l.relative_delta.unwrap_or(f64::NAN));
            }
            outln!();
            outln!(
                "F(input) = {:.6}   F(baseline) = {:.6}",
                r.f_input,
                r.f_baseline
            );
        }
        if let Some(t) = &r.token {
            outln!(
                "token {} `{}` across layers (score / L2 norm of the layer's token scores):",
                t.index,
                t.token
            );
            for (l, nv) in r.layer_indices.iter().zip(&t.normalised) {
                outln!("  layer {l:>3}: {nv:+.4}");
            }
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    c.output.write_json(&r)?;
    if let Some(path) = &c.output.html {
        let mut rows = info_rows(h, what.clone());
        rows.push((
            "F(input) / F(baseline)",
            format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
        ));
        let cols: Vec<String> = r.layer_indices.iter().map(|l| format!("L{l}")).collect();
        let mut sections = vec![ah::heatmap(
            "Tokens × layers (colour normalised by the largest |value|)",
            &h.labels(),
            &cols,
            &matrix,
            true,
        )];
        let totals: Vec<f64> = r.layers.iter().map(|l| l.total).collect();
        sections.push(ah::heatmap(
            "Layer totals",
            &["total".into()],
            &cols,
            &totals,
            true,
        ));
        if let Some(t) = &r.token {
            sections.push(ah::heatmap(
                &format!("Token `{}` across layers (normalised)", t.token),
                std::slice::from_ref(&t.token),
                &cols,
                &t.normalised,
                true,
            ));
        }
        write(
            path,
            &ah::page(&format!("gradpath · {}", h.method), &rows, &sections),
        )?;
    }
    Ok(())
}

/// `gradpath neuron`.
pub fn run_neuron(args: &NeuronArgs) -> Result<()> {
    let c = &args.common;
    let opts = NeuronOptions {
        path: path_options(&c.baseline, &args.quadrature)?,
        boundary: args.boundary.clone(),
        neuron: args.neuron.parse()?,
        path_boundary: args.path_boundary.clone(),
    };
    let words = args.words.parse()?;
    let (ex, bar, input) = start(c)?;
    let mut r = ex
        .neuron(&input, &opts)
        .map_err(|e| c.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    if let Some(how) = words {
        r.merge_words(how)?;
    }
    let what = format!(
        "neuron conductance of {}{:?}, path at {}, {} × {}",
        r.boundary, r.neuron, r.path_boundary, r.quadrature, r.steps
    );
    header_lines(c, &r.header, &what);
    print_scores(c, &r);
    if !c.run.quiet {
        outln!("Σ attributions = {:.6}", r.total);
    }
    finish_token_scores(
        c,
        &r,
        "gradpath · neuron conductance",
        &info_rows(&r.header, what),
        "Attributions per token",
    )
}
