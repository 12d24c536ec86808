//! Layer IG, layer conductance (all layers in one sweep), neuron conductance, internal influence,
//! saliency, input × gradient, NoiseTunnel and feature ablation against Captum 0.9 goldens
//! (`tests/reference/make_method_goldens.py`) on tiny random BERT / BERT-embedding / DistilBERT
//! models, in f64: max |ours − Captum| ≤ 1e-8 × max(1, max |Captum|) (the token-IG tolerance of
//! `models_parity.rs`). Run with `--nocapture` to see the measured max differences.

use gradpath::attribution::layer::{boundaries, layer_boundaries};
use gradpath::attribution::{
    ablation, gradient_attribution, internal_influence, layer_conductance,
    layer_integrated_gradients, neuron_conductance, noise_tunnel, GradMethod, NoiseKind,
    PathProblem, Target, TargetKind,
};
use gradpath::integrate::{captum_exact, Rule};
use gradpath::io::{ModelDir, Weights};
use gradpath::models::{Batch, Encoder, Hooks, Model};
use gradpath::{DType, Tensor};
use std::path::PathBuf;

const MODELS: &[&str] = &["tiny-bert", "tiny-bert-embed", "tiny-distilbert"];
const TOL: f64 = 1e-8;
const RUNS: &[(&str, Rule, usize)] = &[
    ("gausslegendre20", Rule::GaussLegendre, 20),
    ("riemann_trapezoid20", Rule::CaptumTrapezoid, 20),
];

fn model_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn goldens(name: &str) -> Weights {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/methods")
        .join(format!("{name}.safetensors"));
    Weights::open(&p, DType::F64).unwrap()
}

/// max |a − b| ≤ tol · max(1, max |b|); returns the relative max difference.
fn check(what: &str, got: &[f64], want: &Tensor, tol: f64) -> f64 {
    let w = want.to_vec_f64().unwrap();
    assert_eq!(
        got.len(),
        w.len(),
        "{what}: {} values, golden has {}",
        got.len(),
        w.len()
    );
    let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&w)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff <= tol * scale,
        "{what}: max diff {diff:.3e} > {tol:e} × scale {scale:.3e}; got {:?} want {:?}",
        &got[..3.min(got.len())],
        &w[..3.min(w.len())]
    );
    assert!(w.iter().any(|v| *v != 0.0), "{what}: golden is all zeros");
    diff / scale
}

fn scalar(g: &Weights, k: &str) -> f64 {
    g.get(k).unwrap().to_vec_f64().unwrap()[0]
}

struct Case {
    model: Encoder,
    g: Weights,
    target: Target,
}

fn case(name: &str) -> Case {
    let model = Encoder::load(&ModelDir::open(&model_dir(name)).unwrap(), DType::F64).unwrap();
    let g = goldens(name);
    let target = if model.head.is_some() {
        Target::Class {
            class: 1,
            kind: TargetKind::Logit,
        }
    } else {
        // the reference sentence of make_model_goldens.py, read from the model goldens
        let mg = Weights::open(&model_dir(name).join("goldens.safetensors"), DType::F64).unwrap();
        let ids = mg.get_ids("ref.input_ids").unwrap();
        let out = model
            .forward(
                &Batch::repeat(&ids, &vec![0; ids.len()], 1),
                &mut Hooks::new(),
            )
            .unwrap();
        let p = out.pooled.unwrap().into_value();
        let c = p.shape()[1];
        Target::Similarity {
            reference: p.reshape(&[c]).unwrap(),
        }
    };
    Case { model, g, target }
}

/// Runs `f(problem, sentence prefix)` for both sentences of a model.
fn each_sentence(c: &Case, mut f: impl FnMut(&PathProblem, &str)) {
    for s in 0..2 {
        let pre = format!("s{s}.");
        let ids = c.g.get_ids(&format!("{pre}input_ids")).unwrap();
        let base = c.g.get_ids(&format!("{pre}baseline_ids")).unwrap();
        let types = vec![0; ids.len()];
        let x = c.model.word_embeddings(&ids).unwrap();
        let b = c.model.word_embeddings(&base).unwrap();
        let p = PathProblem {
            model: &c.model,
            ids: &ids,
            type_ids: &types,
            boundary: "hook_embed",
            input: &x,
            baseline: &b,
            target: &c.target,
        };
        f(&p, &pre);
    }
}

fn delta_close(what: &str, got: f64, want: f64) -> f64 {
    let d = (got - want).abs();
    assert!(
        d <= TOL * (1.0 + want.abs()),
        "{what}: delta {got} vs Captum {want}"
    );
    d
}

#[test]
fn layer_ig_matches_captum_at_three_boundaries() {
    let mut worst: f64 = 0.0;
    let mut n = 0;
    for m in MODELS {
        let c = case(m);
        each_sentence(&c, |p, pre| {
            for b in [
                "embed.hook_out",
                "blocks.0.hook_resid_post",
                "blocks.1.mlp.hook_post",
            ] {
                for (tag, rule, steps) in RUNS {
                    let (a, w) = captum_exact(*rule, *steps).unwrap();
                    let r = layer_integrated_gradients(p, b, &a, &w, 7, &mut |_, _| {}).unwrap();
                    let l = &r.layers[0];
                    let key = format!("{pre}lig.{b}.{tag}");
                    worst = worst.max(check(
                        &format!("{m} {key}"),
                        &l.per_coordinate,
                        &c.g.get(&format!("{key}.attr")).unwrap(),
                        TOL,
                    ));
                    delta_close(
                        &key,
                        l.delta.unwrap(),
                        scalar(&c.g, &format!("{key}.delta")),
                    );
                    assert!((r.f_input - scalar(&c.g, &format!("{pre}f_input"))).abs() < 1e-10);
                    n += 1;
                }
            }
        });
    }
    eprintln!("layer IG: {n} comparisons, worst relative max diff {worst:.2e}");
}

#[test]
fn conductance_all_layers_in_one_sweep_matches_captum() {
    let mut worst: f64 = 0.0;
    let mut worst_delta: f64 = 0.0;
    for m in MODELS {
        let c = case(m);
        each_sentence(&c, |p, pre| {
            let all = boundaries(p.model, p.ids, p.type_ids).unwrap();
            let names = layer_boundaries(&all, "hook_resid_post", None).unwrap();
            assert_eq!(names.len(), 2);
            for (tag, rule, steps) in RUNS {
                // Captum: alphas_func(n_steps + 1), weights unused.
                let (a, _) = captum_exact(*rule, steps + 1).unwrap();
                let mut passes = 0;
                let r = layer_conductance(p, &names, &a, 6, &mut |_, _| passes += 1).unwrap();
                // one sweep over the n + 1 points for all layers (in batches of 6 rows)
                assert_eq!(r.points_used, steps + 1);
                assert_eq!(passes, (steps + 1).div_ceil(6));
                for (l, la) in r.layers.iter().enumerate() {
                    let key = format!("{pre}lc.{tag}.l{l}");
                    worst = worst.max(check(
                        &format!("{m} {key}"),
                        &la.per_coordinate,
                        &c.g.get(&format!("{key}.attr")).unwrap(),
                        TOL,
                    ));
                    worst_delta = worst_delta.max(delta_close(
                        &key,
                        la.delta.unwrap(),
                        scalar(&c.g, &format!("{key}.delta")),
                    ));
                }
            }
        });
    }
    eprintln!("layer conductance: worst relative max diff {worst:.2e}, worst delta diff {worst_delta:.2e}");
}

#[test]
fn neuron_conductance_and_internal_influence_match_captum() {
    let (mut wn, mut wi): (f64, f64) = (0.0, 0.0);
    for m in MODELS {
        let c = case(m);
        each_sentence(&c, |p, pre| {
            for (tag, rule, steps) in RUNS {
                let (a, w) = captum_exact(*rule, *steps).unwrap();
                let names: Vec<String> = (0..2)
                    .map(|l| format!("blocks.{l}.hook_resid_post"))
                    .collect();
                let ii = internal_influence(p, &names, &a, &w, 8, &mut |_, _| {}).unwrap();
                for (l, name) in names.iter().enumerate() {
                    let key = format!("{pre}ii.{tag}.l{l}");
                    wi = wi.max(check(
                        &format!("{m} {key}"),
                        &ii.layers[l].per_coordinate,
                        &c.g.get(&format!("{key}.attr")).unwrap(),
                        TOL,
                    ));
                    let r =
                        neuron_conductance(p, name, &[0, 5], &a, &w, 8, &mut |_, _| {}).unwrap();
                    let key = format!("{pre}nc.{tag}.l{l}");
                    wn = wn.max(check(
                        &format!("{m} {key}"),
                        &r.layers[0].per_coordinate,
                        &c.g.get(&format!("{key}.attr")).unwrap(),
                        TOL,
                    ));
                }
            }
        });
    }
    eprintln!("neuron conductance: worst relative max diff {wn:.2e}; internal influence: {wi:.2e}");
}

#[test]
fn saliency_input_x_gradient_and_noise_tunnel_match_captum() {
    let mut worst: f64 = 0.0;
    for m in MODELS {
        let c = case(m);
        each_sentence(&c, |p, pre| {
            for (meth, key) in [
                (GradMethod::Saliency, "saliency"),
                (GradMethod::InputXGradient, "input_x_gradient"),
            ] {
                let (_, a) = gradient_attribution(p, meth).unwrap();
                worst = worst.max(check(
                    &format!("{m} {pre}{key}"),
                    &a,
                    &c.g.get(&format!("{pre}{key}")).unwrap(),
                    TOL,
                ));
            }
            let noise = c.g.get(&format!("{pre}nt.noise")).unwrap();
            for kind in [
                NoiseKind::SmoothGrad,
                NoiseKind::SmoothGradSq,
                NoiseKind::VarGrad,
            ] {
                let a =
                    noise_tunnel(p, GradMethod::Saliency, kind, &noise, 3, &mut |_, _| {}).unwrap();
                worst = worst.max(check(
                    &format!("{m} {pre}nt.{}", kind.name()),
                    &a,
                    &c.g.get(&format!("{pre}nt.{}", kind.name())).unwrap(),
                    TOL,
                ));
                // Streaming the seeded noise row by row (what `saliency --smooth` runs) gives
                // exactly the result on the whole noise tensor, whatever the batch.
                let whole =
                    gradpath::attribution::gradients::gaussian_noise(p, 7, 0.1, 42).unwrap();
                let a =
                    noise_tunnel(p, GradMethod::Saliency, kind, &whole, 7, &mut |_, _| {}).unwrap();
                for batch in [1, 3] {
                    let b = gradpath::attribution::gradients::noise_tunnel_seeded(
                        p,
                        GradMethod::Saliency,
                        kind,
                        7,
                        0.1,
                        42,
                        batch,
                        &mut |_, _| {},
                    )
                    .unwrap();
                    assert_eq!(
                        a,
                        b,
                        "{m} {pre}{}: streamed noise, batch {batch}",
                        kind.name()
                    );
                }
            }
        });
    }
    eprintln!("saliency / input×gradient / NoiseTunnel: worst relative max diff {worst:.2e}");
}

#[test]
fn embedding_ablation_matches_captum_feature_ablation() {
    let mut worst: f64 = 0.0;
    for m in MODELS {
        let c = case(m);
        each_sentence(&c, |p, pre| {
            let zero = Tensor::zeros(p.input.shape(), DType::F64);
            for (rep, key) in [(p.baseline, "baseline"), (&zero, "zero")] {
                let r = ablation(p, rep, 4, &mut |_, _| {}).unwrap();
                // Captum gives every coordinate of a token's group the token's value.
                let d = p.input.shape()[1];
                let per_coord: Vec<f64> = r
                    .per_token
                    .iter()
                    .flat_map(|v| std::iter::repeat_n(*v, d))
                    .collect();
                worst = worst.max(check(
                    &format!("{m} {pre}ablation.{key}"),
                    &per_coord,
                    &c.g.get(&format!("{pre}ablation.{key}")).unwrap(),
                    TOL,
                ));
            }
        });
    }
    eprintln!("feature ablation: worst relative max diff {worst:.2e}");
}

// ----------------------------------------------------------------------------------------------
// Boundary API and method properties (no Captum counterpart)
// ----------------------------------------------------------------------------------------------

fn logits(model: &Encoder, ids: &[usize], hooks: &mut Hooks) -> Vec<f64> {
    let out = model
        .forward(&Batch::repeat(ids, &vec![0; ids.len()], 1), hooks)
        .unwrap();
    out.logits.unwrap().value().to_vec_f64().unwrap()
}

#[test]
fn patch_and_head_mask_act_where_they_should() {
    let c = case("tiny-bert");
    let ids = c.g.get_ids("s0.input_ids").unwrap();
    let t = ids.len();
    let plain = logits(&c.model, &ids, &mut Hooks::new());
    // keep everything: identical output
    let keep = Tensor::ones(&[1, t, 32], DType::F64);
    let zero = Tensor::zeros(&[1, t, 32], DType::F64);
    let same = logits(
        &c.model,
        &ids,
        &mut Hooks::new().patch("blocks.0.hook_resid_post", keep, zero.clone()),
    );
    assert_eq!(plain, same);
    // patching one token's row with the value of a full replacement gives the same output
    let mut hooks = Hooks::new().capture(&["blocks.0.hook_resid_post"]);
    c.model
        .forward(&Batch::repeat(&ids, &vec![0; t], 1), &mut hooks)
        .unwrap();
    let mut y = hooks
        .get("blocks.0.hook_resid_post")
        .unwrap()
        .value()
        .to_vec_f64()
        .unwrap();
    let mut k = vec![1.0; t * 32];
    let mut v = vec![0.0; t * 32];
    for d in 0..32 {
        k[2 * 32 + d] = 0.0;
        v[2 * 32 + d] = 0.5;
        y[2 * 32 + d] = 0.5;
    }
    let patched = logits(
        &c.model,
        &ids,
        &mut Hooks::new().patch(
            "blocks.0.hook_resid_post",
            Tensor::from_f64(&k, &[1, t, 32], DType::F64).unwrap(),
            Tensor::from_f64(&v, &[1, t, 32], DType::F64).unwrap(),
        ),
    );
    let replaced = logits(
        &c.model,
        &ids,
        &mut Hooks::new().replace(
            "blocks.0.hook_resid_post",
            gradpath::Var::constant(Tensor::from_f64(&y, &[1, t, 32], DType::F64).unwrap()),
        ),
    );
    assert_ne!(patched, plain);
    for (a, b) in patched.iter().zip(&replaced) {
        assert!((a - b).abs() < 1e-12, "{patched:?} vs {replaced:?}");
    }
    // head mask: the masked head's pattern is zero, the others unchanged, the output changes
    let mut hooks = Hooks::new()
        .mask_heads(1, vec![1.0, 0.0, 1.0, 1.0])
        .capture(&["blocks.1.attn.hook_pattern"]);
    let masked = logits(&c.model, &ids, &mut hooks);
    let pat = hooks
        .get("blocks.1.attn.hook_pattern")
        .unwrap()
        .value()
        .to_vec_f64()
        .unwrap();
    let mg = Weights::open(
        &model_dir("tiny-bert").join("goldens.safetensors"),
        DType::F64,
    )
    .unwrap();
    let gold = mg
        .get("s0.blocks.1.attn.hook_pattern")
        .unwrap()
        .to_vec_f64()
        .unwrap();
    let tt = t * t;
    for h in 0..4 {
        for i in 0..tt {
            let (got, w) = (pat[h * tt + i], gold[h * tt + i]);
            if h == 1 {
                assert_eq!(got, 0.0);
            } else {
                assert!((got - w).abs() < 1e-12);
            }
        }
    }
    assert_ne!(masked, plain);
    // errors: head mask of a missing layer, wrong number of factors, unknown patch name
    for mut h in [
        Hooks::new().mask_heads(7, vec![1.0; 4]),
        Hooks::new().mask_heads(0, vec![1.0; 3]),
        Hooks::new().patch("blocks.0.nope", zero.clone(), zero.clone()),
    ] {
        let e = c
            .model
            .forward(&Batch::repeat(&ids, &vec![0; t], 1), &mut h)
            .err()
            .expect("an error");
        eprintln!("expected error: {e}");
    }
}

#[test]
fn perturbation_properties() {
    let c = case("tiny-bert");
    each_sentence(&c, |p, _| {
        // replacing a token by itself changes nothing
        let r = ablation(p, p.input, 5, &mut |_, _| {}).unwrap();
        assert!(
            r.per_token.iter().all(|v| v.abs() < 1e-12),
            "{:?}",
            r.per_token
        );
        // σ = 0: every draw is F(x)
        let s = gradpath::attribution::noise_sensitivity(p, 0.0, 3, 1, 4, &mut |_, _| {}).unwrap();
        assert!(s.std.iter().all(|v| v.abs() < 1e-12));
        assert!(s.mean.iter().all(|m| (m - s.f_input).abs() < 1e-12));
        // σ > 0: noise on a token moves F, reproducibly with the same seed
        let a = gradpath::attribution::noise_sensitivity(p, 0.5, 4, 7, 4, &mut |_, _| {}).unwrap();
        let b = gradpath::attribution::noise_sensitivity(p, 0.5, 4, 7, 8, &mut |_, _| {}).unwrap();
        assert!(a.std.iter().all(|v| *v > 0.0));
        assert_eq!(a.f.len(), p.ids.len() * 4);
        for (x, y) in a.f.iter().zip(&b.f) {
            assert!((x - y).abs() < 1e-12);
        }
        assert!(gradpath::attribution::noise_sensitivity(p, 0.5, 0, 7, 4, &mut |_, _| {}).is_err());
        // a sub-range perturbs only its positions, with the same draws as the full run there
        let t = p.ids.len();
        let (lo, hi) = (1.min(t), t.saturating_sub(1).max(1.min(t)));
        let r =
            gradpath::attribution::noise_sensitivity_on(p, lo..hi, 0.5, 4, 7, 4, &mut |_, _| {})
                .unwrap();
        assert_eq!(r.f.len(), t * 4);
        for tok in 0..t {
            if (lo..hi).contains(&tok) {
                assert!((r.std[tok] - a.std[tok]).abs() <= 1e-12 * a.std[tok].max(1.0));
            } else {
                assert_eq!(r.std[tok], 0.0);
                assert_eq!(r.mean[tok], r.f_input);
            }
        }
        assert!(gradpath::attribution::noise_sensitivity_on(
            p,
            0..t + 1,
            0.5,
            1,
            7,
            4,
            &mut |_, _| {}
        )
        .is_err());
    });
}

#[test]
fn conductance_converges_to_completeness_with_trapezoid_nodes() {
    // With nodes 0..1 (ends included) the layer differences telescope to y(x) − y(x′), so the
    // delta is the discretisation error of Σ g·Δy alone and falls as the steps grow.
    let c = case("tiny-bert-embed");
    each_sentence(&c, |p, _| {
        let all = boundaries(p.model, p.ids, p.type_ids).unwrap();
        let names = layer_boundaries(&all, "hook_resid_post", None).unwrap();
        let rel = |n: usize| {
            let (a, _) = captum_exact(Rule::CaptumTrapezoid, n + 1).unwrap();
            let r = layer_conductance(p, &names, &a, 64, &mut |_, _| {}).unwrap();
            r.layers
                .iter()
                .map(|l| l.relative_delta.unwrap())
                .fold(0.0, f64::max)
        };
        let (r20, r200) = (rel(20), rel(200));
        eprintln!("conductance relative delta: 20 steps {r20:.2e}, 200 steps {r200:.2e}");
        assert!(r200 < r20 / 5.0, "{r20} -> {r200}");
    });
}
