//! Training (`gradpath::train`).
//!
//! `training_steps_match_pytorch_adamw`: three optimizer steps on the tiny BERT, RoBERTa and
//! DistilBERT classifiers (float64, dropout off, one fixed padded batch of 4) against PyTorch +
//! transformers + `torch.optim.AdamW` + `clip_grad_norm_` + `get_linear_schedule_with_warmup`
//! (`tests/fixtures/train/*-steps.safetensors`, written by
//! `tests/reference/make_train_goldens.py`). Step 1 has learning rate 0 (warm-up, as with
//! transformers' scheduler), step 2 the full rate with bias correction at t = 2, step 3 the
//! decayed rate; clipping is active at every step (norms 1.3–3.7 > 0.5). At every step: the loss,
//! ∂loss/∂p of every parameter, the global norm, the learning rate, every parameter after the step
//! and every update (p after − p before), each to ≤ 1e-9 relative (per tensor: max |ours − torch|
//! ≤ 1e-9 · max |torch|). Key biases are the exception, as in `tests/params.rs`: their gradient is
//! exactly 0 in exact arithmetic (softmax ignores a per-row constant), so both sides hold round-off
//! (≤ 1e-12 × the largest gradient) and AdamW turns that round-off into updates ≤ lr · 1e-4
//! (|m̂| / (√v̂ + ε) with |g| ≈ 1e-17 ≪ ε = 1e-8), which must stay that small on both sides.

use gradpath::io::Weights;
use gradpath::models::{Batch, Hooks, Model};
use gradpath::train::data::{batch, Example, TextEncoder};
use gradpath::train::dropout::{mask, Dropout};
use gradpath::train::optim::{no_decay, AdamWConfig, LinearSchedule};
use gradpath::train::rng::Rng;
use gradpath::train::{classifier, eval, save, Trainer};
use gradpath::{DType, Error};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn golden(name: &str) -> (Weights, serde_json::Value) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/train/{name}-steps.safetensors"));
    let w = Weights::open(&p, DType::F64).unwrap_or_else(|e| {
        panic!("{e}: regenerate with `.refenv/bin/python tests/reference/make_train_goldens.py`")
    });
    let bytes = std::fs::read(&p).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = meta.metadata().as_ref().unwrap()["info"].clone();
    (w, serde_json::from_str(&info).unwrap())
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

fn golden_batch(g: &Weights) -> (Batch, Vec<usize>) {
    let ids = g.get_ids("input_ids").unwrap();
    let type_ids = if g.contains("token_type_ids") {
        g.get_ids("token_type_ids").unwrap()
    } else {
        vec![0; ids.len()]
    };
    let mask: Vec<u8> = g
        .get_ids("attention_mask")
        .unwrap()
        .iter()
        .map(|&m| m as u8)
        .collect();
    let labels = g.get_ids("labels").unwrap();
    let b = labels.len();
    let pos = ids.len() / b;
    (
        Batch {
            ids,
            type_ids,
            mask,
            batch: b,
            pos,
        },
        labels,
    )
}

fn scalar(g: &Weights, name: &str) -> f64 {
    g.get(name).unwrap().to_vec_f64().unwrap()[0]
}

/// Worst relative differences over the three steps: (loss, gradient, parameter, update).
/// `model` is the golden's name: a fixture, or `<fixture>-pair` for the text-pair batch.
fn check_steps(model: &str) -> [f64; 4] {
    let (g, info) = golden(model);
    let (x, labels) = golden_batch(&g);
    assert!(x.mask.contains(&0), "the golden batch should be padded");
    let clf = classifier::load(
        &fixture(model.trim_end_matches("-pair")),
        None,
        0,
        DType::F64,
    )
    .unwrap();
    assert!(clf.fresh.is_empty());
    let adam = AdamWConfig {
        lr: info["lr"].as_f64().unwrap(),
        weight_decay: info["weight_decay"].as_f64().unwrap(),
        ..AdamWConfig::default()
    };
    let schedule = LinearSchedule {
        warmup: info["warmup"].as_u64().unwrap() as usize,
        total: info["total"].as_u64().unwrap() as usize,
    };
    let mut tr = Trainer::new(clf, adam, schedule, 0);
    tr.max_grad_norm = info["max_grad_norm"].as_f64().unwrap();
    tr.dropout = false;

    // Same parameters, same decay groups as transformers' Trainer.
    let params = tr.clf.model.parameters();
    let mut ours: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut theirs: Vec<&str> = info["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "{model}: parameter names");
    let mut decay: Vec<&str> = params
        .iter()
        .filter(|p| !no_decay(p))
        .map(|p| p.name.as_str())
        .collect();
    decay.sort();
    let want: Vec<&str> = info["decay"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(decay, want, "{model}: weight-decay group");

    let mut worst = [0.0f64; 4];
    let steps = info["steps"].as_u64().unwrap();
    for s in 1..=steps {
        let before: Vec<Vec<f64>> = tr
            .clf
            .model
            .parameters()
            .iter()
            .map(|p| p.value.to_vec_f64().unwrap())
            .collect();
        let gr = tr.gradients(&x, &labels).unwrap();
        let want_loss = scalar(&g, &format!("loss.{s}"));
        let rel = (gr.loss - want_loss).abs() / want_loss.abs();
        assert!(
            rel <= 1e-9,
            "{model} step {s}: loss {} vs torch {want_loss}",
            gr.loss
        );
        worst[0] = worst[0].max(rel);
        let names: Vec<String> = tr
            .clf
            .model
            .parameters()
            .into_iter()
            .map(|p| p.name)
            .collect();
        let global = names
            .iter()
            .map(|n| {
                max_abs(
                    &g.get(&format!("grad.{s}.{n}"))
                        .unwrap()
                        .to_vec_f64()
                        .unwrap(),
                )
            })
            .fold(0.0f64, f64::max);
        for (n, grad) in names.iter().zip(&gr.grads) {
            let want = g
                .get(&format!("grad.{s}.{n}"))
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let ours = grad.to_vec_f64().unwrap();
            if n.ends_with("attention.self.key.bias") || n.ends_with("attention.k_lin.bias") {
                assert!(
                    max_abs(&ours) <= 1e-12 * global && max_abs(&want) <= 1e-12 * global,
                    "{model} step {s} {n}: key-bias gradient is not round-off"
                );
                continue;
            }
            let rel = max_diff(&ours, &want) / max_abs(&want);
            assert!(
                rel <= 1e-9,
                "{model} step {s}: gradient of {n} differs by {rel:e} (relative)"
            );
            worst[1] = worst[1].max(rel);
        }
        let (norm, lr) = tr.apply(gr.grads).unwrap();
        let want_norm = scalar(&g, &format!("norm.{s}"));
        assert!(
            (norm - want_norm).abs() <= 1e-9 * want_norm,
            "{model} step {s}: norm {norm} vs {want_norm}"
        );
        assert!(
            want_norm > tr.max_grad_norm,
            "{model} step {s}: the golden should exercise clipping"
        );
        let want_lr = scalar(&g, &format!("lr.{s}"));
        assert!(
            (lr - want_lr).abs() <= 1e-15,
            "{model} step {s}: lr {lr} vs {want_lr}"
        );
        for (p, old) in tr.clf.model.parameters().iter().zip(&before) {
            let n = &p.name;
            let ours = p.value.to_vec_f64().unwrap();
            let want = g
                .get(&format!("param.{s}.{n}"))
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let rel = max_diff(&ours, &want) / max_abs(&want).max(1e-300);
            assert!(
                rel <= 1e-9,
                "{model} step {s}: parameter {n} differs by {rel:e} (relative)"
            );
            worst[2] = worst[2].max(rel);
            let d_ours: Vec<f64> = ours.iter().zip(old).map(|(a, b)| a - b).collect();
            let d_want: Vec<f64> = want.iter().zip(old).map(|(a, b)| a - b).collect();
            if lr == 0.0 {
                assert_eq!(max_abs(&d_ours), 0.0, "{model} step {s}: {n} moved at lr 0");
                assert_eq!(max_abs(&d_want), 0.0);
                continue;
            }
            if n.ends_with("attention.self.key.bias") || n.ends_with("attention.k_lin.bias") {
                assert!(
                    max_abs(&d_ours) <= lr * 1e-4 && max_abs(&d_want) <= lr * 1e-4,
                    "{model} step {s} {n}"
                );
                continue;
            }
            let rel = max_diff(&d_ours, &d_want) / max_abs(&d_want);
            assert!(
                rel <= 1e-9,
                "{model} step {s}: update of {n} differs by {rel:e} (relative)"
            );
            worst[3] = worst[3].max(rel);
        }
    }
    eprintln!(
        "{model}: worst relative difference over {steps} steps: loss {:.1e}, gradient {:.1e}, parameter {:.1e}, update {:.1e}",
        worst[0], worst[1], worst[2], worst[3]
    );
    worst
}

#[test]
fn training_steps_match_pytorch_adamw() {
    for m in ["tiny-bert", "tiny-roberta", "tiny-distilbert"] {
        check_steps(m);
    }
}

/// Text pairs (the rules task's context and query): gradpath's encoder gives the golden's ids and
/// type ids (the second segment has type 1), and three steps on that batch match PyTorch as the
/// single texts do, token_type_embeddings row 1 included.
#[test]
fn training_on_text_pairs_matches_pytorch() {
    let (g, info) = golden("tiny-bert-pair");
    let (x, labels) = golden_batch(&g);
    assert!(
        x.type_ids.contains(&1),
        "the golden batch should hold a second segment"
    );
    let examples: Vec<Example> = info["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(i, (p, &label))| Example {
            id: format!("p{i}"),
            text: p[0].as_str().unwrap().into(),
            text_pair: Some(p[1].as_str().unwrap().into()),
            label,
            depth: None,
        })
        .collect();
    let enc = TextEncoder::new(&fixture("tiny-bert").join("tokenizer.json"), 64, 0).unwrap();
    let (encoded, truncated) = enc.encode(&examples).unwrap();
    assert_eq!(truncated, 0);
    let rows: Vec<_> = encoded.iter().collect();
    let (ours, ours_labels) = batch(&rows, 0);
    assert_eq!(ours.ids, x.ids);
    assert_eq!(ours.type_ids, x.type_ids);
    assert_eq!(ours.mask, x.mask);
    assert_eq!(ours_labels, labels);
    check_steps("tiny-bert-pair");
}

#[test]
fn schedule_and_clipping_follow_transformers_and_torch() {
    // get_linear_schedule_with_warmup(warmup=2, total=6): 0, 1/2, 1, 3/4, 1/2, 1/4, 0.
    let s = LinearSchedule {
        warmup: 2,
        total: 6,
    };
    let f: Vec<f64> = (0..7).map(|i| s.factor(i)).collect();
    assert_eq!(f, vec![0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]);
    assert_eq!(LinearSchedule::from_ratio(101, 0.1).warmup, 11);
    // No warm-up: the first step has the full rate.
    assert_eq!(
        LinearSchedule {
            warmup: 0,
            total: 4
        }
        .factor(0),
        1.0
    );
    // Clipping: norm 5 → scaled by 1 / (5 + 1e-6); a norm below the limit is left as is.
    let mut g = vec![
        gradpath::Tensor::from_f64(&[3.0], &[1], DType::F64).unwrap(),
        gradpath::Tensor::from_f64(&[4.0], &[1], DType::F64).unwrap(),
    ];
    let n = gradpath::train::optim::clip_grad_norm(&mut g, 1.0).unwrap();
    assert_eq!(n, 5.0);
    assert_eq!(g[0].to_scalar().unwrap(), 3.0 * (1.0 / (5.0 + 1e-6)));
    let n = gradpath::train::optim::clip_grad_norm(&mut g, 10.0).unwrap();
    assert!((n - 5.0 / (5.0 + 1e-6)).abs() < 1e-15);
    assert_eq!(g[1].to_scalar().unwrap(), 4.0 * (1.0 / (5.0 + 1e-6)));
}

fn texts() -> Vec<Example> {
    ["a", "the movie was great fun and I liked it", "not bad"]
        .iter()
        .enumerate()
        .map(|(i, t)| Example {
            id: i.to_string(),
            text: t.to_string(),
            text_pair: None,
            label: i % 2,
            depth: None,
        })
        .collect()
}

#[test]
fn a_padded_batch_gives_each_sentence_its_own_logits() {
    for m in ["tiny-bert", "tiny-roberta", "tiny-distilbert"] {
        let clf = classifier::load(&fixture(m), None, 0, DType::F64).unwrap();
        let pad = clf.model.pad_token_id().unwrap();
        let enc = TextEncoder::new(&fixture(m).join("tokenizer.json"), 32, pad).unwrap();
        let (rows, truncated) = enc.encode(&texts()).unwrap();
        assert_eq!(truncated, 0);
        let refs: Vec<_> = rows.iter().collect();
        let (x, _) = batch(&refs, pad);
        assert!(x.mask.contains(&0), "{m}: the batch should be padded");
        let all = clf
            .model
            .forward(&x, &mut Hooks::new())
            .unwrap()
            .logits
            .unwrap();
        let all = all.value().to_vec_f64().unwrap();
        let k = all.len() / rows.len();
        for (r, row) in rows.iter().enumerate() {
            let (x1, _) = batch(&[row], pad);
            let one = clf
                .model
                .forward(&x1, &mut Hooks::new())
                .unwrap()
                .logits
                .unwrap();
            let one = one.value().to_vec_f64().unwrap();
            let d = max_diff(&one, &all[r * k..(r + 1) * k]);
            assert!(
                d <= 1e-12 * max_abs(&one).max(1.0),
                "{m} row {r}: padded logits differ by {d:e}"
            );
        }
    }
}

#[test]
fn truncation_keeps_the_special_tokens_and_is_counted() {
    let enc = TextEncoder::new(&fixture("tiny-bert").join("tokenizer.json"), 8, 0).unwrap();
    let long = Example {
        id: "x".into(),
        text: "the movie was great fun and I liked it a lot".into(),
        text_pair: None,
        label: 0,
        depth: None,
    };
    let (rows, truncated) = enc.encode(&[long.clone(), texts()[0].clone()]).unwrap();
    assert_eq!(truncated, 1);
    assert_eq!(rows[0].ids.len(), 8);
    let full = TextEncoder::new(&fixture("tiny-bert").join("tokenizer.json"), 64, 0).unwrap();
    let (f, _) = full.encode(&[long]).unwrap();
    assert!(f[0].ids.len() > 8);
    assert_eq!(rows[0].ids[..7], f[0].ids[..7], "the first tokens are kept");
    assert_eq!(
        rows[0].ids[7],
        *f[0].ids.last().unwrap(),
        "the closing [SEP] is kept"
    );
}

#[test]
fn dropout_masks_are_deterministic_for_a_seed() {
    let (g, _) = golden("tiny-bert");
    let (x, labels) = golden_batch(&g);
    let make = |seed: u64, dropout: bool| {
        let clf = classifier::load(&fixture("tiny-bert"), None, 0, DType::F64).unwrap();
        assert_eq!(
            clf.dropout,
            Dropout {
                family: clf.dropout.family,
                embed: 0.1,
                attention: 0.1,
                hidden: 0.1,
                classifier: 0.1
            }
        );
        let mut tr = Trainer::new(
            clf,
            AdamWConfig::default(),
            LinearSchedule {
                warmup: 0,
                total: 4,
            },
            seed,
        );
        tr.dropout = dropout;
        tr
    };
    let a = make(7, true).gradients(&x, &labels).unwrap();
    let b = make(7, true).gradients(&x, &labels).unwrap();
    let c = make(8, true).gradients(&x, &labels).unwrap();
    let off = make(7, false).gradients(&x, &labels).unwrap();
    assert_eq!(a.loss, b.loss, "same seed, same step: same masks");
    for (ga, gb) in a.grads.iter().zip(&b.grads) {
        assert_eq!(ga.to_vec_f64().unwrap(), gb.to_vec_f64().unwrap());
    }
    assert_ne!(a.loss, c.loss, "another seed draws other masks");
    assert_ne!(a.loss, off.loss, "dropout changes the training forward");
    // The loss without dropout is the golden's (eval mode).
    assert!((off.loss - scalar(&g, "loss.1")).abs() <= 1e-12);
    // The next step draws new masks (same parameters, step counter 1).
    let mut next = make(7, true);
    next.opt.step = 1;
    assert_ne!(next.gradients(&x, &labels).unwrap().loss, a.loss);
    // Rates of zero give the plain forward exactly.
    let mut zero = make(7, true);
    zero.clf.dropout = Dropout::off(zero.clf.dropout.family);
    assert_eq!(zero.gradients(&x, &labels).unwrap().loss, off.loss);
    // A mask keeps 1 − p of the entries (5σ bound over 200k draws) at exactly 1 / (1 − p).
    let m = mask(&mut Rng::new(3), 0.1, &[200_000], DType::F64)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    let dropped = m.iter().filter(|&&v| v == 0.0).count() as f64 / m.len() as f64;
    assert!(
        (dropped - 0.1).abs() < 5.0 * (0.1f64 * 0.9 / 200_000.0).sqrt(),
        "dropped {dropped}"
    );
    assert!(m.iter().all(|&v| v == 0.0 || v == 1.0 / 0.9));
}

#[test]
fn a_base_encoder_gets_a_fresh_seeded_head() {
    let labels = vec!["neg".to_string(), "pos".to_string()];
    let dir = fixture("tiny-bert-embed");
    let a = classifier::load(&dir, Some(&labels), 0, DType::F32).unwrap();
    let b = classifier::load(&dir, Some(&labels), 0, DType::F32).unwrap();
    let c = classifier::load(&dir, Some(&labels), 1, DType::F32).unwrap();
    // The checkpoint has BERT's pooler: only the classifier is new.
    assert_eq!(a.fresh, vec!["classifier.weight", "classifier.bias"]);
    assert_eq!(
        a.config["architectures"][0],
        "BertForSequenceClassification"
    );
    assert_eq!(a.config["id2label"]["1"], "pos");
    assert_eq!(a.config["label2id"]["neg"], 0);
    let get = |clf: &classifier::Classifier, n: &str| {
        clf.model
            .parameters()
            .into_iter()
            .find(|p| p.name == n)
            .unwrap()
            .value
            .to_vec_f64()
            .unwrap()
    };
    let w = get(&a, "classifier.weight");
    assert_eq!(w.len(), 2 * 32);
    assert_eq!(w, get(&b, "classifier.weight"), "same seed, same head");
    assert_ne!(
        w,
        get(&c, "classifier.weight"),
        "another seed, another head"
    );
    assert!(get(&a, "classifier.bias").iter().all(|&v| v == 0.0));
    // normal(0, 0.02): 64 draws; the sample std is within 30 % of 0.02 with overwhelming odds.
    let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    assert!((std - 0.02).abs() < 0.006, "std {std}");
    // A larger draw for the distribution: 10⁵ normals have mean ≈ 0 and std ≈ 1.
    let mut r = Rng::new(5);
    let z: Vec<f64> = (0..100_000).map(|_| r.normal()).collect();
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    let sd = (z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
    assert!(
        mean.abs() < 0.02 && (sd - 1.0).abs() < 0.02,
        "mean {mean} sd {sd}"
    );
    // The backbone and the pooler are the checkpoint's values, under the classifier's names.
    let base = Weights::open(&dir.join("model.safetensors"), DType::F32).unwrap();
    for n in [
        "embeddings.word_embeddings.weight",
        "pooler.dense.weight",
        "encoder.layer.1.output.dense.bias",
    ] {
        assert_eq!(
            get(&a, &format!("bert.{n}")),
            base.get(n).unwrap().to_vec_f64().unwrap(),
            "{n}"
        );
    }
    // Bad class names.
    match classifier::load(&dir, None, 0, DType::F32) {
        Err(Error::NoLabels { .. }) => {}
        other => panic!("expected NoLabels, got {:?}", other.err()),
    }
    for bad in [
        vec!["only".to_string()],
        vec!["a".to_string(), "a".to_string()],
    ] {
        assert!(matches!(
            classifier::load(&dir, Some(&bad), 0, DType::F32),
            Err(Error::BadValue { name: "labels", .. })
        ));
    }
    // A classifier checkpoint's head size must match the class names.
    assert!(matches!(
        classifier::load(&fixture("tiny-bert"), Some(&labels), 0, DType::F32),
        Err(Error::Mismatch { .. })
    ));
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradpath-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_saved_folder_loads_back_with_the_same_values() {
    let labels = vec!["neg".to_string(), "pos".to_string()];
    for dtype in [DType::F32, DType::F64] {
        let clf = classifier::load(&fixture("tiny-bert-embed"), Some(&labels), 3, dtype).unwrap();
        let mut tr = Trainer::new(
            clf,
            AdamWConfig::default(),
            LinearSchedule {
                warmup: 0,
                total: 2,
            },
            0,
        );
        let (g, _) = golden("tiny-bert");
        let (x, y) = golden_batch(&g);
        tr.step(&x, &y.iter().map(|v| v % 2).collect::<Vec<_>>())
            .unwrap();
        let out = tmp(&format!("save-{dtype}"));
        save::save_model(&out, &tr.clf).unwrap();
        for f in [
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        let back = classifier::load(&out, None, 99, dtype).unwrap();
        assert!(back.fresh.is_empty());
        assert_eq!(back.labels, labels);
        let (p, q) = (tr.clf.model.parameters(), back.model.parameters());
        assert_eq!(p.len(), q.len());
        for (a, b) in p.iter().zip(&q) {
            assert_eq!(a.name, b.name);
            assert_eq!(
                a.value.to_vec_f64().unwrap(),
                b.value.to_vec_f64().unwrap(),
                "{}",
                a.name
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn metrics_count_the_confusion_matrix() {
    let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let gold = [0, 0, 1, 1, 2, 2];
    let pred = [0, 1, 1, 1, 0, 1];
    let (per, macro_f1, conf) = eval::scores(&labels, &gold, &pred);
    assert_eq!(conf, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 1, 0]]);
    assert_eq!(
        (per[0].precision, per[0].recall, per[0].f1),
        (0.5, 0.5, 0.5)
    );
    assert_eq!((per[1].precision, per[1].recall), (0.5, 1.0));
    assert!((per[1].f1 - 2.0 / 3.0).abs() < 1e-15);
    assert_eq!(
        (per[2].precision, per[2].recall, per[2].f1, per[2].support),
        (0.0, 0.0, 0.0, 2)
    );
    assert!((macro_f1 - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-15);
}

fn write_data(dir: &Path, name: &str, n: usize) -> PathBuf {
    let words = [
        "good film",
        "bad film",
        "a good one",
        "a bad one",
        "great fun",
        "dull plot",
    ];
    let mut s = String::new();
    for i in 0..n {
        let t = words[i % words.len()];
        let label = if t.contains("good") || t.contains("great") {
            "pos"
        } else {
            "neg"
        };
        s.push_str(&format!(
            "{{\"id\": \"{i}\", \"text\": \"{t} {i}\", \"label\": \"{label}\"}}\n"
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn resume_after_a_crash_ends_where_an_uninterrupted_run_ends() {
    let d = tmp("resume");
    let train = write_data(&d, "train.jsonl", 24);
    let dev = write_data(&d, "dev.jsonl", 12);
    let opts = gradpath::train::TrainOptions {
        epochs: 2,
        lr: 1e-3,
        batch: 8,
        max_len: 16,
        labels: Some(vec!["neg".into(), "pos".into()]),
        ..Default::default()
    };
    let model = fixture("tiny-bert-embed");
    let straight = d.join("straight");
    let r = gradpath::train::fit(
        &model,
        &train,
        &dev,
        &straight,
        &opts,
        gradpath::train::Existing::Refuse,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.history.len(), 2);
    assert_eq!(r.fresh_head, vec!["classifier.weight", "classifier.bias"]);
    assert!(straight
        .join("checkpoints/epoch-2/optimizer.safetensors")
        .is_file());
    assert!(
        !straight.join("checkpoints/epoch-1").exists(),
        "older checkpoints are removed"
    );

    // A run that dies after its first epoch's checkpoint, then resumes.
    let crashed = d.join("crashed");
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gradpath::train::fit(
            &model,
            &train,
            &dev,
            &crashed,
            &opts,
            gradpath::train::Existing::Refuse,
            &mut |e| {
                if let gradpath::train::Event::Epoch(..) = e {
                    panic!("killed");
                }
            },
        )
    }));
    assert!(res.is_err());
    assert!(crashed
        .join("checkpoints/epoch-1/trainer_state.json")
        .is_file());
    assert!(!crashed.join("model.safetensors").exists());
    // Without --resume or --overwrite the folder is refused.
    match gradpath::train::fit(
        &model,
        &train,
        &dev,
        &crashed,
        &opts,
        gradpath::train::Existing::Refuse,
        &mut |_| {},
    ) {
        Err(Error::OutputExists { .. }) => {}
        other => panic!("expected OutputExists, got {:?}", other.err()),
    }
    let r2 = gradpath::train::fit(
        &model,
        &train,
        &dev,
        &crashed,
        &opts,
        gradpath::train::Existing::Resume,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r2.resumed_from, 1);
    assert_eq!(r2.history.len(), 2);
    let a = std::fs::read(straight.join("model.safetensors")).unwrap();
    let b = std::fs::read(crashed.join("model.safetensors")).unwrap();
    assert!(
        a == b,
        "resumed weights differ from the uninterrupted run's"
    );
    assert_eq!(r.history[1].dev, r2.history[1].dev);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_data_is_a_typed_error_with_the_line() {
    let d = tmp("bad");
    let labels = vec!["neg".to_string(), "pos".to_string()];
    let cases = [
        ("{\"text\": \"x\"}\n", 1, "no \"label\""),
        (
            "{\"text\": \"x\", \"label\": 0}\n{\"text\": \"y\", \"label\": \"maybe\"}\n",
            2,
            "unknown label `maybe`",
        ),
        ("{\"text\": \"x\", \"label\": 2}\n", 1, "out of range"),
        ("{\"label\": 1}\n", 1, "no \"text\""),
        ("not json\n", 1, "not a JSON object"),
        ("\n\n", 0, "has no examples"),
    ];
    for (i, (body, line, needle)) in cases.iter().enumerate() {
        let p = d.join(format!("{i}.jsonl"));
        std::fs::write(&p, body).unwrap();
        match gradpath::train::data::read_jsonl(&p, &labels) {
            Err(e @ Error::Data { .. }) => {
                let Error::Data { line: l, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(l, line, "{e}");
                assert!(e.to_string().contains(needle), "{e}");
            }
            other => panic!("case {i}: expected a Data error, got {other:?}"),
        }
    }
    // Labels by index, by name and as an index in a string.
    let p = d.join("ok.jsonl");
    std::fs::write(&p, "{\"id\": 7, \"text\": \"x\", \"label\": 1}\n{\"text\": \"y\", \"label\": \"neg\"}\n{\"text\": \"z\", \"label\": \"1\", \"text_pair\": \"w\"}\n").unwrap();
    let ex = gradpath::train::data::read_jsonl(&p, &labels).unwrap();
    assert_eq!(
        ex.iter().map(|e| e.label).collect::<Vec<_>>(),
        vec![1, 0, 1]
    );
    assert_eq!(ex[0].id, "7");
    assert_eq!(ex[1].id, "2");
    assert_eq!(ex[2].text_pair.as_deref(), Some("w"));
    let _ = std::fs::remove_dir_all(&d);
}
