//! Tiny random BERT / RoBERTa / DistilBERT models (made by `tests/reference/make_model_goldens.py`
//! with transformers, large random weights and biases) against PyTorch: logits and every boundary
//! activation, in f64 (relative 1e-10 of the tensor's scale) and f32 (1e-4); and token IG against
//! Captum `LayerIntegratedGradients` on the word embeddings (f64, 1e-8 of the scale).

mod common;

use common::{check_captum, check_rel as check, token_ig};
use gradpath::attribution::{Target, TargetKind};
use gradpath::integrate::{captum_exact, Rule};
use gradpath::io::{ModelDir, Weights};
use gradpath::models::{Batch, Encoder, Hooks, Model};
use gradpath::DType;
use std::path::PathBuf;

const MODELS: &[&str] = &[
    "tiny-bert",
    "tiny-bert-embed",
    "tiny-roberta",
    "tiny-distilbert",
];

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn goldens(name: &str) -> Weights {
    Weights::open(&dir(name).join("goldens.safetensors"), DType::F64).unwrap()
}

fn n_sentences(g: &Weights) -> usize {
    (0..)
        .take_while(|i| g.contains(&format!("s{i}.input_ids")))
        .count()
}

fn activations(name: &str, dtype: DType, tol: f64) {
    let model = Encoder::load(&ModelDir::open(&dir(name)).unwrap(), dtype).unwrap();
    let g = goldens(name);
    let ns = n_sentences(&g);
    assert!(ns >= 2, "{name}: goldens have {ns} sentences");
    let mut worst: f64 = 0.0;
    for s in 0..ns {
        let ids = g.get_ids(&format!("s{s}.input_ids")).unwrap();
        let batch = Batch::repeat(&ids, &vec![0; ids.len()], 1);
        let mut hooks = Hooks::new().capture_all();
        let out = model.forward(&batch, &mut hooks).unwrap();
        let mut compared = 0;
        for (hook, v) in hooks.captured() {
            let key = format!("s{s}.{hook}");
            if hook == "hook_logits" || hook == "hook_pooled" {
                continue;
            }
            assert!(g.contains(&key), "{name}: golden has no `{key}`");
            worst = worst.max(check(
                &format!("{name} {dtype} {key}"),
                v.value(),
                &g.get(&key).unwrap(),
                tol,
            ));
            compared += 1;
        }
        let n_layers = model.cfg.n_layers;
        assert!(
            compared >= 4 + 12 * n_layers - usize::from(model.types.is_none()),
            "{name}: only {compared} boundaries compared"
        );
        match (&out.logits, &out.pooled) {
            (Some(l), _) => {
                worst = worst.max(check(
                    &format!("{name} {dtype} s{s}.logits"),
                    l.value(),
                    &g.get(&format!("s{s}.logits")).unwrap(),
                    tol,
                ))
            }
            (None, Some(p)) => {
                worst = worst.max(check(
                    &format!("{name} {dtype} s{s}.pooled"),
                    p.value(),
                    &g.get(&format!("s{s}.pooled")).unwrap(),
                    tol,
                ))
            }
            _ => panic!("{name}: no output"),
        }
    }
    eprintln!("{name} {dtype}: worst relative diff {worst:.2e}");
}

#[test]
fn activations_f64() {
    for m in MODELS {
        activations(m, DType::F64, 1e-10);
    }
}

#[test]
fn activations_f32() {
    for m in MODELS {
        activations(m, DType::F32, 1e-4);
    }
}

fn target_for(name: &str, model: &Encoder, g: &Weights) -> Target {
    if model.head.is_some() {
        Target::Class {
            class: 1,
            kind: TargetKind::Logit,
        }
    } else {
        let ids = g.get_ids("ref.input_ids").unwrap();
        let batch = Batch::repeat(&ids, &vec![0; ids.len()], 1);
        let out = model.forward(&batch, &mut Hooks::new()).unwrap();
        let p = out.pooled.unwrap().into_value();
        let c = p.shape()[1];
        let _ = name;
        Target::Similarity {
            reference: p.reshape(&[c]).unwrap(),
        }
    }
}

fn captum_parity(name: &str) {
    let model = Encoder::load(&ModelDir::open(&dir(name)).unwrap(), DType::F64).unwrap();
    let g = goldens(name);
    let target = target_for(name, &model, &g);
    for s in 0..n_sentences(&g) {
        let ids = g.get_ids(&format!("s{s}.input_ids")).unwrap();
        let base_ids = g.get_ids(&format!("s{s}.baseline_ids")).unwrap();
        let x = model.word_embeddings(&ids).unwrap();
        let b = model.word_embeddings(&base_ids).unwrap();
        for (tag, rule, n) in [
            ("gausslegendre20", Rule::GaussLegendre, 20),
            ("riemann_trapezoid20", Rule::CaptumTrapezoid, 20),
            ("gausslegendre50", Rule::GaussLegendre, 50),
        ] {
            let (alphas, weights) = captum_exact(rule, n).unwrap();
            // Captum's delta uses its own F(x), F(x′) (same model, f64): equal to ours up to rounding.
            let r = token_ig(&model, &ids, &b, &target, &alphas, &weights, 16);
            check_captum(name, &r, &g, &format!("s{s}.lig.{tag}"), x.shape(), 1e-8);
        }
    }
}

#[test]
fn token_ig_matches_captum_lig() {
    for m in MODELS {
        captum_parity(m);
    }
}
