//! `gradpath train`, `eval` and `data rules` end to end on the tiny fixtures (a few dozen
//! examples): the happy path writes a Hugging Face folder that `eval` reads, and every bad input of
//! issue 16 item 6 exits with code 1, an `error:` line naming the cause and a `hint:` line, never a
//! panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

fn gradpath<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run gradpath")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Exit code 1, an `error:` line containing `cause`, a `hint:` line containing `hint`.
fn fails(out: &Output, cause: &str, hint: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let e = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    let h = err
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint line: {err}"));
    assert!(e.contains(cause), "error line lacks {cause:?}: {e}");
    assert!(
        h.contains(hint) && h.len() > 10,
        "hint line lacks {hint:?}: {h}"
    );
}

fn data(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn good(n: usize) -> String {
    let mut b = String::new();
    for i in 0..n {
        let (t, l) = if i % 2 == 0 {
            ("a good film", "pos")
        } else {
            ("a bad film", "neg")
        };
        b.push_str(&format!(
            "{{\"id\": \"{i}\", \"text\": \"{t} {i}\", \"label\": \"{l}\"}}\n"
        ));
    }
    b
}

fn train_args(model: &Path, train: &Path, dev: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--model",
        &s(model),
        "--train",
        &s(train),
        "--dev",
        &s(dev),
        "--out",
        &s(out),
        "--epochs",
        "1",
        "--batch",
        "8",
        "--lr",
        "1e-3",
        "--max-len",
        "16",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

fn with(mut v: Vec<String>, extra: &[&str]) -> Vec<String> {
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

#[test]
fn train_then_eval_writes_and_reads_a_hugging_face_folder() {
    let d = TempDir::new("happy");
    let train = data(&d, "train.jsonl", &good(24));
    // One dev text is longer than --max-len 16: truncated and counted, not an error.
    let long = format!(
        "{}{{\"id\": \"long\", \"text\": \"{}\", \"label\": \"pos\"}}\n",
        good(8),
        "a good film ".repeat(20)
    );
    let dev = data(&d, "dev.jsonl", &long);
    let out = d.join("out");
    let args = with(
        train_args(&fixture("tiny-bert-embed"), &train, &dev, &out),
        &["--labels", "neg,pos"],
    );
    let o = gradpath(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("fresh head"), "{stdout}");
    assert!(stdout.contains("dev: 9 (1 truncated)"), "{stdout}");
    assert!(stdout.contains("epoch 1/1: train loss"), "{stdout}");
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "training_report.json",
        "checkpoints/epoch-1/optimizer.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["architectures"][0], "BertForSequenceClassification");
    assert_eq!(cfg["id2label"]["0"], "neg");
    assert_eq!(cfg["label2id"]["pos"], 1);

    let j = d.join("eval.json");
    let o = gradpath(&[
        "eval",
        "--model",
        &s(&out),
        "--data",
        &s(&dev),
        "--max-len",
        "16",
        "--json",
        &s(&j),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("accuracy") && stdout.contains("confusion"),
        "{stdout}"
    );
    let e: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(e["n"], 9);
    assert_eq!(e["truncated"], 1);
    let conf = e["confusion"].as_array().unwrap();
    let total: u64 = conf
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 9);
    let correct = conf[0][0].as_u64().unwrap() + conf[1][1].as_u64().unwrap();
    assert!((e["accuracy"].as_f64().unwrap() - correct as f64 / 9.0).abs() < 1e-15);
    assert_eq!(e["per_class"].as_array().unwrap().len(), 2);
    assert!(e.get("by_depth").is_none(), "no depth in the data: {e}");
    // Records with a "depth" (as `gradpath data rules` writes) get accuracy per depth, which
    // adds up to the whole.
    let deep: String = good(9)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{}, \"depth\": {}}}\n",
                l.trim_end().trim_end_matches('}'),
                i % 3
            )
        })
        .collect();
    let deep = data(&d, "deep.jsonl", &deep);
    let jd = d.join("deep.json");
    let o = gradpath(&[
        "eval",
        "--model",
        &s(&out),
        "--data",
        &s(&deep),
        "--json",
        &s(&jd),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("accuracy by depth: depth 0:"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jd).unwrap()).unwrap();
    let by = e2["by_depth"].as_array().unwrap();
    assert_eq!(by.len(), 3);
    let right: f64 = by
        .iter()
        .map(|g| g["accuracy"].as_f64().unwrap() * g["n"].as_f64().unwrap())
        .sum();
    assert_eq!(by.iter().map(|g| g["n"].as_u64().unwrap()).sum::<u64>(), 9);
    assert!((right / 9.0 - e2["accuracy"].as_f64().unwrap()).abs() < 1e-12);
    // The report's dev accuracy after the last epoch is eval's.
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training_report.json")).unwrap())
            .unwrap();
    assert_eq!(rep["history"][0]["dev"]["accuracy"], e["accuracy"]);

    // The output exists now: refused, then replaced with --overwrite, or resumed (nothing left).
    fails(&gradpath(&args), "already exists", "--overwrite");
    let o = gradpath(&with(args.clone(), &["--overwrite"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = gradpath(&with(args, &["--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resuming after epoch 1"));
}

#[test]
fn bad_inputs_are_one_error_line_and_a_hint() {
    let d = TempDir::new("bad");
    let ok = data(&d, "ok.jsonl", &good(8));
    let base = fixture("tiny-bert-embed");
    let labels = ["--labels", "neg,pos"];
    let run = |train: &Path, extra: &[&str]| {
        gradpath(&with(train_args(&base, train, &ok, &d.join("out")), extra))
    };
    let missing = data(
        &d,
        "missing.jsonl",
        "{\"id\": \"a\", \"text\": \"x\", \"label\": \"pos\"}\n{\"id\": \"b\", \"text\": \"y\"}\n",
    );
    fails(&run(&missing, &labels), "line 2: no \"label\"", "label");
    let unknown = data(
        &d,
        "unknown.jsonl",
        "{\"text\": \"x\", \"label\": \"maybe\"}\n",
    );
    fails(&run(&unknown, &labels), "unknown label `maybe`", "id2label");
    let empty = data(&d, "empty.jsonl", "\n");
    fails(&run(&empty, &labels), "has no examples", "JSON object");
    // A base encoder without --labels.
    fails(&run(&ok, &[]), "no classification head", "--labels");
    // Class names that do not fit a classifier's head (tiny-bert has 3 classes).
    let o = gradpath(&with(
        train_args(&fixture("tiny-bert"), &ok, &ok, &d.join("out3")),
        &labels,
    ));
    fails(&o, "has 3 classes", "");
    // A missing data file, a bad learning rate, a decoder.
    fails(&run(&d.join("nope.jsonl"), &labels), "nope.jsonl", "path");
    fails(
        &run(&ok, &["--labels", "neg,pos", "--warmup", "2"]),
        "--warmup: 2 is not a fraction",
        "--help",
    );
    let o = gradpath(&with(
        train_args(&fixture("tiny-gpt2"), &ok, &ok, &d.join("out4")),
        &labels,
    ));
    fails(&o, "training takes encoder classifiers", "architectures");
    // eval on a model without a head.
    let o = gradpath(&["eval", "--model", &s(&base), "--data", &s(&ok)]);
    fails(&o, "no classification head", "");
    // Nothing was written by the failed runs.
    assert!(!d.join("out").exists());
}

#[test]
fn data_rules_is_deterministic_and_balanced() {
    let a = gradpath(&["data", "rules", "--n", "36", "--depth", "2", "--seed", "5"]);
    let b = gradpath(&["data", "rules", "--n", "36", "--depth", "2", "--seed", "5"]);
    let c = gradpath(&["data", "rules", "--n", "36", "--depth", "2", "--seed", "6"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&a.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 36);
    for depth in 0..=2 {
        for label in ["true", "false"] {
            let n = rows
                .iter()
                .filter(|r| r["depth"] == depth && r["label"] == label)
                .count();
            assert_eq!(n, 6, "depth {depth} label {label}");
        }
    }
    fails(
        &gradpath(&["data", "rules", "--n", "0"]),
        "n: must be at least 1",
        "",
    );
}

/// The training variants get their hints by variant (whatever the message).
#[test]
fn training_errors_have_their_hints() {
    use gradpath::cli::hint;
    use gradpath::Error;
    let h = hint(&Error::Data {
        file: "f".into(),
        line: 3,
        detail: "anything".into(),
    });
    assert!(h.contains("\"label\"") && h.contains("id2label"), "{h}");
    let h = hint(&Error::NoLabels { model: "m".into() });
    assert!(h.contains("--labels"), "{h}");
    let h = hint(&Error::OutputExists { path: "p".into() });
    assert!(h.contains("--overwrite") && h.contains("--resume"), "{h}");
    let h = hint(&Error::Checkpoint {
        path: "p".into(),
        detail: "x".into(),
    });
    assert!(h.contains("--overwrite"), "{h}");
    // Library messages name no flags.
    for e in [
        Error::Data {
            file: "f".into(),
            line: 0,
            detail: "has no examples".into(),
        },
        Error::NoLabels { model: "m".into() },
        Error::OutputExists { path: "p".into() },
    ] {
        assert!(!e.to_string().contains("--"), "{e}");
    }
}
