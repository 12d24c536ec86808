//! `gradpath compare` (`explain::compare`, `Explainer::load_classifier`) on the tiny random
//! models in f64: a model against itself gives identical numbers and zero differences; a base
//! encoder's fresh head is deterministic for a seed and differs for another; every number is
//! what IG and conductance give when run directly, with completeness Σ IG = F(x) − F(x′) + δ; the
//! formulas of docs/FINETUNE.md recomputed here from the reported attributions; the JSON names;
//! the command's errors.

use gradpath::attribution::TargetKind;
use gradpath::explain::{
    compare, read_data, CompareExample, CompareOptions, CompareReport, ConductanceOptions,
    Explainer, IgOptions, Input, ModelResult, Occurrence, Options, PathOptions, Quadrature,
};
use gradpath::integrate::Rule;
use gradpath::{DType, Error};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn f64_options() -> Options {
    Options {
        dtype: DType::F64,
        ..Options::default()
    }
}

fn labels3() -> Vec<String> {
    ["LABEL_0", "LABEL_1", "LABEL_2"].map(String::from).to_vec()
}

/// tiny-bert (a classifier checkpoint) as it is.
fn tuned() -> Explainer {
    Explainer::load_classifier(fixture("tiny-bert"), None, 0, f64_options()).unwrap()
}

/// tiny-bert-embed (a `BertModel`) with a fresh 3-class head.
fn base(seed: u64) -> Explainer {
    Explainer::load_classifier(
        fixture("tiny-bert-embed"),
        Some(&labels3()),
        seed,
        f64_options(),
    )
    .unwrap()
}

fn example(id: &str, text: &str, pair: &str, label: usize, depth: usize) -> CompareExample {
    CompareExample {
        id: id.into(),
        label: Some(label),
        depth: Some(depth),
        ..CompareExample::text(text).pair(pair)
    }
}

fn examples() -> Vec<CompareExample> {
    vec![
        example("a", "the quick brown fox", "a dog runs in the park", 0, 0),
        example("b", "a good movie", "it was not bad", 1, 1),
        example("c", "the man has a cat", "the cat is small", 2, 0),
        example("d", "explain the model path", "grad of the token", 0, 1),
    ]
}

/// Few points keep the tests fast; nothing below depends on the count.
fn options() -> CompareOptions {
    CompareOptions {
        steps: 8,
        conductance_steps: 8,
        ..CompareOptions::default()
    }
}

fn models(x: &gradpath::explain::ExampleComparison) -> [&ModelResult; 2] {
    [&x.base, &x.tuned]
}

#[test]
fn a_model_against_itself_gives_identical_numbers_and_zero_differences() {
    let (a, b) = (tuned(), tuned());
    let r = compare(&a, &b, &examples(), &options()).unwrap();
    assert_eq!(r.examples.len(), 4);
    assert!(r.base.fresh_parameters.is_empty() && r.base.head_seed.is_none());
    for x in &r.examples {
        let (p, q) = (&x.base, &x.tuned);
        assert_eq!(p.logits, q.logits);
        assert_eq!(p.predicted, q.predicted);
        assert_eq!(p.ig.attributions, q.ig.attributions);
        assert_eq!(p.ig.delta, q.ig.delta);
        assert_eq!(p.conductance.values, q.conductance.values);
        assert_eq!(p.conductance.layer_deltas, q.conductance.layer_deltas);
        assert_eq!(p.ig.entropy, q.ig.entropy);
    }
    let d = &r.summary.difference;
    for v in [&d.mean_curve, &d.mean_abs_curve, &d.mean_token_share] {
        assert_eq!(v, &vec![0.0; r.n_layers]);
    }
    assert_eq!(d.accuracy, Some(0.0));
    for s in [
        d.peak_layer,
        d.late_share,
        d.entropy,
        d.negative_share,
        d.relative_delta,
        d.conductance_relative_delta,
    ] {
        assert_eq!((s.mean, s.median), (Some(0.0), Some(0.0)));
    }
    assert_eq!(
        r.summary.base.peak_layer_counts,
        r.summary.tuned.peak_layer_counts
    );
    assert_eq!(r.by_depth.len(), 2);
    for g in &r.by_depth {
        assert_eq!(g.group.difference.mean_curve, vec![0.0; r.n_layers]);
    }
}

#[test]
fn a_fresh_head_is_deterministic_for_a_seed_and_differs_for_another() {
    let (b0, b0_again, b1) = (base(0), base(0), base(1));
    let info = b0.classifier_info().unwrap();
    assert_eq!(info.head_seed, Some(0));
    // BERT keeps the checkpoint's pooler: only the classifier is new
    assert_eq!(
        info.fresh_parameters,
        vec![
            "classifier.weight".to_string(),
            "classifier.bias".to_string()
        ]
    );
    assert_eq!(info.labels, labels3());
    let t = tuned();
    let ex = examples();
    let r0 = compare(&b0, &t, &ex, &options()).unwrap();
    let r0b = compare(&b0_again, &t, &ex, &options()).unwrap();
    let r1 = compare(&b1, &t, &ex, &options()).unwrap();
    assert_eq!(r0.base.head_seed, Some(0));
    assert_eq!(r1.base.head_seed, Some(1));
    for ((x, y), z) in r0.examples.iter().zip(&r0b.examples).zip(&r1.examples) {
        assert_eq!(x.base.logits, y.base.logits);
        assert_eq!(x.base.ig.attributions, y.base.ig.attributions);
        assert_eq!(x.base.conductance.values, y.base.conductance.values);
        // the same class is explained (the tuned model's prediction), on another head
        assert_eq!(x.class, z.class);
        assert_eq!(x.class, x.tuned.predicted);
        assert_ne!(x.base.logits, z.base.logits);
        assert_ne!(x.base.ig.attributions, z.base.ig.attributions);
        // the tuned side does not depend on the base's seed
        assert_eq!(x.tuned.ig.attributions, z.tuned.ig.attributions);
    }
    // the same fresh head as training's loader gives
    let clf = gradpath::train::classifier::load(
        &fixture("tiny-bert-embed"),
        Some(&labels3()),
        0,
        DType::F64,
    )
    .unwrap();
    assert_eq!(clf.fresh, info.fresh_parameters);
}

#[test]
fn every_number_is_what_the_methods_give_with_completeness() {
    let (b, t) = (base(3), tuned());
    let o = options();
    let r = compare(&b, &t, &examples(), &o).unwrap();
    assert_eq!(r.n_layers, 2);
    assert_eq!(r.late_from, 1);
    for x in &r.examples {
        for (ex, m) in [(&b, &x.base), (&t, &x.tuned)] {
            let input = Input::text(x.text.clone())
                .pair(x.pair.clone().unwrap())
                .class(x.class.to_string());
            let path = |steps| PathOptions {
                quadrature: Quadrature {
                    rule: Rule::GaussLegendre,
                    steps,
                },
                ..PathOptions::default()
            };
            let ig = ex
                .ig(
                    &input,
                    &IgOptions {
                        path: path(o.steps),
                        adaptive: None,
                    },
                )
                .unwrap();
            assert_eq!(m.ig.attributions, ig.attributions);
            assert_eq!(
                (m.ig.f_input, m.ig.f_baseline, m.ig.delta),
                (ig.f_input, ig.f_baseline, ig.delta)
            );
            // completeness: Σ IG = F(x) − F(x′) + δ
            let sum: f64 = m.ig.attributions.iter().sum();
            let df = m.ig.f_input - m.ig.f_baseline;
            assert!((sum - (df + m.ig.delta)).abs() <= 1e-14 * sum.abs().max(1.0));
            assert_eq!(m.ig.relative_delta, m.ig.delta.abs() / df.abs());
            // Gauss–Legendre at 8 points on a tiny f64 model
            assert!(m.ig.relative_delta < 1e-4, "{}", m.ig.relative_delta);
            let cond = ex
                .conductance(
                    &input,
                    &ConductanceOptions {
                        path: path(o.conductance_steps),
                        token: Some(x.token_index.to_string()),
                        ..ConductanceOptions::default()
                    },
                )
                .unwrap();
            let curve = cond.token.unwrap();
            assert_eq!(curve.index, x.token_index);
            assert_eq!(m.conductance.values, curve.values);
            assert_eq!(m.conductance.token_share, curve.normalised);
            for (l, layer) in cond.layers.iter().enumerate() {
                assert_eq!(m.conductance.layer_totals[l], layer.total);
                assert_eq!(m.conductance.layer_deltas[l], layer.delta.unwrap());
                let want = layer.total - (cond.f_input - cond.f_baseline);
                assert!((m.conductance.layer_deltas[l] - want).abs() < 1e-14);
            }
            assert_eq!(
                m.conductance.worst_relative_delta,
                m.conductance
                    .layer_relative_deltas
                    .iter()
                    .copied()
                    .fold(0.0, f64::max)
            );
            // the pooler reads [CLS] only: the last layer gives every other token nothing
            assert_ne!(x.token_index, 0);
            assert_eq!(*m.conductance.values.last().unwrap(), 0.0);
        }
    }
}

/// The formulas of docs/FINETUNE.md, written out again from the reported values.
fn check_formulas(x: &gradpath::explain::ExampleComparison, m: &ModelResult) {
    let a: Vec<f64> =
        m.ig.attributions
            .iter()
            .zip(&x.special)
            .filter(|(_, s)| !**s)
            .map(|(a, _)| *a)
            .collect();
    let total: f64 = a.iter().map(|v| v.abs()).sum();
    let h: f64 = a
        .iter()
        .map(|v| v.abs() / total)
        .filter(|p| *p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    let entropy = h / (a.len() as f64).ln();
    assert!((m.ig.entropy.unwrap() - entropy).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&entropy));
    let neg: f64 = a.iter().filter(|v| **v < 0.0).map(|v| -v).sum();
    assert!((m.ig.negative_share.unwrap() - neg / total).abs() < 1e-12);
    let c = &m.conductance.values;
    let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
    for (n, v) in m.conductance.normalised.iter().zip(c) {
        assert!((n - v / norm).abs() < 1e-12);
    }
    let l = c.len();
    let late: f64 = c[l.div_ceil(2)..].iter().map(|v| v.abs()).sum();
    let all: f64 = c.iter().map(|v| v.abs()).sum();
    assert!((m.conductance.late_share.unwrap() - late / all).abs() < 1e-12);
    let peak = (0..l)
        .max_by(|&i, &j| c[i].abs().total_cmp(&c[j].abs()).then(j.cmp(&i)))
        .unwrap();
    assert_eq!(m.conductance.peak_layer, Some(peak));
}

#[test]
fn the_formulas_hold_and_the_averages_are_over_examples() {
    let (b, t) = (base(0), tuned());
    let ex = examples();
    let r = compare(&b, &t, &ex, &options()).unwrap();
    for x in &r.examples {
        for m in models(x) {
            check_formulas(x, m);
        }
        assert_eq!(x.tokens[x.token_index], "[SEP]");
    }
    let n = r.examples.len() as f64;
    for (g, pick) in [(&r.summary.base, 0usize), (&r.summary.tuned, 1usize)] {
        let ms: Vec<&ModelResult> = r.examples.iter().map(|x| models(x)[pick]).collect();
        for l in 0..r.n_layers {
            let mean: f64 = ms.iter().map(|m| m.conductance.normalised[l]).sum::<f64>() / n;
            assert!((g.mean_curve[l] - mean).abs() < 1e-14);
            let mean_abs: f64 = ms
                .iter()
                .map(|m| m.conductance.normalised[l].abs())
                .sum::<f64>()
                / n;
            assert!((g.mean_abs_curve[l] - mean_abs).abs() < 1e-14);
        }
        let e: Vec<f64> = ms.iter().map(|m| m.ig.entropy.unwrap()).collect();
        assert!((g.entropy.mean.unwrap() - e.iter().sum::<f64>() / n).abs() < 1e-14);
        let mut sorted = e.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(g.entropy.median, Some(0.5 * (sorted[1] + sorted[2])));
        assert_eq!(g.entropy.min, Some(sorted[0]));
        assert_eq!(g.entropy.max, Some(sorted[3]));
        let correct = r
            .examples
            .iter()
            .filter(|x| models(x)[pick].predicted == x.label.unwrap())
            .count();
        assert_eq!((g.labelled, g.correct), (4, correct));
        assert_eq!(g.accuracy, Some(correct as f64 / 4.0));
        assert_eq!(g.peak_layer_counts.iter().sum::<usize>(), 4);
    }
    let d = &r.summary.difference;
    assert_eq!(
        d.accuracy,
        Some(r.summary.tuned.accuracy.unwrap() - r.summary.base.accuracy.unwrap())
    );
    assert_eq!(
        d.entropy.mean,
        Some(r.summary.tuned.entropy.mean.unwrap() - r.summary.base.entropy.mean.unwrap())
    );
    // per depth: examples a, c at depth 0; b, d at depth 1
    assert_eq!(
        r.by_depth
            .iter()
            .map(|d| (d.depth, d.group.n))
            .collect::<Vec<_>>(),
        vec![(0, 2), (1, 2)]
    );
    for d in &r.by_depth {
        let xs: Vec<_> = r
            .examples
            .iter()
            .filter(|x| x.depth == Some(d.depth))
            .collect();
        let right = xs
            .iter()
            .filter(|x| x.tuned.predicted == x.label.unwrap())
            .count();
        assert_eq!(d.group.tuned.correct, right);
        let late: f64 = xs
            .iter()
            .map(|x| x.tuned.conductance.late_share.unwrap())
            .sum::<f64>()
            / 2.0;
        assert!((d.group.tuned.late_share.mean.unwrap() - late).abs() < 1e-14);
    }
}

#[test]
fn class_token_occurrence_and_truncation() {
    let (b, t) = (base(0), tuned());
    let ex = vec![
        CompareExample::text("the quick brown fox jumps over the dog")
            .pair("a small cat runs in the park"),
    ];
    // a fixed class, by label, explained on both models
    let o = CompareOptions {
        class: Some("LABEL_2".into()),
        kind: TargetKind::Prob,
        ..options()
    };
    let r = compare(&b, &t, &ex, &o).unwrap();
    let x = &r.examples[0];
    assert_eq!((x.class, x.class_label.as_deref()), (2, Some("LABEL_2")));
    assert_eq!(r.kind, "prob");
    let p = |l: &[f64]| {
        let z: f64 = l.iter().map(|v| v.exp()).sum();
        l[2].exp() / z
    };
    assert!((x.tuned.ig.f_input - p(&x.tuned.logits)).abs() < 1e-12);
    assert!((x.base.ig.f_input - p(&x.base.logits)).abs() < 1e-12);
    // the first [SEP] sits between the segments, the last closes the input
    let seps: Vec<usize> = (0..x.tokens.len())
        .filter(|&i| x.tokens[i] == "[SEP]")
        .collect();
    assert_eq!(seps.len(), 2);
    assert_eq!(x.token_index, seps[0]);
    assert_eq!(x.tokens[seps[0] + 1], "a");
    let last = compare(
        &b,
        &t,
        &ex,
        &CompareOptions {
            occurrence: Occurrence::Last,
            ..options()
        },
    )
    .unwrap();
    assert_eq!(last.examples[0].token_index, x.tokens.len() - 1);
    // another token, by its spelling
    let fox = compare(
        &b,
        &t,
        &ex,
        &CompareOptions {
            token: Some("fox".into()),
            ..options()
        },
    )
    .unwrap();
    assert_eq!(fox.examples[0].tokens[fox.examples[0].token_index], "fox");
    // truncation at 12 tokens: the ids `gradpath train` gives (transformers' longest-first)
    let short = compare(
        &b,
        &t,
        &ex,
        &CompareOptions {
            max_len: Some(12),
            ..options()
        },
    )
    .unwrap();
    let y = &short.examples[0];
    assert!(y.truncated);
    assert_eq!(short.truncated, 1);
    assert_eq!(y.tokens.len(), 12);
    assert!(short.warnings.iter().any(|w| w.contains("truncated")));
    let enc = gradpath::train::data::TextEncoder::new(
        &fixture("tiny-bert").join("tokenizer.json"),
        12,
        0,
    )
    .unwrap();
    let (want, cut) = enc
        .encode(&[gradpath::train::data::Example {
            id: "1".into(),
            text: ex[0].text.clone(),
            text_pair: ex[0].pair.clone(),
            label: 0,
            depth: None,
        }])
        .unwrap();
    assert_eq!(cut, 1);
    let ids: Vec<usize> = y
        .tokens
        .iter()
        .map(|tk| t.tokenizer().token_to_id(tk).unwrap())
        .collect();
    assert_eq!(ids, want[0].ids);
    assert!(ex[0].text.starts_with(&y.text) && y.text.len() < ex[0].text.len());
}

#[test]
fn bad_examples_fail_or_are_skipped_and_bad_models_are_refused() {
    let (b, t) = (base(0), tuned());
    let mut ex = examples();
    ex[1].origin = Some(("data.jsonl".into(), 2));
    let o = CompareOptions {
        token: Some("park".into()),
        ..options()
    };
    // only example a has "park": b fails, named by its line
    match compare(&b, &t, &ex, &o) {
        Err(Error::BadExample {
            line, id, cause, ..
        }) => {
            assert_eq!((line, id.as_deref()), (2, Some("b")));
            assert!(matches!(
                cause.as_deref(),
                Some(Error::Unknown { what: "token", .. })
            ));
        }
        other => panic!("{:?}", other.map(|r| r.examples.len())),
    }
    let r = compare(
        &b,
        &t,
        &ex,
        &CompareOptions {
            skip_bad: true,
            ..o.clone()
        },
    )
    .unwrap();
    assert_eq!(r.examples.len(), 1);
    assert_eq!(
        r.skipped
            .iter()
            .map(|s| (s.id.as_str(), s.line))
            .collect::<Vec<_>>(),
        vec![("b", Some(2)), ("c", None), ("d", None)]
    );
    // a text without an origin: the plain error
    assert!(matches!(
        compare(&b, &t, &ex[2..3], &o),
        Err(Error::Unknown { what: "token", .. })
    ));
    // different vocabularies
    let roberta =
        Explainer::load_classifier(fixture("tiny-roberta"), None, 0, f64_options()).unwrap();
    match compare(&roberta, &t, &ex, &options()) {
        Err(Error::Mismatch { what, .. }) => assert_eq!(what, "tokenizers"),
        other => panic!("{:?}", other.map(|r| r.examples.len())),
    }
    // the same vocabulary but another number of classes
    let distil =
        Explainer::load_classifier(fixture("tiny-distilbert"), None, 0, f64_options()).unwrap();
    match compare(&distil, &t, &ex, &options()) {
        Err(Error::Mismatch { what, detail }) => {
            assert_eq!(what, "models");
            assert!(detail.contains("classes"), "{detail}");
        }
        other => panic!("{:?}", other.map(|r| r.examples.len())),
    }
    // a base encoder without class names
    assert!(matches!(
        Explainer::load_classifier(fixture("tiny-bert-embed"), None, 0, f64_options()),
        Err(Error::NoLabels { .. })
    ));
    for (o, name) in [
        (
            CompareOptions {
                steps: 0,
                ..options()
            },
            "steps",
        ),
        (
            CompareOptions {
                max_len: Some(65),
                ..options()
            },
            "max_len",
        ),
    ] {
        match compare(&b, &t, &ex, &o) {
            Err(Error::BadValue { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{:?}", other.map(|r| r.examples.len())),
        }
    }
    assert!(matches!(
        compare(
            &b,
            &t,
            &ex,
            &CompareOptions {
                class: Some("LABEL_9".into()),
                ..options()
            }
        ),
        Err(Error::Unknown {
            what: "class label",
            ..
        })
    ));
}

#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

#[test]
fn read_data_takes_labels_depths_and_limits() {
    let d = TempDir::new("read");
    let f = d.join("data.jsonl");
    std::fs::write(
        &f,
        "{\"id\": \"x\", \"text\": \"a good movie\", \"text_pair\": \"it was\", \"label\": \"LABEL_1\", \"depth\": 2}\n\
         \n\
         {\"text\": \"a bad movie\", \"label\": 0}\n\
         {\"text\": \"no label\"}\n",
    )
    .unwrap();
    let v = read_data(&f, &labels3(), None).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(
        (
            v[0].id.as_str(),
            v[0].label,
            v[0].depth,
            v[0].pair.as_deref()
        ),
        ("x", Some(1), Some(2), Some("it was"))
    );
    assert_eq!(
        (v[1].id.as_str(), v[1].label, v[1].depth),
        ("3", Some(0), None)
    );
    assert_eq!(v[1].origin, Some((f.display().to_string(), 3)));
    assert_eq!(v[2].label, None);
    assert_eq!(read_data(&f, &labels3(), Some(2)).unwrap().len(), 2);
    for (line, want) in [
        ("{\"text\": \"a\", \"depth\": -1}", "depth"),
        ("{\"text\": \"a\", \"label\": \"LABEL_7\"}", "LABEL_7"),
        ("{\"text\": \"\"}", "empty"),
        ("[1, 2]", "not a JSON object"),
        (
            "{\"id\": 1, \"text\": \"a\"}\n{\"id\": 1, \"text\": \"b\"}",
            "already used",
        ),
    ] {
        std::fs::write(&f, line).unwrap();
        match read_data(&f, &labels3(), None) {
            Err(Error::Data { detail, line, .. }) => {
                assert!(detail.contains(want), "{detail}");
                assert!(line >= 1);
            }
            other => panic!("{line}: {other:?}"),
        }
    }
    assert!(matches!(
        read_data(&f, &labels3(), Some(0)),
        Err(Error::BadValue { name: "limit", .. })
    ));
}

// ----------------------------------------------------------------------------------------------
// The command
// ----------------------------------------------------------------------------------------------

fn gradpath(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// `gradpath compare --base b --tuned t <extra...>`.
fn run_compare(b: &str, t: &str, extra: &[&str]) -> Output {
    let mut args = vec!["compare", "--base", b, "--tuned", t];
    args.extend_from_slice(extra);
    gradpath(&args)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exit code 1, exactly an `error:` and a `hint:` line, each holding its keywords.
fn expect_error(out: &Output, error: &[&str], hint: &[&str]) {
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(
        lines[0].starts_with("error: ") && lines[1].starts_with("hint: "),
        "{e}"
    );
    for k in error {
        assert!(lines[0].contains(k), "error line lacks {k:?}: {e}");
    }
    for k in hint {
        assert!(lines[1].contains(k), "hint line lacks {k:?}: {e}");
    }
}

#[test]
fn the_command_writes_json_and_html_with_every_field() {
    let d = TempDir::new("cli");
    let data = d.join("rules.jsonl");
    std::fs::write(
        &data,
        "{\"id\": \"r0\", \"text\": \"the dog is small\", \"text_pair\": \"the dog is good\", \"label\": \"LABEL_1\", \"depth\": 0}\n\
         {\"id\": \"r1\", \"text\": \"the cat is bad\", \"text_pair\": \"the cat is good\", \"label\": 0, \"depth\": 1}\n\
         {\"id\": \"r2\", \"text\": \"a man has a dog\", \"text_pair\": \"the man is good\", \"label\": 2, \"depth\": 1}\n",
    )
    .unwrap();
    let (json, html) = (d.join("c.json"), d.join("c.html"));
    let (b, t) = (fixture("tiny-bert-embed"), fixture("tiny-bert"));
    let out = gradpath(&[
        "compare",
        "--base",
        s(&b),
        "--tuned",
        s(&t),
        "--data",
        s(&data),
        "--steps",
        "6",
        "--conductance-steps",
        "6",
        "--seed",
        "7",
        "--dtype",
        "f64",
        "--json",
        s(&json),
        "--html",
        s(&html),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in [
        "fresh head, seed 7",
        "accuracy (3 labelled)",
        "peak layer",
        "late-layer share",
        "entropy",
        "negative share",
        "IG |relative delta| (median)",
        "depth",
    ] {
        assert!(stdout.contains(k), "{k}: {stdout}");
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "at",
            "base",
            "baseline",
            "by_depth",
            "class",
            "conductance_steps",
            "dtype",
            "examples",
            "gradpath_version",
            "kind",
            "labels",
            "late_from",
            "max_len",
            "method",
            "n_layers",
            "occurrence",
            "quadrature",
            "skipped",
            "steps",
            "summary",
            "timing",
            "token",
            "truncated",
            "tuned",
            "warnings"
        ]
    );
    assert_eq!(v["method"], "compare");
    assert_eq!(v["token"], "[SEP]");
    assert_eq!(v["base"]["head_seed"], 7);
    assert_eq!(v["tuned"]["head_seed"], Value::Null);
    assert_eq!(
        keys(&v["examples"][0]),
        [
            "base",
            "class",
            "class_label",
            "depth",
            "id",
            "label",
            "label_name",
            "pair",
            "special",
            "text",
            "token_index",
            "tokens",
            "tokens_display",
            "truncated",
            "tuned"
        ]
    );
    assert_eq!(
        keys(&v["examples"][0]["tuned"]),
        [
            "conductance",
            "correct",
            "ig",
            "logits",
            "predicted",
            "predicted_label"
        ]
    );
    assert_eq!(
        keys(&v["examples"][0]["tuned"]["ig"]),
        [
            "attributions",
            "delta",
            "entropy",
            "f_baseline",
            "f_input",
            "negative_share",
            "relative_delta"
        ]
    );
    assert_eq!(
        keys(&v["examples"][0]["tuned"]["conductance"]),
        [
            "late_share",
            "layer_deltas",
            "layer_relative_deltas",
            "layer_totals",
            "normalised",
            "peak_layer",
            "token_share",
            "values",
            "worst_relative_delta"
        ]
    );
    assert_eq!(keys(&v["summary"]), ["base", "difference", "n", "tuned"]);
    assert_eq!(
        keys(&v["summary"]["tuned"]),
        [
            "accuracy",
            "conductance_relative_delta",
            "correct",
            "delta",
            "entropy",
            "labelled",
            "late_share",
            "mean_abs_curve",
            "mean_curve",
            "mean_token_share",
            "negative_share",
            "peak_layer",
            "peak_layer_counts",
            "relative_delta"
        ]
    );
    assert_eq!(
        keys(&v["summary"]["tuned"]["entropy"]),
        ["max", "mean", "median", "min", "n"]
    );
    assert_eq!(
        keys(&v["by_depth"][1]),
        ["base", "depth", "difference", "n", "tuned"]
    );
    assert_eq!(v["by_depth"][1]["n"], 2);
    assert_eq!(v["examples"][1]["label"], 0);
    assert_eq!(v["examples"][0]["label_name"], "LABEL_1");
    let page = std::fs::read_to_string(&html).unwrap();
    for k in [
        "<svg",
        "#ff7f0e",
        "#1f77b4",
        "Per depth",
        "r2",
        "mark class=\"pick\"",
    ] {
        assert!(page.contains(k), "{k}");
    }
    assert!(!page.contains("<script"));
}

#[test]
fn the_command_refuses_bad_input_with_an_error_and_a_hint() {
    let d = TempDir::new("errors");
    let (b, t) = (fixture("tiny-bert-embed"), fixture("tiny-bert"));
    let (b, t) = (s(&b), s(&t));
    let text = "the quick brown fox";
    let data = d.join("d.jsonl");
    std::fs::write(&data, "{\"text\": \"a good movie\"}\n").unwrap();
    let missing = d.join("nowhere");
    // a missing folder
    expect_error(
        &gradpath(&[
            "compare",
            "--base",
            s(&missing),
            "--tuned",
            t,
            "--text",
            text,
        ]),
        &["nowhere"],
        &["config.json"],
    );
    // both and neither
    expect_error(
        &run_compare(b, t, &["--text", text, "--data", s(&data)]),
        &["--text", "not both"],
        &["--help"],
    );
    expect_error(
        &gradpath(&["compare", "--base", b, "--tuned", t]),
        &["--text", "--data"],
        &["--help"],
    );
    expect_error(
        &run_compare(b, t, &["--data", s(&data), "--pair", "x"]),
        &["--pair"],
        &["--help"],
    );
    // the token is not in the text
    expect_error(
        &run_compare(
            b,
            t,
            &[
                "--text",
                text,
                "--token",
                "park",
                "--steps",
                "2",
                "--conductance-steps",
                "2",
            ],
        ),
        &["--token `park`", "quick"],
        &["token"],
    );
    // ... nor in a line of the data: named, and --skip-bad suggested
    let out = run_compare(b, t, &["--data", s(&data), "--token", "park"]);
    expect_error(&out, &["line 1", "park"], &["--skip-bad"]);
    // a bad line
    std::fs::write(&data, "{\"text\": \"a good movie\"}\n{\"text\": 3}\n").unwrap();
    expect_error(
        &run_compare(b, t, &["--data", s(&data)]),
        &["line 2", "\"text\" is not a string"],
        &["text"],
    );
    // models with different tokenizers
    let roberta = fixture("tiny-roberta");
    expect_error(
        &gradpath(&[
            "compare",
            "--base",
            b,
            "--tuned",
            s(&roberta),
            "--text",
            text,
        ]),
        &["different vocabularies"],
        &["same tokenizer"],
    );
    // a base encoder as the tuned model without --labels
    expect_error(
        &gradpath(&["compare", "--base", t, "--tuned", b, "--text", text]),
        &["no classification head"],
        &["--labels"],
    );
    // --max-len beyond the positions
    expect_error(
        &run_compare(b, t, &["--text", text, "--max-len", "100"]),
        &["--max-len", "64 positions"],
        &["--help"],
    );
    // nothing written by a failed run
    let json = d.join("never.json");
    let out = run_compare(
        b,
        t,
        &["--text", text, "--token", "park", "--json", s(&json)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!json.exists());
}

#[test]
fn a_report_serialises_without_non_finite_numbers() {
    let r: CompareReport = compare(&base(0), &tuned(), &examples()[..1], &options()).unwrap();
    let f = gradpath::report::check::scan(&r).unwrap();
    assert_eq!(f.non_finite, None);
    // one example: no depth groups but its own, medians equal means
    assert_eq!(r.by_depth.len(), 1);
    assert_eq!(r.summary.tuned.entropy.mean, r.summary.tuned.entropy.median);
}
