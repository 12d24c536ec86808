//! The real all-MiniLM-L6-v2 (fetched by `scripts/fetch-models.sh`, which the test command runs):
//! our tokenizer ids and mean-pooled embeddings against PyTorch goldens (f64: 1e-10 of the scale,
//! f32: 1e-4), and token IG completeness on it.

use gradpath::attribution::{integrated_gradients, Baseline, PathProblem, Target};
use gradpath::integrate::Rule;
use gradpath::io::{ModelDir, Tokenizer};
use gradpath::models::{Batch, Encoder, Hooks, Model};
use gradpath::DType;
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2");
    assert!(
        d.join("model.safetensors").exists(),
        "{} is missing: run scripts/fetch-models.sh (scripts/test.sh does it)",
        d.display()
    );
    d
}

fn goldens() -> serde_json::Value {
    serde_json::from_str(include_str!("fixtures/minilm_goldens.json")).unwrap()
}

fn embeddings(dtype: DType, tol: f64) {
    let dir = model_dir();
    let model = Encoder::load(&ModelDir::open(&dir).unwrap(), dtype).unwrap();
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let g = goldens();
    let sentences = g["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 3);
    for s in sentences {
        let text = s["sentence"].as_str().unwrap();
        let e = tok.encode(text, None).unwrap();
        let want_ids: Vec<usize> = s["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(e.ids, want_ids, "token ids of {text:?}");
        let out = model
            .forward(&Batch::repeat(&e.ids, &e.type_ids, 1), &mut Hooks::new())
            .unwrap();
        let got = out.pooled.unwrap().value().to_vec_f64().unwrap();
        let want: Vec<f64> = s["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            diff <= tol * scale,
            "{dtype} {text:?}: max diff {diff:e} (scale {scale})"
        );
        eprintln!("{dtype} {text:?}: max abs diff {diff:.2e}");
    }
}

#[test]
fn mean_pooled_embeddings_match_pytorch_f64() {
    embeddings(DType::F64, 1e-10);
}

#[test]
fn mean_pooled_embeddings_match_pytorch_f32() {
    embeddings(DType::F32, 1e-4);
}

#[test]
fn token_ig_completeness_converges_on_minilm() {
    let dir = model_dir();
    let model = Encoder::load(&ModelDir::open(&dir).unwrap(), DType::F64).unwrap();
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let e = tok.encode("A man is playing a guitar.", None).unwrap();
    let e2 = tok.encode("Someone plays music.", None).unwrap();
    let r = model
        .forward(&Batch::repeat(&e2.ids, &e2.type_ids, 1), &mut Hooks::new())
        .unwrap()
        .pooled
        .unwrap()
        .into_value();
    let target = Target::Similarity {
        reference: r.reshape(&[384]).unwrap(),
    };
    let (_, b) = Baseline::Pad.build(&e, &tok, &model).unwrap();
    let x = model.word_embeddings(&e.ids).unwrap();
    let p = PathProblem {
        model: &model,
        ids: &e.ids,
        type_ids: &e.type_ids,
        boundary: "hook_embed",
        input: &x,
        baseline: &b,
        target: &target,
    };
    let mut last = f64::INFINITY;
    for n in [4, 8, 16, 32] {
        let (a, w) = Rule::GaussLegendre.nodes_weights(n).unwrap();
        let res = integrated_gradients(&p, &a, &w, 32, &mut |_, _| {}).unwrap();
        eprintln!("GL n={n}: relative delta {:.3e}", res.relative_delta);
        // Smooth integrand: Gauss–Legendre converges faster than any power, so each doubling of
        // the points must at least halve the error (measured: ×3.4, ×9, ×12).
        assert!(
            res.relative_delta < 0.5 * last,
            "delta did not halve at n={n}: {} vs {last}",
            res.relative_delta
        );
        last = res.relative_delta;
        // Special tokens keep their word embedding in the pad baseline: zero attribution.
        assert_eq!(res.per_token[0], 0.0);
        assert_eq!(*res.per_token.last().unwrap(), 0.0);
    }
}
