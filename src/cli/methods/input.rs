//! `gradpath saliency`, `attention`, `ablate` and `sensitivity`: gradient and perturbation
//! methods on the input tokens (`attribution::{gradients, perturb}`) and attention maps.

use super::*;

/// `gradpath saliency`.
pub fn run_saliency(args: &SaliencyArgs) -> Result<()> {
    let a = &args.common;
    let kind = match &args.smooth {
        Some(k) => Some(NoiseKind::parse(k)?),
        None => None,
    };
    if kind.is_some() && args.samples == 0 {
        return Err(Error::Input("--samples must be at least 1".into()));
    }
    let s = setup(a, "saliency", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let method = if args.times_input {
        GradMethod::InputXGradient
    } else {
        GradMethod::Saliency
    };
    let (f, per) = match kind {
        None => gradient_attribution(&p, method)?,
        Some(k) => {
            let noise = crate::attribution::gradients::gaussian_noise(
                &p,
                args.samples,
                args.stdev,
                args.seed,
            )?;
            let batch = s.batch(a, args.samples)?;
            let bar = progress_bar(a.quiet);
            let mut prog = |d: usize, t: usize| {
                bar.set_length(t as u64);
                bar.set_position(d as u64);
            };
            let v = noise_tunnel(&p, method, k, &noise, batch, &mut prog)?;
            bar.finish_and_clear();
            (p.endpoints()?.0, v)
        }
    };
    let c = s.x.shape()[1];
    let per_token: Vec<f64> = per.chunks(c).map(|r| r.iter().sum()).collect();
    let what = match kind {
        None => method.name().to_string(),
        Some(k) => format!(
            "{} of {} ({} samples, σ = {}, seed {})",
            k.name(),
            method.name(),
            args.samples,
            args.stdev,
            args.seed
        ),
    };
    header(a, &s, &what);
    let sc = scores(a, &s, &per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!("F(input) = {f:.6}");
    }
    let mut j = base_json(a, &s, method.name());
    j["boundary"] = json!("hook_embed");
    j["noise_tunnel"] = match kind {
        Some(k) => {
            json!({"type": k.name(), "samples": args.samples, "stdev": args.stdev, "seed": args.seed})
        }
        None => Value::Null,
    };
    j["attributions"] = json!(per_token);
    j["f_input"] = json!(f);
    finish_token_scores(
        a,
        &s,
        j,
        &sc,
        &format!("gradpath · {}", method.name()),
        &info_rows(a, &s, what),
        "Attribution per token (sum over the embedding)",
    )
}

fn parse_mask(specs: &[String]) -> Result<Vec<(usize, usize)>> {
    specs
        .iter()
        .map(|m| {
            let bad = || Error::Input(format!("--mask-head `{m}`: expected LAYER:HEAD, e.g. 3:7"));
            let (l, h) = m.split_once(':').ok_or_else(bad)?;
            Ok((
                l.trim().parse().map_err(|_| bad())?,
                h.trim().parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

/// `gradpath attention`.
pub fn run_attention(args: &AttentionArgs) -> Result<()> {
    let a = &args.common;
    warn_words(a, "attention")?;
    let masks = parse_mask(&args.mask_head)?;
    let s = setup(a, "attention", false)?;
    let all = boundaries(s.model.as_ref(), &s.e.ids, &s.e.type_ids)?;
    let n_layers = all
        .iter()
        .filter(|(n, _)| n.ends_with(".attn.hook_pattern"))
        .count();
    let n_heads = all
        .iter()
        .find(|(n, _)| n.ends_with(".attn.hook_pattern"))
        .map(|(_, sh)| sh[0])
        .unwrap_or(0);
    if n_layers == 0 {
        return Err(Error::Input(
            "this model has no attention pattern boundaries".into(),
        ));
    }
    let check = |l: usize, h: usize, what: &str| -> Result<()> {
        if l >= n_layers {
            return Err(Error::Input(format!(
                "{what}: layer {l} is out of range: this model has {n_layers} layers (0..{})",
                n_layers - 1
            )));
        }
        if h >= n_heads {
            return Err(Error::Input(format!(
                "{what}: head {h} is out of range: this model has {n_heads} heads (0..{})",
                n_heads - 1
            )));
        }
        Ok(())
    };
    let layer = args.layer.unwrap_or(n_layers - 1);
    check(layer, args.head, "--layer/--head")?;
    let mut per_layer: Vec<(usize, Vec<f64>)> = Vec::new();
    for (l, h) in &masks {
        check(*l, *h, "--mask-head")?;
        match per_layer.iter_mut().find(|(x, _)| x == l) {
            Some((_, f)) => f[*h] = 0.0,
            None => {
                let mut f = vec![1.0; n_heads];
                f[*h] = 0.0;
                per_layer.push((*l, f));
            }
        }
    }
    let m = attention_maps(s.model.as_ref(), &s.e.ids, &s.e.type_ids, &per_layer)?;
    let t = m.pos;
    let sel = m.head(layer, args.head);
    if !a.quiet {
        println!("{}", s.model.describe());
        println!(
            "attention: {} layers × {} heads, {} tokens; layer {layer} head {}: strongest key per query",
            m.n_layers, m.n_heads, t, args.head
        );
        for q in 0..t {
            let row = &sel[q * t..(q + 1) * t];
            let (k, v) = row
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(k, v)| (k, *v))
                .unwrap_or((0, 0.0));
            println!("  {:>16} → {:<16} {v:.3}", s.e.tokens[q], s.e.tokens[k]);
        }
    }
    let mut j = base_json(a, &s, "attention");
    j["n_layers"] = json!(m.n_layers);
    j["n_heads"] = json!(m.n_heads);
    j["masked_heads"] = json!(masks.iter().map(|(l, h)| json!([l, h])).collect::<Vec<_>>());
    let nested: Vec<Vec<Vec<Vec<f64>>>> = (0..m.n_layers)
        .map(|l| {
            (0..m.n_heads)
                .map(|h| m.head(l, h).chunks(t).map(|r| r.to_vec()).collect())
                .collect()
        })
        .collect();
    j["attention"] = json!(nested);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let rows = vec![
            ("model", s.model.describe()),
            ("text", a.text.clone()),
            (
                "shown",
                format!(
                    "layer {layer}, head {} (choose with --layer/--head)",
                    args.head
                ),
            ),
        ];
        let grid = ah::attention_grid(
            m.n_layers,
            m.n_heads,
            t,
            &|l, h| m.head(l, h).to_vec(),
            (layer, args.head),
        );
        let heat = ah::heatmap(
            &format!(
                "Layer {layer}, head {}: query (rows) × key (columns)",
                args.head
            ),
            &s.e.tokens,
            &s.e.tokens,
            sel,
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
    let a = &args.common;
    let s = setup(a, "ablate", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let zero = Tensor::zeros(s.x.shape(), s.x.dtype());
    let rep = if args.replace == "zero" { &zero } else { &s.b };
    let batch = s.batch(a, s.e.len() + 1)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = ablation(&p, rep, batch, &mut prog)?;
    bar.finish_and_clear();
    let what = format!(
        "embedding ablation: each token's word embedding replaced by {}",
        if args.replace == "zero" {
            "zero".to_string()
        } else {
            format!("the {} baseline's", s.baseline.name())
        }
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &r.per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!(
            "F(input) = {:.6}   (score = F(input) − F(ablated))",
            r.f_input
        );
    }
    let mut j = base_json(a, &s, "embedding_ablation");
    j["replace"] = json!(args.replace);
    j["attributions"] = json!(r.per_token);
    j["f_input"] = json!(r.f_input);
    j["f_ablated"] = json!(r.f_ablated);
    finish_token_scores(
        a,
        &s,
        j,
        &sc,
        "gradpath · embedding ablation",
        &info_rows(a, &s, what),
        "F(input) − F(token ablated)",
    )
}

/// `gradpath sensitivity`.
pub fn run_sensitivity(args: &SensitivityArgs) -> Result<()> {
    let a = &args.common;
    if args.draws == 0 {
        return Err(Error::Input("--draws must be at least 1".into()));
    }
    if !(args.sigma.is_finite() && args.sigma >= 0.0) {
        return Err(Error::Input(format!(
            "--sigma must be a finite number ≥ 0, got {}",
            args.sigma
        )));
    }
    let s = setup(a, "sensitivity", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let batch = s.batch(a, s.e.len() * args.draws + 1)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = noise_sensitivity(&p, args.sigma, args.draws, args.seed, batch, &mut prog)?;
    bar.finish_and_clear();
    let what = format!(
        "noise sensitivity: N(0, {}²) on one token's word embedding, {} draws (seed {})",
        args.sigma, args.draws, args.seed
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &r.std)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!(
            "F(input) = {:.6}   (score = standard deviation of F over the draws)",
            r.f_input
        );
    }
    let mut j = base_json(a, &s, "noise_sensitivity");
    j["sigma"] = json!(args.sigma);
    j["draws"] = json!(args.draws);
    j["seed"] = json!(args.seed);
    j["std"] = json!(r.std);
    j["mean"] = json!(r.mean);
    j["f_input"] = json!(r.f_input);
    finish_token_scores(
        a,
        &s,
        j,
        &sc,
        "gradpath · noise sensitivity",
        &info_rows(a, &s, what),
        "Standard deviation of F per noised token",
    )
}
