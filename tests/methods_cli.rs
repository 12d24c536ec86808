//! End-to-end tests of `gradpath layer-ig | conductance | neuron | saliency | attention | ablate |
//! sensitivity` on the tiny fixtures: the JSON holds what docs/JSON.md promises (and agrees with
//! the library's completeness and one-sweep claims), the HTML is written, and bad input ends with
//! exit code 1 and the `error:` / `hint:` lines, never a panic.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gradpath");
const TEXT: &str = "the quick brown fox jumps";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
        .display()
        .to_string()
}

#[path = "common/tempdir.rs"]
mod tempdir;
use tempdir::TempDir;

/// `gradpath <cmd> --model <model> --text TEXT <extra...>` with one rayon thread.
fn run(cmd: &str, model: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args([cmd, "--model", &fixture(model), "--text", TEXT])
        .args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("cannot start the gradpath binary")
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn expect_success(out: &Output) {
    let stderr = text_of(&out.stderr);
    assert!(
        out.status.success(),
        "expected success, got {:?}\n{stderr}\n{}",
        out.status.code(),
        text_of(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Exit code 1, an `error:` line naming every keyword, a non-empty `hint:` line, no panic.
#[track_caller]
fn expect_failure(out: &Output, keywords: &[&str]) -> String {
    let stderr = text_of(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit code 1\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line\n{stderr}"))
        .to_string();
    let hint = stderr
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or_else(|| panic!("no `hint:` line\n{stderr}"));
    assert!(hint.len() > 16, "empty hint: {stderr}");
    for k in keywords {
        assert!(error.contains(k), "error line lacks `{k}`: {error}");
    }
    error
}

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn conductance_all_layers_token_curve_json_and_html() {
    let d = TempDir::new("cond");
    let (j, h) = (d.file("c.json"), d.file("c.html"));
    let out = run(
        "conductance",
        "tiny-bert",
        &[
            "--token",
            "[SEP]",
            "--steps",
            "30",
            "--method",
            "captum-trapezoid",
            "--dtype",
            "f64",
            "--json",
            &j,
            "--html",
            &h,
        ],
    );
    expect_success(&out);
    let v = json(&j);
    assert_eq!(v["method"], "layer_conductance");
    assert_eq!(v["points"], 31, "one sweep of n + 1 points");
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    let n_tok = v["tokens"].as_array().unwrap().len();
    let df = v["f_input"].as_f64().unwrap() - v["f_baseline"].as_f64().unwrap();
    for l in layers {
        let a = floats(&l["attributions"]);
        assert_eq!(a.len(), n_tok);
        let total = l["total"].as_f64().unwrap();
        assert!((a.iter().sum::<f64>() - total).abs() < 1e-9);
        assert!((l["delta"].as_f64().unwrap() - (total - df)).abs() < 1e-9);
    }
    // the [SEP] curve: its score over the L2 norm of the layer's token scores
    let tok = &v["token"];
    assert_eq!(tok["token"], "[SEP]");
    let i = tok["index"].as_u64().unwrap() as usize;
    for (l, nv) in layers.iter().zip(floats(&tok["normalised"])) {
        let a = floats(&l["attributions"]);
        let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((nv - a[i] / norm).abs() < 1e-12);
    }
    let html = std::fs::read_to_string(&h).unwrap();
    assert!(html.contains("Tokens × layers") && html.contains("[SEP]"));

    // one layer, internal influence, path at the embedding output
    let j2 = d.file("i.json");
    let out = run(
        "conductance",
        "tiny-bert",
        &[
            "--layers",
            "1",
            "--influence",
            "--path-boundary",
            "embed.hook_out",
            "-q",
            "--json",
            &j2,
        ],
    );
    expect_success(&out);
    let v = json(&j2);
    assert_eq!(v["method"], "internal_influence");
    assert_eq!(v["layers"][0]["boundary"], "blocks.1.hook_resid_post");
    assert!(v["layers"][0]["delta"].is_null());
}

#[test]
fn layer_ig_neuron_saliency_ablate_sensitivity_write_json() {
    let d = TempDir::new("misc");
    // layer IG: completeness at a cut of the network
    let j = d.file("l.json");
    expect_success(&run(
        "layer-ig",
        "tiny-bert-embed",
        &[
            "--similar-to",
            "a small dog",
            "--boundary",
            "blocks.0.hook_resid_post",
            "--dtype",
            "f64",
            "--json",
            &j,
            "--html",
            &d.file("l.html"),
        ],
    ));
    let v = json(&j);
    assert_eq!(v["method"], "layer_integrated_gradients");
    assert_eq!(v["target"]["type"], "cosine_similarity");
    assert!(
        v["relative_delta"].as_f64().unwrap() < 1e-3,
        "{}",
        v["relative_delta"]
    );

    let j = d.file("n.json");
    expect_success(&run(
        "neuron",
        "tiny-bert",
        &[
            "--boundary",
            "blocks.1.hook_resid_post",
            "--neuron",
            "0,5",
            "--json",
            &j,
        ],
    ));
    let v = json(&j);
    assert_eq!(v["method"], "neuron_conductance");
    assert_eq!(v["neuron"], serde_json::json!([0, 5]));
    assert!(floats(&v["attributions"]).iter().any(|x| *x != 0.0));

    let j = d.file("s.json");
    expect_success(&run("saliency", "tiny-bert", &["--json", &j, "-q"]));
    let v = json(&j);
    assert_eq!(v["method"], "saliency");
    assert!(floats(&v["attributions"]).iter().all(|x| *x >= 0.0));
    assert!(v["noise_tunnel"].is_null());

    let j = d.file("sg.json");
    let args = [
        "--times-input",
        "--smooth",
        "vargrad",
        "--samples",
        "3",
        "--stdev",
        "0.1",
        "--seed",
        "5",
        "--json",
        &j,
        "-q",
    ];
    expect_success(&run("saliency", "tiny-roberta", &args));
    let v = json(&j);
    assert_eq!(v["method"], "input_x_gradient");
    assert_eq!(v["noise_tunnel"]["type"], "vargrad");
    let first = floats(&v["attributions"]);
    expect_success(&run("saliency", "tiny-roberta", &args));
    assert_eq!(
        first,
        floats(&json(&j)["attributions"]),
        "seeded noise is reproducible"
    );

    let j = d.file("a.json");
    expect_success(&run(
        "ablate",
        "tiny-distilbert",
        &["--replace", "zero", "--json", &j, "-q"],
    ));
    let v = json(&j);
    assert_eq!(v["method"], "embedding_ablation");
    let f = v["f_input"].as_f64().unwrap();
    for (a, fa) in floats(&v["attributions"])
        .iter()
        .zip(floats(&v["f_ablated"]))
    {
        assert!((a - (f - fa)).abs() < 1e-12);
    }

    let j = d.file("se.json");
    expect_success(&run(
        "sensitivity",
        "tiny-bert",
        &["--draws", "4", "--sigma", "0.3", "--json", &j, "-q"],
    ));
    let v = json(&j);
    assert_eq!(v["method"], "noise_sensitivity");
    assert_eq!(
        floats(&v["std"]).len(),
        v["tokens"].as_array().unwrap().len()
    );
    assert!(floats(&v["std"]).iter().all(|s| *s > 0.0));
}

#[test]
fn attention_maps_json_and_html() {
    let d = TempDir::new("attn");
    let (j, h) = (d.file("a.json"), d.file("a.html"));
    expect_success(&run(
        "attention",
        "tiny-roberta",
        &[
            "--layer",
            "0",
            "--head",
            "2",
            "--mask-head",
            "1:3",
            "--json",
            &j,
            "--html",
            &h,
        ],
    ));
    let v = json(&j);
    assert_eq!(v["method"], "attention");
    let a = v["attention"].as_array().unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].as_array().unwrap().len(), 4);
    let t = v["tokens"].as_array().unwrap().len();
    for (l, layer) in a.iter().enumerate() {
        for (hd, head) in layer.as_array().unwrap().iter().enumerate() {
            for row in head.as_array().unwrap() {
                let s: f64 = floats(row).iter().sum();
                assert_eq!(floats(row).len(), t);
                let want = if (l, hd) == (1, 3) { 0.0 } else { 1.0 };
                assert!((s - want).abs() < 1e-5, "layer {l} head {hd}: row sum {s}");
            }
        }
    }
    let html = std::fs::read_to_string(&h).unwrap();
    assert!(html.contains("Layer 0, head 2") && html.contains("<svg"));
}

#[test]
fn bad_input_errors() {
    let e = expect_failure(
        &run(
            "layer-ig",
            "tiny-bert",
            &["--boundary", "blocks.0.hook_nope"],
        ),
        &["unknown boundary", "blocks.0.hook_nope"],
    );
    assert!(
        e.contains("blocks.1.hook_resid_post") && e.contains("hook_embed"),
        "lists the valid names: {e}"
    );
    expect_failure(
        &run(
            "neuron",
            "tiny-bert",
            &["--boundary", "nope", "--neuron", "0,1"],
        ),
        &["unknown boundary"],
    );
    expect_failure(
        &run("conductance", "tiny-bert", &["--layers", "0,2"]),
        &["layer 2", "out of range"],
    );
    expect_failure(
        &run("conductance", "tiny-bert", &["--at", "hook_nope"]),
        &["unknown boundary"],
    );
    expect_failure(
        &run("conductance", "tiny-bert", &["--token", "zebra"]),
        &["zebra", "not in the input"],
    );
    expect_failure(
        &run("conductance", "tiny-bert", &["--token", "99"]),
        &["out of range"],
    );
    expect_failure(
        &run("sensitivity", "tiny-bert", &["--draws", "0"]),
        &["--draws"],
    );
    expect_failure(
        &run("sensitivity", "tiny-bert", &["--sigma=-1"]),
        &["--sigma"],
    );
    expect_failure(
        &run(
            "saliency",
            "tiny-bert",
            &["--smooth", "smoothgrad", "--samples", "0"],
        ),
        &["--samples"],
    );
    expect_failure(
        &run("saliency", "tiny-bert", &["--smooth", "blur"]),
        &["blur"],
    );
    expect_failure(
        &run("attention", "tiny-bert", &["--layer", "5"]),
        &["layer 5"],
    );
    expect_failure(
        &run("attention", "tiny-bert", &["--mask-head", "0:9"]),
        &["head 9"],
    );
    expect_failure(
        &run("attention", "tiny-bert", &["--mask-head", "zero"]),
        &["LAYER:HEAD"],
    );
    expect_failure(
        &run(
            "neuron",
            "tiny-bert",
            &["--boundary", "blocks.0.hook_resid_post", "--neuron", "0,99"],
        ),
        &["out of range"],
    );
    // Flags a method does not take are usage errors of the parser (exit code 2), not run-time
    // errors: adaptive refinement is only for `ig` and `generate-attr`.
    for (cmd, flag) in [
        ("conductance", "--tolerance"),
        ("saliency", "--tolerance"),
        ("saliency", "--steps"),
        ("attention", "--similar-to"),
        ("conductance", "--words"),
    ] {
        let out = run(cmd, "tiny-bert", &[flag, "1"]);
        let stderr = text_of(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd} {flag}: {stderr}");
        assert!(stderr.contains(flag), "{cmd} {flag}: {stderr}");
    }
    expect_failure(
        &run("conductance", "tiny-bert-embed", &[]),
        &["--similar-to"],
    );
}

#[test]
fn methods_run_on_decoders() {
    // The methods use only the boundary API and `Model`, so they work for decoders unchanged.
    let d = TempDir::new("dec");
    for m in ["tiny-gpt2", "tiny-llama"] {
        let j = d.file(&format!("{m}-c.json"));
        expect_success(&run(
            "conductance",
            m,
            &[
                "--steps", "10", "--dtype", "f64", "--token", "1", "-q", "--json", &j,
            ],
        ));
        let v = json(&j);
        assert_eq!(v["target"]["type"], "token", "{m}: next-token target");
        assert_eq!(v["points"], 11);
        assert_eq!(v["layers"].as_array().unwrap().len(), 2);
        let j = d.file(&format!("{m}-l.json"));
        expect_success(&run(
            "layer-ig",
            m,
            &[
                "--boundary",
                "blocks.0.hook_resid_post",
                "--dtype",
                "f64",
                "-q",
                "--json",
                &j,
            ],
        ));
        assert!(json(&j)["relative_delta"].as_f64().unwrap() < 1e-6, "{m}");
        for cmd in ["saliency", "ablate", "sensitivity", "attention"] {
            expect_success(&run(cmd, m, &["-q"]));
        }
        expect_success(&run(
            "neuron",
            m,
            &[
                "--boundary",
                "blocks.1.hook_resid_post",
                "--neuron",
                "3,1",
                "-q",
            ],
        ));
    }
}
