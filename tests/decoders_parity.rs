//! Tiny random GPT-2 / Llama (GQA 4→2, llama3 RoPE scaling, untied head) / Qwen2 (GQA 4→1, q/k/v
//! biases, linear RoPE scaling, tied head), made by `tests/reference/make_decoder_goldens.py` with
//! transformers, against PyTorch: logits at every position and every boundary activation, in f64
//! (1e-10 of the tensor's scale) and f32 (1e-4); and next-token IG against Captum
//! `LayerIntegratedGradients` on the token embeddings (f64, 1e-8 of the scale).

mod common;

use common::{check_captum, check_rel as check, golden_scalar, token_ig};
use gradpath::attribution::{Target, TargetKind};
use gradpath::integrate::{captum_exact, Rule};
use gradpath::io::Weights;
use gradpath::models::{self, Batch, Hooks};
use gradpath::{DType, Tensor};
use std::path::PathBuf;

const MODELS: &[(&str, usize)] = &[
    // (name, boundaries per block)
    ("tiny-gpt2", 15),
    ("tiny-llama", 18),
    ("tiny-qwen2", 18),
];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn goldens(name: &str) -> Weights {
    Weights::open(&dir(name).join("goldens.safetensors"), DType::F64).unwrap()
}

fn activations(name: &str, per_block: usize, dtype: DType, tol: f64) {
    let model = models::load(&dir(name), dtype).unwrap();
    assert!(model.is_decoder());
    let g = goldens(name);
    let mut worst: f64 = 0.0;
    for s in 0..2 {
        let ids = g.get_ids(&format!("s{s}.input_ids")).unwrap();
        let mut hooks = Hooks::new().capture_all();
        model
            .forward(&Batch::repeat(&ids, &vec![0; ids.len()], 1), &mut hooks)
            .unwrap();
        let mut compared = 0;
        for (hook, v) in hooks.captured() {
            let key = format!("s{s}.{hook}");
            assert!(g.contains(&key), "{name}: golden has no `{key}`");
            worst = worst.max(check(
                &format!("{name} {dtype} {key}"),
                v.value(),
                &g.get(&key).unwrap(),
                tol,
            ));
            compared += 1;
        }
        // embed (+ pos) + embed.hook_out + blocks + ln_final + logits
        let n_layers = 2;
        let pos = usize::from(name == "tiny-gpt2");
        assert_eq!(
            compared,
            4 + pos + per_block * n_layers,
            "{name}: {compared} boundaries compared"
        );
    }
    eprintln!("{name} {dtype}: worst relative diff {worst:.2e}");
}

#[test]
fn activations_f64() {
    for &(m, k) in MODELS {
        activations(m, k, DType::F64, 1e-10);
    }
}

#[test]
fn activations_f32() {
    for &(m, k) in MODELS {
        activations(m, k, DType::F32, 1e-4);
    }
}

#[test]
fn next_token_ig_matches_captum_lig() {
    for &(name, _) in MODELS {
        let model = models::load(&dir(name), DType::F64).unwrap();
        let g = goldens(name);
        let mut worst: f64 = 0.0;
        for s in 0..2 {
            let ids = g.get_ids(&format!("s{s}.input_ids")).unwrap();
            let base_ids = g.get_ids(&format!("s{s}.baseline_ids")).unwrap();
            let token = g.get_ids(&format!("s{s}.target_token")).unwrap()[0];
            let target = Target::Token {
                position: ids.len() - 1,
                token,
                kind: TargetKind::Logit,
            };
            let x = model.word_embeddings(&ids).unwrap();
            let b = model.word_embeddings(&base_ids).unwrap();
            for (tag, rule, n) in [
                ("gausslegendre20", Rule::GaussLegendre, 20),
                ("riemann_trapezoid20", Rule::CaptumTrapezoid, 20),
            ] {
                let (alphas, weights) = captum_exact(rule, n).unwrap();
                let r = token_ig(model.as_ref(), &ids, &b, &target, &alphas, &weights, 7);
                for (got, key) in [
                    (r.f_input, "target_input"),
                    (r.f_baseline, "target_baseline"),
                ] {
                    let want = golden_scalar(&g, &format!("s{s}.lig.{key}"));
                    assert!(
                        (got - want).abs() <= 1e-10 * (1.0 + want.abs()),
                        "{name}: {key} {got} vs {want}"
                    );
                }
                let key = format!("s{s}.lig.{tag}");
                worst = worst.max(check_captum(name, &r, &g, &key, x.shape(), 1e-8));
            }
        }
        eprintln!("{name}: worst relative attribution diff vs Captum {worst:.2e}");
    }
}

/// Greedy generation equals transformers' `generate`, and the prompt-only generation
/// attribution equals Captum `LLMGradientAttribution`'s computation (LIG, log-prob target,
/// earlier outputs appended to input and baseline), gausslegendre 20.
#[test]
fn generation_attribution_matches_captum() {
    use gradpath::attribution::{generation_attribution, greedy, GenerationSpec};
    for &(name, _) in MODELS {
        let model = models::load(&dir(name), DType::F64).unwrap();
        let g = goldens(name);
        let ids = g.get_ids("s0.input_ids").unwrap();
        let base_ids = g.get_ids("s0.baseline_ids").unwrap();
        let want_tokens = g.get_ids("s0.gen.tokens").unwrap();
        let got_tokens = greedy(model.as_ref(), &ids, want_tokens.len(), None).unwrap();
        assert_eq!(got_tokens, want_tokens, "{name}: greedy tokens");
        // The golden baseline is the pad id (2) with specials (BOS) kept.
        let special: Vec<bool> = ids.iter().zip(&base_ids).map(|(a, b)| a == b).collect();
        let (alphas, weights) = captum_exact(Rule::GaussLegendre, 20).unwrap();
        let spec = GenerationSpec {
            prompt: &ids,
            special: &special,
            generated: &got_tokens,
            baseline_token: Some(2),
            kind: TargetKind::LogProb,
            prompt_only: true,
            alphas: &alphas,
            weights: &weights,
            batch: 8,
        };
        let r =
            generation_attribution(model.as_ref(), &spec, &mut |_, _| {}, &mut |_, _| {}).unwrap();
        let want = g
            .get("s0.gen.prompt_only.attr")
            .unwrap()
            .to_vec_f64()
            .unwrap();
        let want_delta = g
            .get("s0.gen.prompt_only.delta")
            .unwrap()
            .to_vec_f64()
            .unwrap();
        let t = ids.len();
        for (s, step) in r.steps.iter().enumerate() {
            let got = &step.ig.per_token;
            // Earlier generated tokens are fixed in prompt-only mode: exactly zero.
            assert!(
                got[t..].iter().all(|&v| v == 0.0),
                "{name}: step {s} {:?}",
                &got[t..]
            );
            let row = Tensor::from_f64(&got[..t], &[t], DType::F64).unwrap();
            let want_row = Tensor::from_f64(&want[s * t..(s + 1) * t], &[t], DType::F64).unwrap();
            check(
                &format!("{name} generation step {s}"),
                &row,
                &want_row,
                1e-8,
            );
            assert!(
                (step.ig.delta - want_delta[s]).abs() <= 1e-8 * (1.0 + want_delta[s].abs()),
                "{name} step {s}: delta {} vs Captum {}",
                step.ig.delta,
                want_delta[s]
            );
        }
        // Default mode: earlier generated tokens are on the path; completeness still holds.
        let full = GenerationSpec {
            prompt_only: false,
            ..spec
        };
        let r =
            generation_attribution(model.as_ref(), &full, &mut |_, _| {}, &mut |_, _| {}).unwrap();
        for (s, step) in r.steps.iter().enumerate() {
            assert_eq!(step.ig.per_token.len(), t + s);
            if s > 0 {
                assert!(step.ig.per_token[t..].iter().any(|&v| v != 0.0));
            }
        }
    }
}

/// A zero baseline enters RMSNorm directly in the Llama family: F changes most of its way right at
/// the start of the path, and the run says so; a token baseline on the same text does not jump.
#[test]
fn zero_baseline_jump_is_flagged() {
    let model = models::load(&dir("tiny-llama"), DType::F64).unwrap();
    let g = goldens("tiny-llama");
    let ids = g.get_ids("s0.input_ids").unwrap();
    let base_ids = g.get_ids("s0.baseline_ids").unwrap();
    let token = g.get_ids("s0.target_token").unwrap()[0];
    let target = Target::Token {
        position: ids.len() - 1,
        token,
        kind: TargetKind::Logit,
    };
    let x = model.word_embeddings(&ids).unwrap();
    let (alphas, weights) = Rule::GaussLegendre.nodes_weights(50).unwrap();
    let run = |b: &Tensor| token_ig(model.as_ref(), &ids, b, &target, &alphas, &weights, 25);
    // zero everywhere but BOS (kept, as the CLI does)
    let mut zv = x.to_vec_f64().unwrap();
    let c = x.shape()[1];
    zv[c..].iter_mut().for_each(|v| *v = 0.0);
    let zero = run(&Tensor::from_f64(&zv, x.shape(), DType::F64).unwrap());
    eprintln!(
        "zero baseline: start jump {:.3}, relative delta {:.3}",
        zero.start_jump(),
        zero.relative_delta
    );
    assert!(zero.start_jump() > 0.25);
    let w = zero.roughness_warning().expect("flagged");
    assert!(w.contains("badly conditioned"), "{w}");
    let pad = run(&model.word_embeddings(&base_ids).unwrap());
    assert!(pad.start_jump() < 0.01, "{}", pad.start_jump());
    assert!(
        pad.roughness_warning().is_none(),
        "{:?}",
        pad.roughness_warning()
    );
}
