//! Hardening of the `gradpath` binary (issue "Hardening"): a closed stdout, colliding or
//! dangerous output paths, a run that fails half-way, absurd configs, absurd thread counts,
//! NaN results and unmet tolerances. Each class ends in a clean `error:` + `hint:` (or a quiet
//! success), never a panic, and never a half-written or clobbered file.
//!
//! Uses the tiny random fixtures under tests/fixtures/models; broken copies are made per test in
//! a fresh temp folder.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot start the gradpath binary")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1, `error:` then `hint:`, no panic, and the error mentions every keyword.
fn expect_error(o: &Output, keywords: &[&str]) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr:\n{e}");
    assert!(!e.contains("panicked"), "panic:\n{e}");
    let error = e
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{e}"));
    assert!(
        e.lines().any(|l| l.starts_with("hint: ")),
        "no hint line:\n{e}"
    );
    for k in keywords {
        assert!(error.contains(k), "`{k}` not in `{error}`");
    }
    error.to_string()
}

fn copy_model(name: &str, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
}

/// A copy of fixture `name` with `edit` applied to its config.json.
fn edited_model(t: &TempDir, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let dst = t.join(name);
    copy_model(name, &dst);
    let p = dst.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    dst
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ----------------------------------------------------------------------------------------------
// 1. A closed stdout
// ----------------------------------------------------------------------------------------------

/// Every command run with its stdout closed before it prints (`gradpath ... | head -0`) ends
/// without a panic, with exit code 0, after writing its files (`data rules` prints its examples
/// to stdout, so there is nothing to keep).
#[test]
fn every_command_survives_a_closed_stdout() {
    let t = TempDir::new("stdout");
    let bert = fixture("tiny-bert");
    let gpt2 = fixture("tiny-gpt2");
    let (bert, gpt2) = (s(&bert).to_string(), s(&gpt2).to_string());
    let bert_embed = s(&fixture("tiny-bert-embed")).to_string();
    let text = "the film was not bad";
    let data = t.join("data.jsonl");
    std::fs::write(
        &data,
        "{\"id\": \"a\", \"text\": \"a good film\", \"label\": 1}\n\
         {\"id\": \"b\", \"text\": \"a dull film\", \"label\": 0}\n\
         {\"id\": \"c\", \"text\": \"not bad at all\", \"label\": 1}\n",
    )
    .unwrap();
    let files = ["batch.jsonl", "merged.jsonl", "report.html", "trained"].map(|f| t.join(f));
    let data = s(&data).to_string();
    let [batch, merged, page, trained] = files.each_ref().map(|p| s(p).to_string());
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        (
            "ig",
            vec!["--model", &bert, "--text", text, "--steps", "4"],
            true,
        ),
        (
            "layer-ig",
            vec![
                "--model",
                &bert,
                "--text",
                text,
                "--boundary",
                "blocks.0.hook_resid_pre",
                "--steps",
                "4",
            ],
            true,
        ),
        (
            "conductance",
            vec!["--model", &bert, "--text", text, "--steps", "4"],
            true,
        ),
        ("saliency", vec!["--model", &bert, "--text", text], true),
        ("attention", vec!["--model", &bert, "--text", text], true),
        ("ablate", vec!["--model", &bert, "--text", text], true),
        (
            "sensitivity",
            vec!["--model", &bert, "--text", text, "--draws", "2"],
            true,
        ),
        (
            "attattr",
            vec!["--model", &bert, "--text", text, "--steps", "4"],
            true,
        ),
        (
            "lig",
            vec![
                "--model", &bert, "--text", text, "--steps", "4", "--layers", "0",
            ],
            true,
        ),
        (
            "generate-attr",
            vec![
                "--model",
                &gpt2,
                "--text",
                "hello world",
                "--max-new-tokens",
                "2",
                "--steps",
                "4",
            ],
            true,
        ),
        (
            "neuron",
            vec![
                "--model",
                &bert,
                "--text",
                text,
                "--boundary",
                "blocks.1.hook_resid_post",
                "--neuron",
                "1,3",
                "--steps",
                "4",
            ],
            true,
        ),
        (
            "converge",
            vec![
                "--model",
                &bert,
                "--text",
                text,
                "--rules",
                "riemann-left",
                "--points",
                "4,8",
            ],
            true,
        ),
        (
            "compare",
            vec![
                "--base",
                &bert_embed,
                "--tuned",
                &bert,
                "--data",
                &data,
                "--steps",
                "2",
                "--conductance-steps",
                "2",
            ],
            true,
        ),
        (
            "heads",
            vec![
                "--model",
                &bert,
                "--data",
                &data,
                "--by",
                "attention",
                "--steps",
                "2",
            ],
            true,
        ),
        ("eval", vec!["--model", &bert, "--data", &data], true),
        // batch → merge → report, in this order (each reads the one before).
        (
            "batch",
            vec![
                "--method", "saliency", "--model", &bert, "--input", &data, "--output", &batch,
            ],
            false,
        ),
        (
            "merge",
            vec!["--input", &data, "--output", &merged, &batch],
            false,
        ),
        ("report", vec!["--input", &merged, "--html", &page], true),
        (
            "train",
            vec![
                "--model", &bert, "--train", &data, "--dev", &data, "--out", &trained, "--epochs",
                "1", "--batch", "2",
            ],
            false,
        ),
        ("data", vec!["rules", "--n", "3"], false),
        ("hooks", vec!["--model", &bert, "--text", text], false),
        ("ops", vec![], false),
        ("info", vec![], false),
    ];
    for (cmd, args, writes_json) in cases {
        let json = t.join(&format!("{cmd}.json"));
        let mut full: Vec<&str> = vec![cmd];
        full.extend(&args);
        if writes_json {
            full.extend(["--json", s(&json)]);
        }
        let mut child = Command::new(BIN)
            .args(&full)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command prints anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let e = stderr(&out);
        assert!(
            !e.contains("panicked"),
            "{cmd}: panic with a closed stdout:\n{e}"
        );
        assert!(out.status.success(), "{cmd}: {:?}\n{e}", out.status);
        if writes_json {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap())
                .unwrap_or_else(|err| panic!("{cmd}: the JSON is not valid: {err}"));
            assert!(v.is_object(), "{cmd}");
        }
    }
    // The files of the commands that write something else than --json.
    for f in &files {
        assert!(f.exists(), "{} was not written", f.display());
    }
    assert_eq!(
        std::fs::read_to_string(&files[1]).unwrap().lines().count(),
        3,
        "merge"
    );
}

// ----------------------------------------------------------------------------------------------
// 2. Output paths and all-or-nothing writes
// ----------------------------------------------------------------------------------------------

#[test]
fn json_and_html_on_the_same_path_is_an_error_and_writes_nothing() {
    let t = TempDir::new("same");
    let m = fixture("tiny-bert");
    let x = t.join("x.out");
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "4",
        "--json",
        s(&x),
        "--html",
        s(&x),
    ]);
    expect_error(&o, &["x.out", "two outputs"]);
    assert!(t.names().is_empty(), "{:?}", t.names());
    // The same file through another spelling of the path.
    std::fs::create_dir_all(t.join("sub")).unwrap();
    let other = t.join("sub/../x.out");
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "4",
        "--json",
        s(&x),
        "--html",
        s(&other),
    ]);
    expect_error(&o, &["two outputs"]);
    assert_eq!(t.names(), vec!["sub".to_string()]);
}

#[test]
fn an_output_onto_the_model_files_is_refused() {
    let t = TempDir::new("model");
    let m = t.join("tiny-bert");
    copy_model("tiny-bert", &m);
    let config = std::fs::read(m.join("config.json")).unwrap();
    for name in ["config.json", "tokenizer.json", "new-file-inside.json"] {
        let o = run(&[
            "ig",
            "--model",
            s(&m),
            "--text",
            "good",
            "--steps",
            "4",
            "--json",
            s(&m.join(name)),
        ]);
        expect_error(&o, &[name, "input of this run"]);
    }
    assert_eq!(std::fs::read(m.join("config.json")).unwrap(), config);
    assert!(!m.join("new-file-inside.json").exists());
}

/// `--html` into a folder that does not exist fails the run: the JSON that would have been
/// written first is not written, and an older JSON at that path is kept intact.
#[test]
fn a_run_that_fails_writes_nothing_and_keeps_the_previous_file() {
    let t = TempDir::new("atomic");
    let m = fixture("tiny-bert");
    let json = t.join("out.json");
    std::fs::write(&json, "previous").unwrap();
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "4",
        "--json",
        s(&json),
        "--html",
        s(&t.join("missing/out.html")),
    ]);
    expect_error(&o, &["folder does not exist"]);
    assert_eq!(std::fs::read_to_string(&json).unwrap(), "previous");
    assert_eq!(t.names(), vec!["out.json".to_string()]);
    // The same run with good paths replaces the file and leaves no temporary behind.
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "4",
        "--json",
        s(&json),
        "--html",
        s(&t.join("out.html")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["attributions"].is_array());
    assert_eq!(
        t.names(),
        vec!["out.html".to_string(), "out.json".to_string()]
    );
}

// ----------------------------------------------------------------------------------------------
// 3. Configs validated before anything is allocated
// ----------------------------------------------------------------------------------------------

#[test]
fn absurd_or_inconsistent_configs_are_errors_naming_the_key() {
    let t = TempDir::new("config");
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        (
            "huge-layers",
            "tiny-bert",
            |v| v["num_hidden_layers"] = 1_000_000_000u64.into(),
            "num_hidden_layers",
        ),
        (
            "zero-layers",
            "tiny-bert",
            |v| v["num_hidden_layers"] = 0.into(),
            "num_hidden_layers",
        ),
        // Fewer layers than the checkpoint would silently truncate the model.
        (
            "fewer-layers",
            "tiny-bert",
            |v| v["num_hidden_layers"] = 1.into(),
            "more layers",
        ),
        (
            "huge-positions",
            "tiny-bert",
            |v| v["max_position_embeddings"] = (1u64 << 40).into(),
            "max_position_embeddings",
        ),
        (
            "negative-eps",
            "tiny-bert",
            |v| v["layer_norm_eps"] = (-1e-12).into(),
            "layer_norm_eps",
        ),
        (
            "string-layers",
            "tiny-bert",
            |v| v["num_hidden_layers"] = "two".into(),
            "num_hidden_layers",
        ),
        (
            "rope-zero",
            "tiny-llama",
            |v| v["rope_theta"] = 0.0.into(),
            "rope_theta",
        ),
        (
            "rms-eps-zero",
            "tiny-llama",
            |v| v["rms_norm_eps"] = 0.0.into(),
            "rms_norm_eps",
        ),
        (
            "eos-out-of-vocab",
            "tiny-llama",
            |v| v["eos_token_id"] = 100_000.into(),
            "eos_token_id",
        ),
        (
            "llama-fewer-layers",
            "tiny-llama",
            |v| v["num_hidden_layers"] = 1.into(),
            "more layers",
        ),
        (
            "gpt2-huge-ctx",
            "tiny-gpt2",
            |v| v["n_positions"] = (1u64 << 40).into(),
            "n_positions",
        ),
        (
            "gpt2-fewer-layers",
            "tiny-gpt2",
            |v| v["n_layer"] = 1.into(),
            "more layers",
        ),
    ];
    for (tag, name, edit, key) in cases {
        let sub = TempDir::new(&format!("config-{tag}"));
        let m = edited_model(&sub, name, edit);
        let o = run(&["ig", "--model", s(&m), "--text", "hello", "--steps", "2"]);
        let e = expect_error(&o, &[key]);
        assert!(e.contains("config.json"), "{tag}: {e}");
    }
    drop(t);
}

/// Checkpoint tensors the model does not read are reported: a note on stderr and the sorted
/// names in the JSON header; a checkpoint whose every tensor is read has no such key.
#[test]
fn unused_checkpoint_tensors_are_reported() {
    let t = TempDir::new("unused");
    let json = t.join("o.json");
    let m = fixture("tiny-bert-embed");
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "hello",
        "--similar-to",
        "hi",
        "--steps",
        "2",
        "--json",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: 2 checkpoint tensors are not used by this model: pooler.dense.bias, pooler.dense.weight"),
        "{}",
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        v["unused_tensors"],
        serde_json::json!(["pooler.dense.bias", "pooler.dense.weight"])
    );
    // The classifier reads its pooler: nothing unused, no key, no note.
    let o = run(&[
        "ig",
        "--model",
        s(&fixture("tiny-bert")),
        "--text",
        "hello",
        "--steps",
        "2",
        "--json",
        s(&json),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v.get("unused_tensors").is_none());
}

// ----------------------------------------------------------------------------------------------
// 4. Threads
// ----------------------------------------------------------------------------------------------

#[test]
fn thread_counts_are_capped_at_the_cores_unless_forced() {
    let m = fixture("tiny-bert");
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "2",
        "--threads",
        "100000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force-threads"), "{}", stderr(&o));
    let o = run(&[
        "ig",
        "--model",
        s(&m),
        "--text",
        "good",
        "--steps",
        "2",
        "--threads",
        "100000",
        "--force-threads",
    ]);
    expect_error(&o, &["--threads", "1024"]);
    let o = run(&["ig", "--model", s(&m), "--text", "good", "--threads", "0"]);
    expect_error(&o, &["--threads"]);
}

// ----------------------------------------------------------------------------------------------
// 5. Honest results: NaN and unmet tolerances
// ----------------------------------------------------------------------------------------------

#[test]
fn a_non_finite_result_is_an_error_unless_allowed() {
    let t = TempDir::new("nan");
    let m = fixture("tiny-bert");
    let json = t.join("nan.json");
    let args = [
        "saliency",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--smooth",
        "smoothgrad",
        "--stdev",
        "1e300",
        "--samples",
        "2",
        "--json",
        s(&json),
    ];
    let o = run(&args);
    expect_error(&o, &["not finite", "/attributions/"]);
    assert!(!json.exists());
    let mut allowed = args.to_vec();
    allowed.push("--allow-nan");
    let o = run(&allowed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-nan"), "{}", stderr(&o));
    assert!(json.exists());

    // `batch` checks every example's line: the NaN stops the run naming the line and the place
    // (JSON would have carried it as null); with --skip-bad the example is listed as skipped.
    let data = t.join("in.jsonl");
    std::fs::write(&data, "{\"id\": \"a\", \"text\": \"good film\"}\n").unwrap();
    let out = t.join("out.jsonl");
    let batch = [
        "batch",
        "--method",
        "saliency",
        "--model",
        s(&m),
        "--input",
        s(&data),
        "--output",
        s(&out),
        "--smooth",
        "smoothgrad",
        "--stdev",
        "1e300",
        "--samples",
        "2",
    ];
    let o = run(&batch);
    expect_error(&o, &["not finite", "/attributions/", "line 1"]);
    let hint = stderr(&o);
    assert!(
        hint.contains("--skip-bad") && !hint.contains("--allow-nan"),
        "{hint}"
    );
    let mut skip = batch.to_vec();
    skip.push("--skip-bad");
    let o = run(&skip);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(!lines.contains("null"), "{lines}");
    assert_eq!(lines.lines().count(), 0, "{lines}");
}

#[test]
fn an_unmet_tolerance_warns_and_fails_with_strict_after_writing() {
    let t = TempDir::new("tol");
    let m = fixture("tiny-bert");
    let json = t.join("tol.json");
    let args = [
        "ig",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--tolerance",
        "1e-15",
        "--steps",
        "4",
        "--max-points",
        "16",
        "--json",
        s(&json),
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: a tolerance was not reached"));
    let mut strict = args.to_vec();
    strict.push("--strict");
    std::fs::remove_file(&json).unwrap();
    let o = run(&strict);
    expect_error(&o, &["a tolerance was not reached"]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["refinement"]["converged"], Value::Bool(false));
}

// ----------------------------------------------------------------------------------------------
// 6. Found by hand: --words at a boundary without a token axis
// ----------------------------------------------------------------------------------------------

#[test]
fn words_at_a_boundary_without_tokens_is_an_error_not_a_panic() {
    let m = fixture("tiny-bert");
    let o = run(&[
        "layer-ig",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--boundary",
        "hook_logits",
        "--words",
        "--steps",
        "2",
    ]);
    expect_error(&o, &["--words"]);
}

// ----------------------------------------------------------------------------------------------
// 7. Determinism
// ----------------------------------------------------------------------------------------------

/// The same command gives bit-identical JSON across runs and thread counts, except `timing`
/// (wall-clock seconds).
#[test]
fn json_is_bit_identical_across_runs_and_thread_counts() {
    let t = TempDir::new("det");
    let m = fixture("tiny-bert");
    let cases: [&[&str]; 3] = [
        &["ig", "--steps", "8"],
        &["conductance", "--steps", "8"],
        &["attattr", "--steps", "8"],
    ];
    for case in cases {
        let mut outs = Vec::new();
        for (i, threads) in ["1", "2", "2"].iter().enumerate() {
            let json = t.join(&format!("{}-{i}.json", case[0]));
            let mut args: Vec<&str> = case.to_vec();
            args.extend([
                "--model",
                s(&m),
                "--text",
                "the film was not bad at all",
                "--threads",
                threads,
                "--force-threads",
                "--quiet",
                "--json",
                s(&json),
            ]);
            let o = Command::new(BIN).args(&args).output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            let mut v: Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            v.as_object_mut().unwrap().remove("timing");
            outs.push(serde_json::to_string(&v).unwrap());
        }
        assert_eq!(outs[0], outs[1], "{}: 1 vs 2 threads", case[0]);
        assert_eq!(outs[1], outs[2], "{}: two runs", case[0]);
    }
}

// ----------------------------------------------------------------------------------------------
// 8. Bounded memory
// ----------------------------------------------------------------------------------------------

/// Counts that would grow memory without bound are streamed (SmoothGrad's samples) or refused
/// before anything is allocated, with the size they would need; `--memory` sets the budget.
#[test]
fn requests_beyond_the_memory_budget_say_how_large_they_would_be() {
    let m = fixture("tiny-bert");
    // SmoothGrad draws its noise row by row as the batches fill: 20,000 samples (41 MB of noise
    // at once, as it used to be) run within a 64 KiB budget.
    let o = run(&[
        "saliency",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--smooth",
        "smoothgrad",
        "--samples",
        "20000",
        "--memory",
        "64K",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "sensitivity",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--draws",
        "100000000",
        "--memory",
        "1G",
    ]);
    expect_error(&o, &["--draws", "1.0 GiB"]);
    let o = run(&[
        "attention",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--memory",
        "1K",
    ]);
    expect_error(&o, &["attention maps", "1.0 KiB"]);
    let o = run(&[
        "attention",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--memory",
        "lots",
    ]);
    expect_error(&o, &["--memory", "lots"]);
    // Within the budget the same command runs.
    let o = run(&[
        "attention",
        "--model",
        s(&m),
        "--text",
        "good film",
        "--memory",
        "1G",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}
