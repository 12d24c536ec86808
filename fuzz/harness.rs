//! What each fuzz target does with one input, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`) and the corpus replay in CI (`tests/fuzz_corpus.rs`). Each function
//! must return (an error is fine) and never panic, abort or allocate without bound.
//!
//! The readers take paths, so each input is written to a file in the system temp folder first
//! (one per process and target).

#![allow(dead_code)]

use std::path::PathBuf;

fn file(target: &str, ext: &str, data: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "gradpath-fuzz-{}-{target}.{ext}",
        std::process::id()
    ));
    std::fs::write(&p, data).expect("cannot write the fuzz input");
    p
}

/// Elements read per tensor at most (a valid header may describe a huge tensor; reading it is
/// not the point).
const MAX_READ: usize = 1 << 20;

/// A safetensors file: open it, read every tensor of a sane size.
pub fn safetensors(data: &[u8]) {
    let p = file("safetensors", "safetensors", data);
    for dtype in [gradpath::DType::F32, gradpath::DType::F64] {
        if let Ok(w) = gradpath::io::Weights::open(&p, dtype) {
            for name in w.names() {
                let small = w
                    .shape_of(name)
                    .is_some_and(|s| s.iter().product::<usize>() <= MAX_READ);
                if small {
                    let _ = w.get(name);
                }
            }
        }
    }
}

/// A config.json: every family's reader.
pub fn config(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = gradpath::models::EncoderConfig::from_hf(&v);
    let _ = gradpath::models::DecoderConfig::from_hf(&v);
}

/// A tokenizer.json: load it and encode a short text (with a pair).
pub fn tokenizer(data: &[u8]) {
    let p = file("tokenizer", "json", data);
    if let Ok(t) = gradpath::io::Tokenizer::from_file(&p) {
        let _ = t.encode("Hello, wörld — привет 123", Some("a pair"));
    }
}

/// A GGUF file: open it (header, metadata, tensor table, data ranges) and read every tensor of
/// a sane size; the model-folder view (config and tokenizer from the metadata) too.
pub fn gguf(data: &[u8]) {
    let p = file("gguf", "gguf", data);
    if let Ok(g) = gradpath::io::GgufFile::open(&p) {
        for t in g.tensors() {
            if t.ne.iter().product::<usize>() <= MAX_READ {
                let _ = g.dequantize(&t.name);
            }
        }
    }
    if let Ok(md) = gradpath::io::ModelDir::open(&p) {
        let _ = md.config_json();
        let _ = md.tokenizer();
    }
}

/// A JSONL data file: the training reader (with and without class names) and the batch reader.
pub fn jsonl(data: &[u8]) {
    let p = file("jsonl", "jsonl", data);
    let _ = gradpath::train::data::read_jsonl(&p, &["negative".into(), "positive".into()]);
    let _ = gradpath::train::data::read_jsonl(&p, &[]);
    let _ = gradpath::batch::read_examples(&p);
}
