//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and the inputs that once crashed
//! a target (`fuzz/regressions/<target>/`) through the same harness the cargo-fuzz targets run
//! (`fuzz/harness.rs`): every input must be read, or refused with an error, without a panic.
//! The open-ended fuzzing itself is run by hand (docs/TESTING.md); CI runs only this replay.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let d = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
    println!("{target}: {n} inputs replayed");
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", harness::safetensors);
}

#[test]
fn config_corpus() {
    replay("config", harness::config);
}

#[test]
fn tokenizer_corpus() {
    replay("tokenizer", harness::tokenizer);
}

#[test]
fn gguf_corpus() {
    replay("gguf", harness::gguf);
}

#[test]
fn jsonl_corpus() {
    replay("jsonl", harness::jsonl);
}
