//! Named parameters (`models::params`): the registry keeps HF names, a forward can make any subset
//! of them tape leaves, and setting values keeps the transposed weight copies valid.
//!
//! `every_parameter_gradient_matches_pytorch`: the gradient of the tiny BERT classifier's mean
//! cross-entropy over a fixed, padded batch of 2 sentences with respect to each of its 41
//! parameters equals PyTorch's (`tests/fixtures/params/tiny-bert-grads.safetensors`, written by
//! `tests/reference/make_param_goldens.py`, float64, `model.eval()`). Tolerance: per parameter,
//! max |ours − torch| ≤ 1e-9 · max |torch|, except for the key biases, whose gradient is exactly 0
//! in exact arithmetic (b_k adds q·b_k to every score of a query row, and softmax ignores a
//! per-row constant): both sides give round-off there (torch ≈ 6e-18), so they must be
//! ≤ 1e-12 · the largest gradient of the model. Both sides use the same f32-stored weights exactly in
//! f64, so the only differences are round-off from a different operation order through a 2-layer
//! model and its backward (≈1e-15 relative); a wrong rule or a missed term is O(1).

use gradpath::io::{ModelDir, Weights};
use gradpath::models::{self, Batch, Hooks, Leaves, Model};
use gradpath::{DType, Error, Tape, Tensor, Var};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn golden() -> Weights {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/params/tiny-bert-grads.safetensors");
    Weights::open(&p, DType::F64).unwrap_or_else(|e| {
        panic!("{e}: regenerate with `.refenv/bin/python tests/reference/make_param_goldens.py`")
    })
}

/// The golden's batch: ids, token types and the padding mask, `[2, T]`.
fn golden_batch(g: &Weights) -> (Batch, Vec<usize>) {
    let ids = g.get_ids("input_ids").unwrap();
    let type_ids = g.get_ids("token_type_ids").unwrap();
    let mask: Vec<u8> = g
        .get_ids("attention_mask")
        .unwrap()
        .iter()
        .map(|&m| m as u8)
        .collect();
    let labels = g.get_ids("labels").unwrap();
    let batch = labels.len();
    let pos = ids.len() / batch;
    (
        Batch {
            ids,
            type_ids,
            mask,
            batch,
            pos,
        },
        labels,
    )
}

/// Mean cross-entropy of `logits` `[b, n]` against `labels`: −(1/b) Σ_r log_softmax(logits)[r, y_r].
fn cross_entropy(logits: &Var, labels: &[usize]) -> Var {
    let (b, n) = (logits.shape()[0], logits.shape()[1]);
    let mut pick = vec![0.0; b * n];
    for (r, &y) in labels.iter().enumerate() {
        pick[r * n + y] = -1.0 / b as f64;
    }
    let pick = Var::constant(Tensor::from_f64(&pick, &[b, n], logits.dtype()).unwrap());
    logits
        .log_softmax(None)
        .unwrap()
        .mul(&pick)
        .unwrap()
        .sum_all()
        .unwrap()
}

fn seed_of(v: &Var) -> Tensor {
    Tensor::ones(v.shape(), v.dtype())
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn every_parameter_gradient_matches_pytorch() {
    let g = golden();
    let (x, labels) = golden_batch(&g);
    assert!(x.mask.contains(&0), "the golden batch should be padded");
    let model = models::load(&dir("tiny-bert"), DType::F64).unwrap();

    // The registry holds exactly torch's named_parameters, under the same names.
    let mut ours: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
    let mut theirs: Vec<String> = g
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("grad.").map(str::to_string))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "registry names vs torch named_parameters");
    assert_eq!(ours.len(), 41);

    let tape = Tape::new();
    let leaves = Leaves::all(&tape, model.as_ref()).unwrap();
    let out = model
        .forward_with_params(&x, &mut Hooks::new(), &leaves)
        .unwrap();
    let logits = out.logits.unwrap();
    let want_logits = g.get("logits").unwrap().to_vec_f64().unwrap();
    let d = max_diff(&logits.value().to_vec_f64().unwrap(), &want_logits);
    assert!(
        d <= 1e-12 * max_abs(&want_logits).max(1.0),
        "logits differ by {d:e}"
    );
    let loss = cross_entropy(&logits, &labels);
    let want_loss = g.get("loss").unwrap().to_vec_f64().unwrap()[0];
    let l = loss.value().to_vec_f64().unwrap()[0];
    assert!(
        (l - want_loss).abs() <= 1e-12 * want_loss.abs(),
        "loss {l} vs torch {want_loss}"
    );

    let grads = tape
        .grad(&[&loss], &[seed_of(&loss)], &leaves.vars())
        .unwrap();
    let global = leaves
        .names()
        .map(|n| max_abs(&g.get(&format!("grad.{n}")).unwrap().to_vec_f64().unwrap()))
        .fold(0.0f64, f64::max);
    let mut worst = (0.0f64, String::new());
    for (name, grad) in leaves.names().zip(&grads) {
        let grad = grad
            .as_ref()
            .unwrap_or_else(|| panic!("`{name}` got no gradient"));
        let want = g.get(&format!("grad.{name}")).unwrap();
        assert_eq!(grad.shape(), want.shape(), "{name}");
        let (ours, want) = (grad.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
        if name.ends_with("attention.self.key.bias") {
            let (a, b) = (max_abs(&ours), max_abs(&want));
            assert!(
                a <= 1e-12 * global && b <= 1e-12 * global,
                "`{name}`: ours {a:e}, torch {b:e}: should be round-off (largest gradient {global:e})"
            );
            continue;
        }
        let scale = max_abs(&want);
        assert!(scale > 0.0, "torch's gradient of `{name}` is all zero");
        let rel = max_diff(&ours, &want) / scale;
        assert!(
            rel <= 1e-9,
            "∂loss/∂`{name}`: max relative difference {rel:e} (scale {scale:e}); regenerate the \
             golden with tests/reference/make_param_goldens.py if the fixture changed"
        );
        if rel >= worst.0 {
            worst = (rel, name.to_string());
        }
    }
    println!(
        "{} parameter gradients; worst relative difference {:e} at `{}`",
        grads.len(),
        worst.0,
        worst.1
    );
}

#[test]
fn a_subset_of_leaves_gets_gradients_and_the_rest_stays_constant() {
    let g = golden();
    let (x, labels) = golden_batch(&g);
    let model = models::load(&dir("tiny-bert"), DType::F64).unwrap();
    let plain = model
        .forward(&x, &mut Hooks::new())
        .unwrap()
        .logits
        .unwrap();
    // No leaves: the plain forward.
    let none = model
        .forward_with_params(&x, &mut Hooks::new(), &Leaves::none())
        .unwrap()
        .logits
        .unwrap();
    assert_eq!(
        plain.value().to_vec_f64().unwrap(),
        none.value().to_vec_f64().unwrap()
    );
    assert!(
        !plain.is_tracked(),
        "a plain forward records nothing for weights"
    );

    let names = [
        "classifier.weight",
        "bert.encoder.layer.1.output.LayerNorm.bias",
    ];
    let tape = Tape::new();
    let leaves = Leaves::new(&tape, model.as_ref(), &names).unwrap();
    let logits = model
        .forward_with_params(&x, &mut Hooks::new(), &leaves)
        .unwrap()
        .logits
        .unwrap();
    let d = max_diff(
        &logits.value().to_vec_f64().unwrap(),
        &plain.value().to_vec_f64().unwrap(),
    );
    assert!(
        d <= 1e-13,
        "the leaf forward differs from the plain one by {d:e}"
    );
    let loss = cross_entropy(&logits, &labels);
    let grads = tape
        .grad(&[&loss], &[seed_of(&loss)], &leaves.vars())
        .unwrap();
    for (n, grad) in names.iter().zip(&grads) {
        let want = g.get(&format!("grad.{n}")).unwrap().to_vec_f64().unwrap();
        let rel = max_diff(&grad.as_ref().unwrap().to_vec_f64().unwrap(), &want) / max_abs(&want);
        assert!(rel <= 1e-9, "{n}: {rel:e}");
    }

    // Unknown names are errors that list the parameters.
    let e = Leaves::new(&tape, model.as_ref(), &["bert.no.such.weight"])
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Unknown { what: "parameter", valid, .. } if valid.len() == 41),
        "{e}"
    );
}

#[test]
fn set_parameters_refreshes_the_transposed_copies() {
    let g = golden();
    let (x, _) = golden_batch(&g);
    let mut model = models::load(&dir("tiny-bert"), DType::F64).unwrap();
    let before = model
        .forward(&x, &mut Hooks::new())
        .unwrap()
        .logits
        .unwrap();
    let name = "bert.encoder.layer.0.attention.self.query.weight";
    let p = model
        .parameters()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap();
    let new: Vec<f64> = p
        .value
        .to_vec_f64()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| 2.0 * v + 0.01 * (i % 7) as f64)
        .collect();
    let new = Tensor::from_f64(&new, p.shape(), DType::F64).unwrap();

    // Errors change nothing.
    let bad = Tensor::zeros(&[3, 3], DType::F64);
    assert!(matches!(
        model.set_parameters(vec![
            (name.into(), new.clone()),
            ("nope".into(), bad.clone())
        ]),
        Err(Error::Unknown { .. })
    ));
    assert!(matches!(
        model.set_parameters(vec![(name.into(), bad)]),
        Err(Error::Mismatch { .. })
    ));
    let same = model
        .forward(&x, &mut Hooks::new())
        .unwrap()
        .logits
        .unwrap();
    assert_eq!(
        same.value().to_vec_f64().unwrap(),
        before.value().to_vec_f64().unwrap()
    );

    model
        .set_parameters(vec![(name.into(), new.clone())])
        .unwrap();
    let stored = model
        .parameters()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap();
    assert_eq!(
        stored.value.to_vec_f64().unwrap(),
        new.to_vec_f64().unwrap()
    );
    // The plain forward (transposed copies, `GRADPATH_WEIGHT_COPIES_MB` default) and the leaf
    // view (no copies: reads the weight itself) agree, and both see the new value.
    let after = model
        .forward(&x, &mut Hooks::new())
        .unwrap()
        .logits
        .unwrap();
    let tape = Tape::new();
    let leaves = Leaves::new(&tape, model.as_ref(), &[name]).unwrap();
    let view = model
        .forward_with_params(&x, &mut Hooks::new(), &leaves)
        .unwrap()
        .logits
        .unwrap();
    let (a, v, b) = (
        after.value().to_vec_f64().unwrap(),
        view.value().to_vec_f64().unwrap(),
        before.value().to_vec_f64().unwrap(),
    );
    assert!(
        max_diff(&a, &v) <= 1e-13,
        "stale transposed copy: {:e}",
        max_diff(&a, &v)
    );
    assert!(max_diff(&a, &b) > 1e-3, "the new value had no effect");
}

/// Loss for a decoder: Σ c ⊙ log_softmax(next-token logits at the last position), fixed c.
fn decoder_loss(model: &dyn Model, ids: &[usize], leaves: &Leaves) -> Var {
    let x = Batch::repeat(ids, &vec![0; ids.len()], 1);
    let out = model
        .forward_with_params(&x, &mut Hooks::new(), leaves)
        .unwrap();
    let l = out.token_logits(ids.len() - 1).unwrap();
    let n = l.shape()[1];
    let c: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) / 5.0).collect();
    let c = Var::constant(Tensor::from_f64(&c, &[1, n], DType::F64).unwrap());
    l.log_softmax(None)
        .unwrap()
        .mul(&c)
        .unwrap()
        .sum_all()
        .unwrap()
}

/// GPT-2 (packed `c_attn`, `Conv1D` layout) and the Llama family (tied and untied heads): the
/// registry holds the checkpoint's names, and leaf gradients equal f64 central differences
/// taken through `set_parameters` (ε = 1e-5; truncation ≈ ε²·f''' ≈ 1e-10, rounding ≈ 1e-11, so
/// 1e-6 · (1 + |numeric|) separates a right rule from a wrong one by orders of magnitude).
#[test]
fn decoder_parameters_keep_hf_names_and_match_finite_differences() {
    let ids = [1usize, 5, 9, 3, 7];
    for (name, params) in [
        (
            "tiny-gpt2",
            &[
                "transformer.h.0.attn.c_attn.weight",
                "transformer.h.1.mlp.c_proj.bias",
                "transformer.wte.weight",
            ][..],
        ),
        (
            "tiny-llama",
            &[
                "model.layers.0.self_attn.k_proj.weight",
                "lm_head.weight",
                "model.norm.weight",
            ][..],
        ),
        (
            "tiny-qwen2",
            &[
                "model.layers.1.self_attn.q_proj.bias",
                "model.embed_tokens.weight",
            ][..],
        ),
    ] {
        let mut model = models::load(&dir(name), DType::F64).unwrap();
        let file = Weights::open(&dir(name).join("model.safetensors"), DType::F64).unwrap();
        let mut want: Vec<&str> = file.names();
        let mut got: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}: registry vs checkpoint names");

        let tape = Tape::new();
        let leaves = Leaves::new(&tape, model.as_ref(), params).unwrap();
        let loss = decoder_loss(model.as_ref(), &ids, &leaves);
        let grads = tape
            .grad(&[&loss], &[seed_of(&loss)], &leaves.vars())
            .unwrap();
        for (p, grad) in params.iter().zip(&grads) {
            let grad = grad.as_ref().unwrap().to_vec_f64().unwrap();
            let value = model
                .parameters()
                .into_iter()
                .find(|q| q.name == *p)
                .unwrap()
                .value;
            let base = value.to_vec_f64().unwrap();
            // The largest-gradient element and two fixed ones.
            let top = (0..grad.len())
                .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
                .unwrap();
            for i in [top, 0, grad.len() / 2] {
                let eps = 1e-5;
                let mut at = |delta: f64| {
                    let mut v = base.clone();
                    v[i] += delta;
                    let t = Tensor::from_f64(&v, value.shape(), DType::F64).unwrap();
                    model.set_parameters(vec![(p.to_string(), t)]).unwrap();
                    let l = decoder_loss(model.as_ref(), &ids, &Leaves::none());
                    l.value().to_vec_f64().unwrap()[0]
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (grad[i] - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                    "{name} `{p}`[{i}]: tape {} vs central difference {numeric}",
                    grad[i]
                );
            }
            let t = Tensor::from_f64(&base, value.shape(), DType::F64).unwrap();
            model.set_parameters(vec![(p.to_string(), t)]).unwrap();
        }
    }
}

/// A GGUF model's registry holds the Hugging Face names its loader maps to.
#[test]
fn gguf_parameters_have_hugging_face_names() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/tiny_llama.gguf");
    let model = models::load(&p, DType::F32).unwrap();
    let md = ModelDir::open(&p).unwrap();
    let w = md.weights(DType::F32).unwrap();
    let mut want: Vec<&str> = w.names();
    let mut got: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert!(got
        .iter()
        .any(|n| n == "model.layers.0.self_attn.q_proj.weight"));
}
