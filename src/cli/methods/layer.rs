//! `gradpath layer-ig`, `conductance` and `neuron`: the layer methods of `attribution::layer`.

use super::*;

/// `gradpath layer-ig`.
pub fn run_layer_ig(args: &LayerIgArgs) -> Result<()> {
    let a = &args.common;
    let (rule, al, w) = rule_of(a, a.steps)?;
    let s = setup(a, "layer-ig", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let all = boundaries(p.model, p.ids, p.type_ids)?;
    boundary_shape(&all, &args.boundary)?;
    let batch = s.batch(a, a.steps)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = layer_integrated_gradients(&p, &args.boundary, &al, &w, batch, &mut prog)?;
    bar.finish_and_clear();
    let l = &r.layers[0];
    let what = format!("layer IG at {}, {} × {}", l.boundary, rule.name(), a.steps);
    header(a, &s, &what);
    let sc = scores(a, &s, &l.per_token)?;
    if !a.quiet {
        if l.per_token.is_empty() {
            println!("(the boundary has no token axis; total = {:.6})", l.total);
        } else {
            print!("{}", report::table::render(&sc, 20));
        }
        print_delta(&r, 0);
    }
    let mut j = base_json(a, &s, "layer_integrated_gradients");
    j["boundary"] = json!(l.boundary);
    j["shape"] = json!(l.shape);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["batch"] = json!(batch);
    j["attributions"] = json!(l.per_token);
    j["total"] = json!(l.total);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    j["delta"] = json!(l.delta);
    j["relative_delta"] = json!(l.relative_delta);
    j["path"] = json!({"alphas": r.path_alphas, "f": r.path_f});
    let mut rows = info_rows(a, &s, what);
    rows.push((
        "F(input) / F(baseline)",
        format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
    ));
    rows.push((
        "completeness delta",
        format!("{:+.3e}", l.delta.unwrap_or(f64::NAN)),
    ));
    finish_token_scores(
        a,
        &s,
        j,
        &sc,
        "gradpath · layer integrated gradients",
        &rows,
        "Attributions per token",
    )
}

fn print_delta(r: &LayerResult, i: usize) {
    let l = &r.layers[i];
    println!(
        "F(input) = {:.6}   F(baseline) = {:.6}   Σ attributions = {:.6}",
        r.f_input, r.f_baseline, l.total
    );
    if let (Some(d), Some(rd)) = (l.delta, l.relative_delta) {
        println!("completeness delta = {d:+.3e}   relative = {rd:.3e}");
    }
}

/// Index of `token` (as printed, or a number) in the input.
fn token_index(tokens: &[String], token: &str) -> Result<usize> {
    if let Some(i) = tokens.iter().position(|t| t == token) {
        return Ok(i);
    }
    match token.parse::<usize>() {
        Ok(i) if i < tokens.len() => Ok(i),
        Ok(i) => Err(Error::Input(format!(
            "--token {i} is out of range: the input has {} tokens (0..{})",
            tokens.len(),
            tokens.len() - 1
        ))),
        Err(_) => Err(Error::Input(format!(
            "--token `{token}` is not in the input; its tokens are: {}",
            tokens.join(" ")
        ))),
    }
}

/// `gradpath conductance`.
pub fn run_conductance(args: &ConductanceArgs) -> Result<()> {
    let a = &args.common;
    warn_words(a, "conductance")?;
    let n_points = if args.influence { a.steps } else { a.steps + 1 };
    let (rule, al, w) = rule_of(a, n_points)?;
    let s = setup(a, "conductance", true)?;
    let token = match &args.token {
        Some(t) => Some(token_index(&s.e.tokens, t)?),
        None => None,
    };
    let target = s.target()?;
    let p0 = s.problem(target);
    let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
    let names = layer_boundaries(&all, &args.at, args.layers.as_deref())?;
    let (x, b) = path_tensors(&s, target, &args.path_boundary)?;
    let p = PathProblem {
        boundary: &args.path_boundary,
        input: &x,
        baseline: &b,
        ..s.problem(target)
    };
    let batch = s.batch(a, n_points)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = if args.influence {
        internal_influence(&p, &names, &al, &w, batch, &mut prog)?
    } else {
        layer_conductance(&p, &names, &al, batch, &mut prog)?
    };
    bar.finish_and_clear();
    let method = if args.influence {
        "internal_influence"
    } else {
        "layer_conductance"
    };
    let what = format!(
        "{method} at blocks.*.{} ({} layers, one sweep of {} path points at {}), {} nodes",
        args.at,
        names.len(),
        r.points_used,
        args.path_boundary,
        rule.name()
    );
    header(a, &s, &what);
    let layers: Vec<usize> = names
        .iter()
        .filter_map(|n| n.split('.').nth(1)?.parse().ok())
        .collect();
    let t = s.e.len();
    // token × layer matrix
    let mut matrix = vec![0.0; t * names.len()];
    for (j, l) in r.layers.iter().enumerate() {
        for (i, v) in l.per_token.iter().enumerate().take(t) {
            matrix[i * names.len() + j] = *v;
        }
    }
    let curve = token.map(|ti| {
        r.layers
            .iter()
            .map(|l| {
                let n = l.per_token.iter().map(|v| v * v).sum::<f64>().sqrt();
                let v = l.per_token.get(ti).copied().unwrap_or(0.0);
                (v, if n > 0.0 { v / n } else { 0.0 })
            })
            .collect::<Vec<_>>()
    });
    if !a.quiet {
        print!("{:>16}", "token \\ layer");
        for l in &layers {
            print!(" {:>10}", l);
        }
        println!();
        for (i, tk) in s.e.tokens.iter().enumerate() {
            let tk: String = tk.chars().take(16).collect();
            print!("{tk:>16}");
            for j in 0..names.len() {
                print!(" {:>+10.4}", matrix[i * names.len() + j]);
            }
            println!();
        }
        print!("{:>16}", "total");
        for l in &r.layers {
            print!(" {:>+10.4}", l.total);
        }
        println!();
        if !args.influence {
            print!("{:>16}", "rel. delta");
            for l in &r.layers {
                print!(" {:>10.2e}", l.relative_delta.unwrap_or(f64::NAN));
            }
            println!();
            println!(
                "F(input) = {:.6}   F(baseline) = {:.6}",
                r.f_input, r.f_baseline
            );
        }
        if let (Some(ti), Some(c)) = (token, &curve) {
            println!(
                "token {ti} `{}` across layers (score / L2 norm of the layer's token scores):",
                s.e.tokens[ti]
            );
            for (l, (_, nv)) in layers.iter().zip(c) {
                println!("  layer {l:>3}: {nv:+.4}");
            }
        }
    }
    let worst = r
        .layers
        .iter()
        .filter_map(|l| l.relative_delta)
        .fold(0.0f64, f64::max);
    let ends_hint = if rule == Rule::GaussLegendre && !args.influence {
        ", or use --method captum-trapezoid, whose nodes include both path ends"
    } else {
        ""
    };
    let warning = (worst > 0.01).then(|| {
        format!(
            "the largest per-layer relative completeness delta is {worst:.3} (above 1 %): conductance \
             uses the gradient at the left point of each step (first order, as Captum), so its delta \
             falls only like 1/steps; raise --steps (e.g. 200){ends_hint}. A boundary that the residual \
             stream bypasses (attention patterns, attn/mlp outputs) carries only part of F(x) − F(x′), \
             and its delta stays large at any number of steps"
        )
    });
    if let Some(w) = &warning {
        eprintln!("warning: {w}");
    }
    let mut j = base_json(a, &s, method);
    j["warnings"] = json!(warning.iter().collect::<Vec<_>>());
    j["at"] = json!(args.at);
    j["path_boundary"] = json!(args.path_boundary);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["points"] = json!(r.points_used);
    j["batch"] = json!(batch);
    j["layer_indices"] = json!(layers);
    j["layers"] = layer_json(&r);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    if let (Some(ti), Some(c)) = (token, &curve) {
        j["token"] = json!({
            "index": ti,
            "token": s.e.tokens[ti],
            "values": c.iter().map(|v| v.0).collect::<Vec<_>>(),
            "normalised": c.iter().map(|v| v.1).collect::<Vec<_>>(),
        });
    }
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let mut rows = info_rows(a, &s, what.clone());
        rows.push((
            "F(input) / F(baseline)",
            format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
        ));
        let cols: Vec<String> = layers.iter().map(|l| format!("L{l}")).collect();
        let mut sections = vec![ah::heatmap(
            "Tokens × layers (colour normalised by the largest |value|)",
            &s.e.tokens,
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
        if let (Some(ti), Some(c)) = (token, &curve) {
            let nv: Vec<f64> = c.iter().map(|v| v.1).collect();
            sections.push(ah::heatmap(
                &format!("Token `{}` across layers (normalised)", s.e.tokens[ti]),
                &[s.e.tokens[ti].clone()],
                &cols,
                &nv,
                true,
            ));
        }
        write(
            path,
            &ah::page(&format!("gradpath · {method}"), &rows, &sections),
        )?;
    }
    Ok(())
}

/// `gradpath neuron`.
pub fn run_neuron(args: &NeuronArgs) -> Result<()> {
    let a = &args.common;
    let (rule, al, w) = rule_of(a, a.steps)?;
    let s = setup(a, "neuron", true)?;
    let target = s.target()?;
    let p0 = s.problem(target);
    let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
    let shape = boundary_shape(&all, &args.boundary)?;
    crate::attribution::layer::flat_index(&shape, &args.neuron, &args.boundary)?;
    let (x, b) = path_tensors(&s, target, &args.path_boundary)?;
    let p = PathProblem {
        boundary: &args.path_boundary,
        input: &x,
        baseline: &b,
        ..s.problem(target)
    };
    let batch = s.batch(a, a.steps)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = neuron_conductance(&p, &args.boundary, &args.neuron, &al, &w, batch, &mut prog)?;
    bar.finish_and_clear();
    let l = &r.layers[0];
    let what = format!(
        "neuron conductance of {}{:?}, path at {}, {} × {}",
        args.boundary,
        args.neuron,
        args.path_boundary,
        rule.name(),
        a.steps
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &l.per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!("Σ attributions = {:.6}", l.total);
    }
    let mut j = base_json(a, &s, "neuron_conductance");
    j["boundary"] = json!(args.boundary);
    j["neuron"] = json!(args.neuron);
    j["path_boundary"] = json!(args.path_boundary);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["attributions"] = json!(l.per_token);
    j["total"] = json!(l.total);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    finish_token_scores(
        a,
        &s,
        j,
        &sc,
        "gradpath · neuron conductance",
        &info_rows(a, &s, what),
        "Attributions per token",
    )
}
