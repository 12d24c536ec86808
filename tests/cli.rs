//! End-to-end tests of the `gradpath` binary: every user error ends with exit code 1 and two
//! lines on stderr, `error: <cause>` and `hint: <what to do>`, never a panic; the happy paths
//! write JSON and HTML that hold what docs/JSON.md promises.
//!
//! The model fixtures are the tiny random HF folders under tests/fixtures/models. Broken model
//! folders are built per test in a fresh directory under the system temp dir.

use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");

/// A weight tensor of tiny-bert that the model reads at load time (used to corrupt copies).
const QUERY_W: &str = "bert.encoder.layer.1.attention.self.query.weight";

// ----------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

/// A per-test directory under the system temp dir, removed on drop.
#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

/// Runs the binary (one rayon thread: the tests themselves run in parallel).
fn gradpath<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(BIN)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot start the gradpath binary")
}

/// `gradpath ig --model <model> --text <text> <extra...>`.
fn ig(model: &Path, text: &str, extra: &[&str]) -> Output {
    command("ig", model, text, extra)
}

/// `gradpath <cmd> --model <model> --text <text> <extra...>`.
fn command(cmd: &str, model: &Path, text: &str, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new(cmd),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--text"),
        OsStr::new(text),
    ];
    args.extend(extra.iter().map(OsStr::new));
    gradpath(args)
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `error:` and `hint:` lines of a failed run.
struct Failure {
    error: String,
    hint: String,
}

/// Asserts the failure contract: exit code 1, one `error:` line and one `hint:` line on stderr,
/// no panic, and an error line that names the cause (every word of `keywords`).
#[track_caller]
fn expect_failure(out: &Output, keywords: &[&str]) -> Failure {
    let stderr = text_of(&out.stderr);
    let ctx = format!(
        "status: {:?}\n--- stderr ---\n{stderr}\n--- stdout ---\n{}",
        out.status.code(),
        text_of(&out.stdout)
    );
    assert!(!out.status.success(), "expected a failure\n{ctx}");
    assert_eq!(out.status.code(), Some(1), "expected exit code 1\n{ctx}");
    assert!(!stderr.contains("panicked"), "the binary panicked\n{ctx}");
    assert!(
        !stderr.contains("RUST_BACKTRACE"),
        "the binary panicked\n{ctx}"
    );
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no line starting with `error:`\n{ctx}"))
        .to_string();
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no line starting with `hint:`\n{ctx}"))
        .to_string();
    assert!(
        hint.trim_start_matches("hint:").trim().len() > 10,
        "empty hint\n{ctx}"
    );
    for k in keywords {
        assert!(
            error.contains(k),
            "the error line does not mention `{k}`: {error}\n{ctx}"
        );
    }
    Failure { error, hint }
}

#[track_caller]
fn expect_success(out: &Output) -> String {
    let stderr = text_of(&out.stderr);
    assert!(
        out.status.success(),
        "expected success, got {:?}\n--- stderr ---\n{stderr}\n--- stdout ---\n{}",
        out.status.code(),
        text_of(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    text_of(&out.stdout)
}

/// Copies the files of fixture `name` into `dst`, leaving out `skip`.
fn copy_model(name: &str, dst: &Path, skip: Option<&str>) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name();
        if Some(file.to_str().unwrap()) == skip || !entry.file_type().unwrap().is_file() {
            continue;
        }
        std::fs::copy(entry.path(), dst.join(&file)).unwrap();
    }
}

/// Splits a safetensors file into its JSON header and its data section.
fn read_safetensors(path: &Path) -> (serde_json::Map<String, Value>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let header = header.as_object().unwrap().clone();
    (header, bytes[8 + n..].to_vec())
}

/// Writes a safetensors file by hand: 8-byte little-endian header length, JSON header (padded
/// with spaces to a multiple of 8), data.
fn write_safetensors(path: &Path, header: &serde_json::Map<String, Value>, data: &[u8]) {
    let mut h = serde_json::to_vec(header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + data.len());
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    std::fs::write(path, out).unwrap();
}

fn read_json(path: &Path) -> Value {
    let s = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn f64_vec(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

/// About 100 words: more than tiny-bert's 64 positions.
fn long_text() -> String {
    vec!["the quick brown fox jumps"; 20].join(" ")
}

// ----------------------------------------------------------------------------------------------
// Model folder errors
// ----------------------------------------------------------------------------------------------

#[test]
fn ig_model_folder_missing() {
    let tmp = TempDir::new("model_folder_missing");
    let out = ig(&tmp.join("no-such-model"), "hello", &[]);
    let f = expect_failure(&out, &["not found", "no-such-model"]);
    assert!(f.hint.contains("--model"), "{}", f.hint);
}

#[test]
fn ig_folder_without_config_json() {
    let tmp = TempDir::new("without_config");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, Some("config.json"));
    let f = expect_failure(&ig(&m, "hello", &[]), &["not found", "config.json"]);
    assert!(f.hint.contains("config.json"), "{}", f.hint);
}

#[test]
fn ig_folder_without_model_safetensors() {
    let tmp = TempDir::new("without_safetensors");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, Some("model.safetensors"));
    let f = expect_failure(&ig(&m, "hello", &[]), &["not found", "model.safetensors"]);
    assert!(f.hint.contains("model.safetensors"), "{}", f.hint);
}

#[test]
fn ig_folder_without_tokenizer_json() {
    let tmp = TempDir::new("without_tokenizer");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, Some("tokenizer.json"));
    let f = expect_failure(&ig(&m, "hello", &[]), &["not found", "tokenizer.json"]);
    assert!(f.hint.contains("tokenizer.json"), "{}", f.hint);
}

#[test]
fn ig_malformed_config_json() {
    let tmp = TempDir::new("malformed_config");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    std::fs::write(m.join("config.json"), "{\"architectures\": [\"BertModel\",").unwrap();
    expect_failure(&ig(&m, "hello", &[]), &["config.json", "malformed JSON"]);
}

#[test]
fn ig_unsupported_architecture_lists_supported_ones() {
    let tmp = TempDir::new("unsupported_arch");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    let cfg = r#"{"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
        "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 37, "vocab_size": 148, "max_position_embeddings": 64}"#;
    std::fs::write(m.join("config.json"), cfg).unwrap();
    let f = expect_failure(
        &ig(&m, "hello", &[]),
        &[
            "unsupported architecture",
            "GPTNeoXForCausalLM",
            "BertForSequenceClassification",
            "RobertaModel",
            "DistilBertModel",
        ],
    );
    assert!(f.hint.contains("architectures"), "{}", f.hint);
}

#[test]
fn ig_config_without_architecture_lists_supported_ones() {
    let tmp = TempDir::new("no_arch");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    std::fs::write(m.join("config.json"), r#"{"model_type": "gpt_neox"}"#).unwrap();
    let f = expect_failure(
        &ig(&m, "hello", &[]),
        &["no architecture", "gpt_neox", "BertModel"],
    );
    assert!(f.hint.contains("architectures"), "{}", f.hint);
}

#[test]
fn ig_garbage_safetensors() {
    let tmp = TempDir::new("garbage_safetensors");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    // Text bytes: the first 8 read as an absurd header length.
    std::fs::write(
        m.join("model.safetensors"),
        "this is not a safetensors file at all\n".repeat(20),
    )
    .unwrap();
    expect_failure(
        &ig(&m, "hello", &[]),
        &["model.safetensors", "not a valid safetensors file"],
    );
    // A plausible header length followed by bytes that are not JSON.
    let mut bytes = 24u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{{{{ not json at all }}}}");
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(m.join("model.safetensors"), bytes).unwrap();
    expect_failure(
        &ig(&m, "hello", &[]),
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn ig_truncated_safetensors() {
    let tmp = TempDir::new("truncated_safetensors");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    let full = std::fs::read(fixture("tiny-bert").join("model.safetensors")).unwrap();
    std::fs::write(m.join("model.safetensors"), &full[..full.len() / 2]).unwrap();
    expect_failure(
        &ig(&m, "hello", &[]),
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn ig_safetensors_missing_a_tensor() {
    let tmp = TempDir::new("missing_tensor");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    let (mut header, data) = read_safetensors(&fixture("tiny-bert").join("model.safetensors"));
    let info = header
        .remove(QUERY_W)
        .expect("fixture has the query weight");
    header.insert(format!("{QUERY_W}_renamed"), info);
    write_safetensors(&m.join("model.safetensors"), &header, &data);
    expect_failure(
        &ig(&m, "hello", &[]),
        &["model.safetensors", "missing tensor", QUERY_W],
    );
}

#[test]
fn ig_nan_in_weights() {
    let tmp = TempDir::new("nan_weights");
    let m = tmp.join("m");
    copy_model("tiny-bert", &m, None);
    let (header, mut data) = read_safetensors(&fixture("tiny-bert").join("model.safetensors"));
    let info = &header[QUERY_W];
    assert_eq!(info["dtype"], "F32");
    let start = info["data_offsets"][0].as_u64().unwrap() as usize + 4 * 5;
    data[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    write_safetensors(&m.join("model.safetensors"), &header, &data);
    for dtype in ["f32", "f64"] {
        expect_failure(
            &ig(&m, "hello", &["--dtype", dtype]),
            &["non-finite", QUERY_W, "element 5"],
        );
    }
}

// ----------------------------------------------------------------------------------------------
// Input errors
// ----------------------------------------------------------------------------------------------

#[test]
fn ig_empty_text() {
    let m = fixture("tiny-bert");
    let f = expect_failure(&ig(&m, "", &[]), &["empty"]);
    assert!(f.hint.contains("--text"), "{}", f.hint);
}

#[test]
fn ig_blank_text() {
    let m = fixture("tiny-bert");
    let f = expect_failure(&ig(&m, "   ", &[]), &["empty"]);
    assert!(f.hint.contains("--text"), "{}", f.hint);
    expect_failure(&ig(&m, "\t\n ", &[]), &["empty"]);
}

#[test]
fn ig_text_of_only_invisible_characters() {
    // A zero-width space is not whitespace for `trim`, but the tokenizer drops it: only
    // [CLS] [SEP] would be left, and there is nothing to attribute.
    let m = fixture("tiny-bert");
    let f = expect_failure(&ig(&m, "\u{200b}", &[]), &["empty", "tokenization"]);
    assert!(f.hint.contains("--text"), "{}", f.hint);
}

#[test]
fn ig_text_longer_than_the_model() {
    let m = fixture("tiny-bert");
    let f = expect_failure(&ig(&m, &long_text(), &[]), &["tokens", "at most 64"]);
    assert!(f.hint.contains("--truncate"), "{}", f.hint);
    // "the text has N tokens but the model takes at most 64"
    let n: usize = f
        .error
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no token count in {}", f.error));
    assert!(n > 64, "{}", f.error);
}

#[test]
fn ig_text_longer_than_the_model_with_truncate() {
    let tmp = TempDir::new("truncate_ok");
    let json = tmp.join("out.json");
    let out = ig(
        &fixture("tiny-bert"),
        &long_text(),
        &[
            "--truncate",
            "--steps",
            "8",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    expect_success(&out);
    let j = read_json(&json);
    let tokens = j["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 64, "truncated to the model's positions");
    assert_eq!(tokens[0], "[CLS]");
    assert_eq!(tokens[63], "[SEP]", "the closing special token is kept");
    assert_eq!(f64_vec(&j["attributions"]).len(), 64);
}

#[test]
fn ig_class_index_out_of_range() {
    let f = expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--target", "7"]),
        &["class 7", "out of range", "3 classes"],
    );
    assert!(f.hint.contains("class"), "{}", f.hint);
}

#[test]
fn ig_unknown_class_label() {
    let f = expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--target", "POSITIVE"]),
        &["unknown class label", "POSITIVE", "LABEL_0", "LABEL_2"],
    );
    assert!(f.hint.contains("id2label"), "{}", f.hint);
}

#[test]
fn ig_steps_zero() {
    expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--steps", "0"]),
        &["--steps", "at least 1"],
    );
}

#[test]
fn ig_steps_below_the_rule_minimum() {
    expect_failure(
        &ig(
            &fixture("tiny-bert"),
            "hello",
            &["--steps", "1", "--method", "riemann-trapezoid"],
        ),
        &["riemann-trapezoid", "--steps"],
    );
}

#[test]
fn ig_unknown_method() {
    let f = expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--method", "foo"]),
        &["quadrature rule", "foo", "gauss-legendre"],
    );
    assert!(f.hint.contains("--help"), "{}", f.hint);
}

#[test]
fn ig_unknown_baseline() {
    expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--baseline", "foo"]),
        &["baseline", "foo", "pad", "zero"],
    );
}

#[test]
fn ig_baseline_token_id_outside_the_vocabulary() {
    expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--baseline", "id:99999"]),
        &["--baseline", "99999", "vocabulary"],
    );
}

#[test]
fn ig_batch_zero() {
    expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--batch", "0"]),
        &["--batch", "at least 1"],
    );
}

#[test]
fn ig_tolerance_not_positive() {
    let m = fixture("tiny-bert");
    expect_failure(
        &ig(&m, "hello", &["--tolerance=-1"]),
        &["--tolerance", "> 0"],
    );
    expect_failure(
        &ig(&m, "hello", &["--tolerance", "0"]),
        &["--tolerance", "> 0"],
    );
    expect_failure(
        &ig(&m, "hello", &["--tolerance", "nan"]),
        &["--tolerance", "> 0"],
    );
}

#[test]
fn ig_max_points_below_the_first_pass() {
    expect_failure(
        &ig(
            &fixture("tiny-bert"),
            "hello",
            &["--tolerance", "1e-6", "--max-points", "5"],
        ),
        &["--max-points", "5"],
    );
}

#[test]
fn ig_classifier_with_similar_to() {
    let f = expect_failure(
        &ig(&fixture("tiny-bert"), "hello", &["--similar-to", "goodbye"]),
        &["--similar-to", "classifier"],
    );
    assert!(f.hint.contains("--target"), "{}", f.hint);
}

#[test]
fn ig_sentence_embedding_model_without_similar_to() {
    let f = expect_failure(
        &ig(&fixture("tiny-bert-embed"), "hello", &[]),
        &["sentence-embedding", "--similar-to"],
    );
    assert!(f.hint.contains("--similar-to"), "{}", f.hint);
}

#[test]
fn ig_sentence_embedding_model_with_empty_similar_to() {
    expect_failure(
        &ig(&fixture("tiny-bert-embed"), "hello", &["--similar-to", " "]),
        &["--similar-to", "empty"],
    );
}

#[test]
fn ig_json_into_a_missing_directory() {
    let tmp = TempDir::new("json_missing_dir");
    let json = tmp.join("no/such/dir/out.json");
    let f = expect_failure(
        &ig(
            &fixture("tiny-bert"),
            "hello",
            &["--steps", "4", "--json", json.to_str().unwrap()],
        ),
        &["out.json"],
    );
    assert!(f.hint.contains("path"), "{}", f.hint);
}

#[test]
fn hooks_model_folder_missing() {
    let tmp = TempDir::new("hooks_missing");
    let missing = tmp.join("no-such-model");
    let out = gradpath([
        OsStr::new("hooks"),
        OsStr::new("--model"),
        missing.as_os_str(),
    ]);
    let f = expect_failure(&out, &["not found", "no-such-model"]);
    assert!(f.hint.contains("--model"), "{}", f.hint);
}

#[test]
fn hooks_text_longer_than_the_model() {
    let m = fixture("tiny-bert");
    let text = long_text();
    let out = gradpath([
        OsStr::new("hooks"),
        OsStr::new("--model"),
        m.as_os_str(),
        OsStr::new("--text"),
        OsStr::new(&text),
    ]);
    expect_failure(&out, &["tokens", "at most 64"]);
}

// ----------------------------------------------------------------------------------------------
// Happy paths
// ----------------------------------------------------------------------------------------------

/// `--repeat N` runs the attribution N times in one process: the JSON lists every run's seconds
/// and reports the last run, whose attributions are those of a single run (bit for bit).
#[test]
fn ig_repeat_reports_every_run_and_the_same_attributions() {
    let tmp = TempDir::new("repeat");
    let (once, thrice) = (tmp.join("once.json"), tmp.join("thrice.json"));
    let model = fixture("tiny-bert");
    let text = "the quick brown fox";
    expect_success(&ig(&model, text, &["--json", once.to_str().unwrap(), "-q"]));
    expect_success(&ig(
        &model,
        text,
        &["--repeat", "3", "--json", thrice.to_str().unwrap(), "-q"],
    ));
    let (a, b) = (read_json(&once), read_json(&thrice));
    assert!(a.get("repeat_attribution_s").is_none(), "{a}");
    let runs = b["repeat_attribution_s"].as_array().expect("runs listed");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|t| t.as_f64().is_some_and(|t| t > 0.0)));
    assert_eq!(
        runs[2], b["timing"]["attribution_s"],
        "the report is the last run's"
    );
    assert_eq!(a["attributions"], b["attributions"]);
    assert_eq!(a["delta"], b["delta"]);
    let bad = ig(&model, text, &["--repeat", "0"]);
    assert!(!bad.status.success());
}

#[test]
fn ig_json_and_html_on_tiny_bert() {
    let tmp = TempDir::new("json_html");
    let (json, html) = (tmp.join("out.json"), tmp.join("out.html"));
    let model = fixture("tiny-bert");
    let out = ig(
        &model,
        "the quick brown fox",
        &[
            "--dtype",
            "f64",
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(stdout.contains("completeness delta"), "{stdout}");

    let j = read_json(&json);
    for key in [
        "method",
        "gradpath_version",
        "model",
        "model_description",
        "text",
        "tokens",
        "ids",
        "special",
        "target",
        "baseline",
        "baseline_ids",
        "quadrature",
        "steps",
        "points_used",
        "batch",
        "dtype",
        "boundary",
        "attributions",
        "f_input",
        "f_baseline",
        "delta",
        "relative_delta",
        "path",
        "rough",
        "warnings",
        "timing",
    ] {
        assert!(j.get(key).is_some(), "JSON lacks `{key}`: {j}");
    }
    assert_eq!(j["method"], "integrated_gradients");
    assert_eq!(j["model"], model.display().to_string());
    assert_eq!(j["text"], "the quick brown fox");
    assert_eq!(j["baseline"], "pad");
    assert_eq!(j["quadrature"], "gauss-legendre");
    assert_eq!(j["steps"], 50);
    assert_eq!(j["points_used"], 50);
    assert_eq!(j["dtype"], "f64");
    assert_eq!(j["boundary"], "hook_embed");
    assert!(
        j.get("refinement").is_none(),
        "no refinement without --tolerance"
    );
    assert!(j.get("words").is_none(), "no words without --words");

    let tokens: Vec<&str> = j["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tokens, ["[CLS]", "the", "quick", "brown", "fox", "[SEP]"]);
    let n = tokens.len();
    assert_eq!(j["ids"].as_array().unwrap().len(), n);
    assert!(j["ids"].as_array().unwrap().iter().all(|v| v.is_u64()));
    let special: Vec<bool> = j["special"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    assert_eq!(special, [true, false, false, false, false, true]);
    let base_ids = j["baseline_ids"].as_array().unwrap();
    assert_eq!(base_ids.len(), n);
    assert_eq!(
        base_ids[0], j["ids"][0],
        "special tokens are kept in the baseline"
    );
    assert_eq!(base_ids[n - 1], j["ids"][n - 1]);

    let target = j["target"].as_object().expect("target is an object");
    assert_eq!(target["type"], "class");
    assert_eq!(target["kind"], "logit");
    let class = target["class"].as_u64().unwrap();
    assert!(class < 3);
    assert_eq!(target["label"], format!("LABEL_{class}"));

    let attr = f64_vec(&j["attributions"]);
    assert_eq!(attr.len(), n, "one attribution per token");
    assert!(attr.iter().all(|a| a.is_finite()));
    assert_eq!(attr[0], 0.0, "[CLS] equals its baseline");
    assert_eq!(attr[n - 1], 0.0, "[SEP] equals its baseline");
    let (fi, fb) = (
        j["f_input"].as_f64().unwrap(),
        j["f_baseline"].as_f64().unwrap(),
    );
    let delta = j["delta"].as_f64().unwrap();
    let sum: f64 = attr.iter().sum();
    assert!(
        (sum - (fi - fb) - delta).abs() <= 1e-12,
        "Σ attributions − (F(x) − F(x′)) = {} but delta = {delta}",
        sum - (fi - fb)
    );
    assert!(
        delta.abs() < 1e-6,
        "completeness delta {delta} in f64 with 50 GL points"
    );
    let rel = j["relative_delta"].as_f64().unwrap();
    assert!((rel - delta.abs() / (fi - fb).abs()).abs() <= 1e-12 * (1.0 + rel));

    let alphas = f64_vec(&j["path"]["alphas"]);
    let fs = f64_vec(&j["path"]["f"]);
    assert_eq!(alphas.len(), 50);
    assert_eq!(fs.len(), alphas.len());
    assert!(alphas.windows(2).all(|w| w[0] < w[1]), "alphas ascend");
    assert!(
        alphas.iter().all(|&a| a > 0.0 && a < 1.0),
        "Gauss–Legendre nodes are interior"
    );
    assert!(j["path"]["total_variation"].as_f64().unwrap() >= (fi - fb).abs() - 1e-12);
    assert_eq!(j["rough"], false);
    assert_eq!(j["warnings"].as_array().unwrap().len(), 0);
    let load_s = j["timing"]["load_s"].as_f64().unwrap();
    let attribution_s = j["timing"]["attribution_s"].as_f64().unwrap();
    assert!(load_s >= 0.0 && attribution_s >= 0.0);
    assert!(j["batch"].as_u64().unwrap() >= 1);

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(!page.contains("<script src"), "the HTML loads a script");
    assert!(!page.contains("<link"), "the HTML links a resource");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the HTML has web links"
    );
    assert!(page.matches("<mark").count() >= n, "one <mark> per token");
    for t in ["quick", "brown", "fox"] {
        assert!(
            page.contains(&format!(">{t}</mark>")),
            "token `{t}` is not marked"
        );
    }
    assert!(page.contains("delta"));
}

#[test]
fn ig_words_sum_to_the_token_attributions() {
    let tmp = TempDir::new("words");
    let json = tmp.join("out.json");
    let out = ig(
        &fixture("tiny-bert"),
        "unbelievable tokenization",
        &[
            "--dtype",
            "f64",
            "--words",
            "--steps",
            "16",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    expect_success(&out);
    let j = read_json(&json);
    let words: Vec<&str> = j["words"]
        .as_array()
        .expect("words")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let wattr = f64_vec(&j["word_attributions"]);
    let attr = f64_vec(&j["attributions"]);
    assert_eq!(words.len(), wattr.len());
    assert!(
        words.contains(&"unbelievable") && words.contains(&"tokenization"),
        "{words:?}"
    );
    assert!(words.len() < attr.len(), "sub-words were merged: {words:?}");
    assert_eq!(j["word_aggregation"], "sum");
    let (ws, ts) = (wattr.iter().sum::<f64>(), attr.iter().sum::<f64>());
    assert!(
        (ws - ts).abs() <= 1e-12,
        "Σ word attributions {ws} vs Σ token attributions {ts}"
    );
}

#[test]
fn ig_tolerance_converges_in_f64() {
    let tmp = TempDir::new("tolerance");
    let json = tmp.join("out.json");
    let out = ig(
        &fixture("tiny-bert"),
        "the quick brown fox",
        &[
            "--dtype",
            "f64",
            "--tolerance",
            "1e-9",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    expect_success(&out);
    let j = read_json(&json);
    let r = j.get("refinement").expect("refinement with --tolerance");
    assert_eq!(r["converged"], true, "{r}");
    assert_eq!(r["tolerance"].as_f64(), Some(1e-9));
    let traj = r["trajectory"].as_array().unwrap();
    assert!(!traj.is_empty());
    let last = traj.last().unwrap();
    assert!(last["relative_delta"].as_f64().unwrap() <= 1e-9);
    assert_eq!(last["n"], j["steps"]);
    assert_eq!(last["points_used"], j["points_used"]);
    let rel = j["relative_delta"].as_f64().unwrap();
    assert!(rel <= 1e-9, "relative delta {rel}");
    let used = j["points_used"].as_u64().unwrap() as usize;
    assert_eq!(f64_vec(&j["path"]["alphas"]).len(), used);
    assert_eq!(f64_vec(&j["path"]["f"]).len(), used);
}

#[test]
fn ig_similarity_on_a_sentence_embedding_model() {
    let tmp = TempDir::new("similarity");
    let json = tmp.join("out.json");
    let out = ig(
        &fixture("tiny-bert-embed"),
        "the quick brown fox",
        &[
            "--similar-to",
            "a fast dog",
            "--dtype",
            "f64",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    expect_success(&out);
    let j = read_json(&json);
    assert_eq!(j["target"]["type"], "cosine_similarity");
    assert_eq!(j["target"]["similar_to"], "a fast dog");
    let fi = j["f_input"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&fi), "a cosine similarity: {fi}");
    assert!(j["delta"].as_f64().unwrap().abs() < 1e-6);
}

#[test]
fn hooks_lists_boundaries_with_shapes() {
    let m = fixture("tiny-bert");
    let out = gradpath([OsStr::new("hooks"), OsStr::new("--model"), m.as_os_str()]);
    let stdout = expect_success(&out);
    let line = |name: &str| -> String {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("`{name}` is not listed:\n{stdout}"))
            .to_string()
    };
    // "Hello world" is 12 tokens for this character-level vocabulary; check the trailing dims.
    assert!(
        line("hook_embed").ends_with(", 32]"),
        "{}",
        line("hook_embed")
    );
    let pattern = line("blocks.1.attn.hook_pattern");
    assert!(pattern.contains("[1, 4, "), "{pattern}");
    assert!(line("blocks.1.hook_resid_post").ends_with(", 32]"));
    assert!(
        line("pooler.hook_out").ends_with("[1, 32]"),
        "{}",
        line("pooler.hook_out")
    );
    assert!(
        line("hook_logits").ends_with("[1, 3]"),
        "{}",
        line("hook_logits")
    );
}

#[test]
fn help_mentions_the_main_options() {
    let top = expect_success(&gradpath(["--help"]));
    assert!(top.contains("ig") && top.contains("hooks"), "{top}");
    let ig_help = expect_success(&gradpath(["ig", "--help"]));
    for opt in [
        "--baseline",
        "--tolerance",
        "--steps",
        "--method",
        "--json",
        "--html",
        "--truncate",
    ] {
        assert!(
            ig_help.contains(opt),
            "`gradpath ig --help` does not mention {opt}:\n{ig_help}"
        );
    }
    let hooks_help = expect_success(&gradpath(["hooks", "--help"]));
    assert!(hooks_help.contains("--model"), "{hooks_help}");
}

// ----------------------------------------------------------------------------------------------
// Decoders (tiny GPT-2 / Llama): next-token IG, generation attribution, their errors
// ----------------------------------------------------------------------------------------------

const DECODER_TEXT: &str = "the quick brown fox jumps over the lazy";

fn generate_attr(model: &Path, text: &str, extra: &[&str]) -> Output {
    command("generate-attr", model, text, extra)
}

#[test]
fn ig_decoder_next_token_json() {
    let tmp = TempDir::new("ig_decoder_json");
    let json = tmp.join("ig.json");
    for name in ["tiny-gpt2", "tiny-llama"] {
        let out = ig(
            &fixture(name),
            DECODER_TEXT,
            &["--dtype", "f64", "--json", json.to_str().unwrap()],
        );
        let stdout = expect_success(&out);
        assert!(stdout.contains("next token"), "{stdout}");
        let j = read_json(&json);
        let ids = j["ids"].as_array().unwrap().len();
        assert_eq!(j["target"]["type"], "token");
        assert_eq!(j["target"]["kind"], "logit");
        assert_eq!(j["target"]["position"].as_u64().unwrap() as usize, ids - 1);
        let attr = f64_vec(&j["attributions"]);
        assert_eq!(attr.len(), ids);
        let df = j["f_input"].as_f64().unwrap() - j["f_baseline"].as_f64().unwrap();
        let sum: f64 = attr.iter().sum();
        assert!((sum - df - j["delta"].as_f64().unwrap()).abs() < 1e-9);
        assert!(
            j["relative_delta"].as_f64().unwrap() < 0.05,
            "{name}: {}",
            j["relative_delta"]
        );
        if name == "tiny-llama" {
            // BOS is special: kept in the baseline, so its attribution is exactly zero.
            assert_eq!(j["special"][0], true);
            assert_eq!(attr[0], 0.0);
        }
    }
}

/// Without transposed weight copies (`GRADPATH_WEIGHT_COPIES_MB=0`, as for a model larger than
/// the copy budget) every Linear layer runs the transposed GEMM instead of `x·wt`; the results
/// must not depend on it (f64: the two GEMM paths differ only in summation rounding).
#[test]
fn ig_does_not_depend_on_the_weight_copies() {
    let tmp = TempDir::new("ig_weight_copies");
    for (name, text) in [
        ("tiny-bert", "the quick brown fox"),
        ("tiny-gpt2", DECODER_TEXT),
        ("tiny-llama", DECODER_TEXT),
    ] {
        let mut runs = Vec::new();
        for mb in [None, Some("0")] {
            let json = tmp.join(&format!("{name}-{}.json", mb.unwrap_or("default")));
            let mut cmd = Command::new(BIN);
            cmd.args(["ig", "--model"])
                .arg(fixture(name))
                .args(["--text", text, "--dtype", "f64", "--json"])
                .arg(&json)
                .env("RAYON_NUM_THREADS", "1");
            if let Some(mb) = mb {
                cmd.env("GRADPATH_WEIGHT_COPIES_MB", mb);
            }
            expect_success(&cmd.output().expect("cannot start the gradpath binary"));
            runs.push(read_json(&json));
        }
        let (a, b) = (&runs[0], &runs[1]);
        let (xa, xb) = (f64_vec(&a["attributions"]), f64_vec(&b["attributions"]));
        let scale = xa.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (x, y) in xa.iter().zip(&xb) {
            assert!((x - y).abs() <= 1e-12 * scale, "{name}: {x} vs {y}");
        }
        for key in ["f_input", "f_baseline"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * (1.0 + x.abs()),
                "{name} {key}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn ig_decoder_target_token_as_string_and_id() {
    let tmp = TempDir::new("ig_decoder_token");
    let json = tmp.join("ig.json");
    let m = fixture("tiny-gpt2");
    expect_success(&ig(
        &m,
        DECODER_TEXT,
        &[
            "--target-token",
            "the",
            "--target-kind",
            "log-prob",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let j = read_json(&json);
    let the = j["ids"][0].as_u64().unwrap(); // "the" is the first token of the text
    assert_eq!(j["target"]["token"].as_u64().unwrap(), the);
    assert_eq!(j["target"]["kind"], "log-prob");
    expect_success(&ig(
        &m,
        DECODER_TEXT,
        &[
            "--target-token",
            "5",
            "--position",
            "2",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let j = read_json(&json);
    assert_eq!(j["target"]["token"], 5);
    assert_eq!(j["target"]["position"], 2);
}

#[test]
fn ig_decoder_unknown_target_token() {
    let m = fixture("tiny-gpt2");
    expect_failure(
        &ig(&m, DECODER_TEXT, &["--target-token", "zq xw"]),
        &["unknown target token", "tokens"],
    );
    expect_failure(
        &ig(&m, DECODER_TEXT, &["--target-token", "99999"]),
        &["target token id 99999", "out of range"],
    );
    expect_failure(
        &ig(&m, DECODER_TEXT, &["--position", "500"]),
        &["--position 500", "out of range"],
    );
    expect_failure(
        &ig(&m, DECODER_TEXT, &["--target", "1"]),
        &["causal language model", "--target-token"],
    );
    // and the decoder flags on an encoder
    expect_failure(
        &ig(
            &fixture("tiny-bert"),
            "hello world",
            &["--target-token", "5"],
        ),
        &["--target-token", "causal language models"],
    );
}

#[test]
fn ig_decoder_prompt_longer_than_the_context() {
    let f = expect_failure(
        &ig(&fixture("tiny-llama"), &long_text(), &[]),
        &["tokens", "at most 64"],
    );
    assert!(f.hint.contains("--truncate"), "{}", f.hint);
}

#[test]
fn ig_decoder_without_lm_head() {
    let tmp = TempDir::new("decoder_no_lm_head");
    let m = tmp.join("m");
    copy_model("tiny-llama", &m, None); // untied: the head is its own tensor
    let (header, data) = read_safetensors(&fixture("tiny-llama").join("model.safetensors"));
    assert!(
        header.contains_key("lm_head.weight"),
        "tiny-llama has an lm_head"
    );
    // Rebuild the data section without the head (safetensors wants it without gaps).
    let (mut out_header, mut out_data) = (serde_json::Map::new(), Vec::new());
    for (k, v) in header {
        if k == "lm_head.weight" || k == "__metadata__" {
            continue;
        }
        let off = f64_vec(&v["data_offsets"]);
        let bytes = &data[off[0] as usize..off[1] as usize];
        let mut v = v.clone();
        v["data_offsets"] = serde_json::json!([out_data.len(), out_data.len() + bytes.len()]);
        out_data.extend_from_slice(bytes);
        out_header.insert(k, v);
    }
    write_safetensors(&m.join("model.safetensors"), &out_header, &out_data);
    let f = expect_failure(&ig(&m, DECODER_TEXT, &[]), &["lm_head.weight", "missing"]);
    assert!(f.hint.len() > 10);
}

#[test]
fn ig_decoder_gpt2_has_no_pad_in_config_but_eos_works() {
    let tmp = TempDir::new("ig_decoder_eos");
    let json = tmp.join("ig.json");
    expect_success(&ig(
        &fixture("tiny-gpt2"),
        DECODER_TEXT,
        &["--baseline", "eos", "--json", json.to_str().unwrap()],
    ));
    let j = read_json(&json);
    let eos = 0; // <|endoftext|>
    assert!(j["baseline_ids"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v == eos));
}

#[test]
fn generate_attr_json_and_html() {
    let tmp = TempDir::new("generate_attr");
    let (json, html) = (tmp.join("g.json"), tmp.join("g.html"));
    let out = generate_attr(
        &fixture("tiny-llama"),
        DECODER_TEXT,
        &[
            "--max-new-tokens",
            "3",
            "--steps",
            "16",
            "--dtype",
            "f64",
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(stdout.contains("relative ="), "{stdout}");
    let j = read_json(&json);
    assert_eq!(j["method"], "generation_attribution");
    let prompt = j["prompt_ids"].as_array().unwrap().len();
    let n_gen = j["generated_ids"].as_array().unwrap().len();
    assert_eq!(n_gen, 3);
    let m = j["matrix"].as_array().unwrap();
    assert_eq!(m.len(), n_gen);
    for (s, row) in m.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(row.len(), prompt + n_gen - 1);
        // step s sees the prompt and s earlier generated tokens; later cells are null
        assert!(
            row[..prompt + s].iter().all(|v| v.is_f64()),
            "step {s}: {row:?}"
        );
        assert!(
            row[prompt + s..].iter().all(|v| v.is_null()),
            "step {s}: {row:?}"
        );
        let step = &j["steps"][s];
        let sum: f64 = f64_vec(&step["attributions"]).iter().sum();
        let df = step["f_input"].as_f64().unwrap() - step["f_baseline"].as_f64().unwrap();
        assert!((sum - df - step["delta"].as_f64().unwrap()).abs() < 1e-9);
        assert!(step["f_input"].as_f64().unwrap() <= 0.0, "log-prob target");
    }
    assert_eq!(f64_vec(&j["deltas"]).len(), n_gen);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table") && page.contains("generation attribution"));
}

#[test]
fn generate_attr_bad_input() {
    expect_failure(
        &generate_attr(&fixture("tiny-bert"), "hello world", &[]),
        &["causal language model"],
    );
    expect_failure(
        &generate_attr(
            &fixture("tiny-gpt2"),
            DECODER_TEXT,
            &["--max-new-tokens", "0"],
        ),
        &["--max-new-tokens"],
    );
    expect_failure(
        &generate_attr(&fixture("tiny-gpt2"), &long_text(), &[]),
        &["tokens", "at most 64"],
    );
    expect_failure(
        &generate_attr(
            &fixture("tiny-gpt2"),
            DECODER_TEXT,
            &["--continuation", "zq xw"],
        ),
        &["unknown target token"],
    );
}

#[test]
fn generate_attr_adaptive_reaches_the_tolerance() {
    let tmp = TempDir::new("generate_attr_adaptive");
    let json = tmp.join("g.json");
    let out = generate_attr(
        &fixture("tiny-qwen2"),
        DECODER_TEXT,
        &[
            "--max-new-tokens",
            "2",
            "--tolerance",
            "1e-6",
            "--adaptive",
            "panels",
            "--dtype",
            "f64",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(stdout.contains("adaptive"), "{stdout}");
    let j = read_json(&json);
    for r in f64_vec(&j["relative_deltas"]) {
        assert!(r <= 1e-6, "{r}");
    }
    assert_eq!(j["tolerance"], 1e-6);
    expect_failure(
        &generate_attr(&fixture("tiny-qwen2"), DECODER_TEXT, &["--tolerance", "0"]),
        &["--tolerance"],
    );
}

// ----------------------------------------------------------------------------------------------
// attattr
// ----------------------------------------------------------------------------------------------

#[test]
fn attattr_json_html_and_tree() {
    let dir = TempDir::new("attattr");
    let (j, h) = (dir.join("a.json"), dir.join("a.html"));
    let out = command(
        "attattr",
        &fixture("tiny-bert"),
        "The quick brown fox jumps over the lazy dog.",
        &[
            "--target",
            "1",
            "--method",
            "gauss-legendre",
            "--dtype",
            "f64",
            "--tree",
            "--json",
            j.to_str().unwrap(),
            "--html",
            h.to_str().unwrap(),
        ],
    );
    let stdout = expect_success(&out);
    assert!(stdout.contains("strongest connections"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(v["method"], "attention_attribution");
    assert_eq!(v["quadrature"], "gauss-legendre");
    assert_eq!(v["steps"], 20);
    assert_eq!(v["target"]["kind"], "prob");
    let t = v["tokens"].as_array().unwrap().len();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (l, x) in layers.iter().enumerate() {
        assert_eq!(x["layer"], l);
        let attr = x["attribution"].as_array().unwrap();
        assert_eq!(attr.len(), 4);
        assert_eq!(x["head_importance"].as_array().unwrap().len(), 4);
        assert!(attr.iter().all(|hd| hd.as_array().unwrap().len() == t));
        assert_eq!(x["attention"][0][0].as_array().unwrap().len(), t);
        // Gauss–Legendre 20 in f64: Σ Attr = F(A) − F(0·A) to rounding.
        let (sum, fi, fs) = (
            x["sum"].as_f64().unwrap(),
            x["f_input"].as_f64().unwrap(),
            x["f_start"].as_f64().unwrap(),
        );
        assert!(
            (sum - (fi - fs)).abs() < 1e-10,
            "layer {l}: {sum} vs {}",
            fi - fs
        );
        assert!(x["relative_delta"].as_f64().unwrap() < 1e-8);
    }
    assert_eq!(v["rough"], false);
    let root = v["tree"]["root"].as_u64().unwrap() as usize;
    assert!(root > 0 && root < t);
    let html = std::fs::read_to_string(&h).unwrap();
    for s in [
        "Attribution tree",
        "<svg",
        "Head importance",
        "what mattered",
        "Completeness",
    ] {
        assert!(html.contains(s), "the page lacks {s}");
    }
}

#[test]
fn attattr_decoder_defaults_to_the_predicted_token_and_flags_riemann() {
    let dir = TempDir::new("attattr-dec");
    let j = dir.join("a.json");
    let out = command(
        "attattr",
        &fixture("tiny-gpt2"),
        "The quick brown fox",
        &["--layers", "1", "--json", j.to_str().unwrap()],
    );
    expect_success(&out);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(v["target"]["type"], "token");
    assert_eq!(v["quadrature"], "riemann-left");
    assert_eq!(v["layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["layers"][0]["layer"], 1);
    // The rough flag and the warning travel together.
    let rough = v["rough"].as_bool().unwrap();
    assert_eq!(rough, !v["warnings"].as_array().unwrap().is_empty());
    assert_eq!(rough, text_of(&out.stderr).contains("warning:"));
}

#[test]
fn attattr_bad_input() {
    let m = fixture("tiny-bert");
    let f = expect_failure(
        &command("attattr", &m, "hello", &["--layers", "0,7"]),
        &["layer 7", "out of range"],
    );
    assert!(f.hint.contains("layers"), "{}", f.hint);
    expect_failure(
        &command("attattr", &m, "hello", &["--layers", "first"]),
        &["--layers", "first"],
    );
    expect_failure(
        &command("attattr", &m, "hello", &["--layers", "0", "--tree"]),
        &["tree", "every layer"],
    );
    expect_failure(
        &command("attattr", &m, "hello", &["--layers", "0", "--head", "1:0"]),
        &["--head", "layer 1"],
    );
    expect_failure(
        &command("attattr", &fixture("tiny-gpt2"), "hello there", &["--tree"]),
        &["tree", "causal language model"],
    );
    expect_failure(
        &command("attattr", &m, "hello", &["--method", "simpson"]),
        &["simpson"],
    );
}

// ----------------------------------------------------------------------------------------------
// heads
// ----------------------------------------------------------------------------------------------

fn write_data(dir: &TempDir, lines: &[&str]) -> PathBuf {
    let p = dir.join("data.jsonl");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn heads_importance_and_pruning_curves() {
    let dir = TempDir::new("heads");
    let data = write_data(
        &dir,
        &[
            r#"{"id":"a","text":"the quick brown fox","label":0}"#,
            r#"{"id":"b","text":"jumps over the lazy dog","label":1}"#,
            r#"{"id":"c","text":"a small cat","label":"LABEL_2"}"#,
            "",
            r#"{"id":"d","text":"why this label","label":1}"#,
        ],
    );
    let (j, h) = (dir.join("h.json"), dir.join("h.html"));
    let out = gradpath([
        "heads",
        "--model",
        fixture("tiny-bert").to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--limit",
        "3",
        "--prune-curve",
        "--json",
        j.to_str().unwrap(),
        "--html",
        h.to_str().unwrap(),
    ]);
    expect_success(&out);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let imp = v["importance"].as_array().unwrap();
    assert_eq!(imp.len(), 4);
    for s in imp {
        assert_eq!(s["importance"].as_array().unwrap().len(), 2);
        assert_eq!(s["importance"][0].as_array().unwrap().len(), 4);
    }
    assert_eq!(imp[0]["criterion"], "attattr");
    assert_eq!(imp[0]["examples"], 3);
    // Taylor is L2-normalised per layer; random is a permutation of the ranks 0..8.
    for layer in imp[2]["importance"].as_array().unwrap() {
        let n: f64 = layer
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((n - 1.0).abs() < 1e-9);
    }
    let mut ranks: Vec<u64> = imp[3]["importance"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as u64)
        })
        .collect();
    ranks.sort_unstable();
    assert_eq!(ranks, (0..8).collect::<Vec<_>>());
    // The curves: the whole file (4 examples), 11 points each; nothing and everything pruned
    // are the same model whatever the order.
    assert_eq!(v["eval_examples"], 4);
    let curves = v["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 4);
    for c in curves {
        let a = c["accuracy"].as_array().unwrap();
        assert_eq!(a.len(), 11);
        assert_eq!(a[0], curves[0]["accuracy"][0]);
        assert_eq!(a[10], curves[0]["accuracy"][10]);
        assert_eq!(c["heads_masked"][10], 8);
    }
    let html = std::fs::read_to_string(&h).unwrap();
    assert!(html.contains("Pruning curves") && html.contains("<polyline"));
}

#[test]
fn heads_bad_data() {
    let dir = TempDir::new("heads-bad");
    let m = fixture("tiny-bert");
    let data = write_data(
        &dir,
        &[
            r#"{"id":"a","text":"fine","label":0}"#,
            r#"{"id":"b","text":"bad","label":"POSITIVE"}"#,
        ],
    );
    let f = expect_failure(
        &gradpath([
            "heads",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]),
        &["line 2", "unknown label", "POSITIVE"],
    );
    assert!(f.hint.contains("id2label"), "{}", f.hint);
    // Repeated ids (the resume checkpoint is keyed by id).
    let dup = write_data(
        &dir,
        &[
            r#"{"id":"a","text":"fine","label":0}"#,
            r#"{"id":"a","text":"again","label":1}"#,
        ],
    );
    expect_failure(
        &gradpath([
            "heads",
            "--model",
            m.to_str().unwrap(),
            "--data",
            dup.to_str().unwrap(),
        ]),
        &["appears twice"],
    );
    expect_failure(
        &gradpath([
            "heads",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--by",
            "gradient",
        ]),
        &["gradient"],
    );
    // A model without a classifier head.
    let ok = write_data(&dir, &[r#"{"id":"a","text":"fine","label":0}"#]);
    expect_failure(
        &gradpath([
            "heads",
            "--model",
            fixture("tiny-gpt2").to_str().unwrap(),
            "--data",
            ok.to_str().unwrap(),
        ]),
        &["classifier"],
    );
}

#[test]
fn heads_resume_reuses_the_checkpoint_and_drops_a_torn_line() {
    let dir = TempDir::new("heads-resume");
    let data = write_data(
        &dir,
        &[
            r#"{"id":"a","text":"the quick brown fox","label":0}"#,
            r#"{"id":"b","text":"jumps over the lazy dog","label":1}"#,
        ],
    );
    let m = fixture("tiny-bert");
    let run = |j: &Path, resume: bool| {
        let mut args = vec![
            "heads",
            "--model",
            m.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--by",
            "attention",
            "--json",
            j.to_str().unwrap(),
        ];
        if resume {
            args.push("--resume");
        }
        expect_success(&gradpath(args));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(j).unwrap()).unwrap();
        v["importance"][0]["importance"].clone()
    };
    let fresh = run(&dir.join("fresh.json"), false);
    assert!(
        !dir.join("fresh.json.partial.jsonl").exists(),
        "removed when done"
    );
    // A killed run left example a (with planted scores of 10) and half a line for b.
    let j = dir.join("r.json");
    let planted = format!(
        "{{\"criterion\":\"attention\",\"id\":\"a\",\"scores\":{:?},\"delta\":null}}\n{{\"criterion\":\"attention\",\"id\":\"b\",\"sco",
        vec![10.0; 8]
    );
    std::fs::write(dir.join("r.json.partial.jsonl"), planted).unwrap();
    let resumed = run(&j, true);
    // Each head's mean is (10 + b's own max attention) / 2: a was reused, b recomputed.
    for l in 0..2 {
        for h in 0..4 {
            let (f, r) = (
                fresh[l][h].as_f64().unwrap(),
                resumed[l][h].as_f64().unwrap(),
            );
            assert!(r > 5.0 && r < 5.5 && f < 1.0 + 1e-12, "{f} {r}");
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Instruct models (issue 15): --chat, --system, --answer, --contrast, --per-token-paths
// ----------------------------------------------------------------------------------------------

#[test]
fn chat_without_a_template_fails_with_a_hint() {
    let f = expect_failure(
        &ig(&fixture("tiny-llama"), "the quick", &["--chat"]),
        &["no chat template"],
    );
    assert!(f.hint.contains("--chat"), "{}", f.hint);
}

#[test]
fn answer_contrast_and_chat_in_the_json() {
    let d = TempDir::new("answer_json");
    let json = d.join("a.json");
    let html = d.join("a.html");
    expect_success(&ig(
        &fixture("tiny-llama-chat"),
        "the dog?",
        &[
            "--system",
            "Be brief.",
            "--answer",
            " lazy dog.",
            "--contrast",
            " lazy do",
            "--steps",
            "8",
            "--words",
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    ));
    let v = read_json(&json);
    assert_eq!(v["chat"]["system"], "Be brief.");
    assert!(v["text"]
        .as_str()
        .unwrap()
        .contains("<|system|>\nBe brief."));
    assert_eq!(v["target"]["type"], "answer");
    assert_eq!(v["target"]["contrast"]["text"], " lazy do");
    let n = v["tokens"].as_array().unwrap().len();
    assert_eq!(v["tokens_display"].as_array().unwrap().len(), n);
    assert!(v["tokens_display"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| !t.as_str().unwrap().contains('Ġ')));
    // the shared " lazy" cancels: the terms are " dog", "." and − " do"
    let terms = v["answer_terms"].as_array().unwrap();
    assert_eq!(terms.len(), 3);
    let f: f64 = terms
        .iter()
        .map(|t| t["weight"].as_f64().unwrap() * t["f_input"].as_f64().unwrap())
        .sum();
    assert!((f - v["f_input"].as_f64().unwrap()).abs() < 1e-4);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<mark"));
}

#[test]
fn per_token_paths_json_and_errors() {
    let d = TempDir::new("per_token_paths");
    let json = d.join("p.json");
    expect_success(&ig(
        &fixture("tiny-llama"),
        "the quick brown fox",
        &[
            "--answer",
            " lazy dog.",
            "--per-token-paths",
            "--steps",
            "8",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let v = read_json(&json);
    assert_eq!(v["mode"], "per_token_paths");
    let rows = v["token_attr"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        v["target"]["answer"]["ids"].as_array().unwrap().len()
    );
    let seq = f64_vec(&v["seq_attr"]);
    for (i, s) in seq.iter().enumerate() {
        let sum: f64 = rows.iter().map(|r| r[i].as_f64().unwrap()).sum();
        assert!((sum - s).abs() < 1e-9);
    }
    // --per-token-paths needs --answer (clap); a contrast equal to the answer is refused with a
    // hint
    let out = ig(&fixture("tiny-llama"), "the quick", &["--per-token-paths"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let f = expect_failure(
        &ig(
            &fixture("tiny-llama"),
            "the quick",
            &["--answer", " lazy dog.", "--contrast", " lazy dog."],
        ),
        &["--contrast", "zero"],
    );
    assert!(!f.hint.is_empty());
    expect_failure(
        &ig(&fixture("tiny-bert"), "a b", &["--answer", "c"]),
        &["causal language model"],
    );
}
