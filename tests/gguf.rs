//! The GGUF loader against gguf-py and transformers (goldens from
//! `tests/reference/make_gguf_goldens.py`):
//! - `types.gguf`: every supported tensor type dequantised bit-for-bit as gguf-py does, and every
//!   metadata value type;
//! - `tiny_llama.gguf`: a 2-layer llama with permuted q/k; HF names, shapes, every weight
//!   (checksum of the f32 bits) and q/k/v of layer 0 (bit-exact), the config and the token ids as
//!   transformers loads them;
//! - the real SmolLM2-135M-Instruct Q4_1 file (skipped with a notice when
//!   `models/SmolLM2-135M-Instruct` is missing: `scripts/fetch-models.sh` fetches it);
//! - corrupt input (truncation at every length, bad magic, unsupported type, huge counts,
//!   non-finite values, unsupported architecture and tokenizer): errors, never panics.

use gradpath::io::gguf_hf::{hf_tensor_name, unpermute_rows};
use gradpath::io::{GgmlType, GgufFile, MetaValue, ModelDir};
use gradpath::DType;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

fn goldens(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// sum_i bits(x_i) * (i * 0x9E3779B97F4A7C15 + 1) mod 2^64, as in make_gguf_goldens.py.
fn checksum(v: &[f32]) -> String {
    let s = v.iter().enumerate().fold(0u64, |acc, (i, x)| {
        let w = (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(1);
        acc.wrapping_add((x.to_bits() as u64).wrapping_mul(w))
    });
    format!("{s:016x}")
}

fn bits_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u32)
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as usize)
        .collect()
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gradpath-gguf-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// === types.gguf: dequantisation and metadata ===

#[test]
fn dequantisation_is_bit_exact_with_gguf_py() {
    let g = GgufFile::open(&fixture("types.gguf")).unwrap();
    assert_eq!(g.version(), 3);
    let want = goldens("types_goldens.json");
    let tensors = want["tensors"].as_array().unwrap();
    assert_eq!(g.tensors().len(), tensors.len());
    let mut total = 0;
    for t in tensors {
        let name = t["name"].as_str().unwrap();
        let info = g.tensor_info(name).unwrap();
        assert_eq!(info.shape(), usizes(&t["shape"]), "shape of {name}");
        assert_eq!(
            info.ggml_type.name(),
            t["type"].as_str().unwrap(),
            "type of {name}"
        );
        let got: Vec<u32> = g
            .dequantize(name)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let want = bits_of(&t["bits"]);
        assert_eq!(got.len(), want.len(), "element count of {name}");
        let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} values differ from gguf-py"
        );
        total += got.len();
    }
    println!(
        "{} tensors, {total} values: all bit-identical to gguf-py",
        tensors.len()
    );
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
    ] {
        assert!(
            g.tensors().iter().any(|t| t.ggml_type == ty),
            "no {ty:?} tensor in the fixture"
        );
    }
}

#[test]
fn metadata_of_every_value_type() {
    let g = GgufFile::open(&fixture("types.gguf")).unwrap();
    let want = goldens("types_goldens.json");
    let want = want["metadata"].as_object().unwrap();
    for (k, v) in want {
        let got = g.meta(k).unwrap_or_else(|| panic!("missing key {k}"));
        assert_eq!(&got.to_json(), v, "metadata {k}");
    }
    // the value types themselves, not only their JSON
    assert_eq!(g.meta("test.u8"), Some(&MetaValue::U8(200)));
    assert_eq!(g.meta("test.i8"), Some(&MetaValue::I8(-100)));
    assert_eq!(g.meta("test.u16"), Some(&MetaValue::U16(60000)));
    assert_eq!(g.meta("test.i16"), Some(&MetaValue::I16(-30000)));
    assert_eq!(g.meta("test.u32"), Some(&MetaValue::U32(4_000_000_000)));
    assert_eq!(g.meta("test.i32"), Some(&MetaValue::I32(-2_000_000_000)));
    assert_eq!(
        g.meta("test.u64"),
        Some(&MetaValue::U64(18_000_000_000_000_000_000))
    );
    assert_eq!(
        g.meta("test.i64"),
        Some(&MetaValue::I64(-9_000_000_000_000_000_000))
    );
    assert_eq!(g.meta("test.f32"), Some(&MetaValue::F32(0.1)));
    assert_eq!(g.meta("test.f64"), Some(&MetaValue::F64(0.1)));
    assert_eq!(g.meta("test.bool"), Some(&MetaValue::Bool(true)));
    assert_eq!(
        g.meta("test.arr_str"),
        Some(&MetaValue::Array(vec![
            MetaValue::Str("a b".into()),
            MetaValue::Str(String::new()),
            MetaValue::Str("ü".into())
        ]))
    );
    // the fixture uses a 64-byte alignment: every tensor's data starts on it
    assert_eq!(g.meta("general.alignment"), Some(&MetaValue::U32(64)));
    assert!(g.tensors().iter().all(|t| t.offset % 64 == 0));
}

// === tiny_llama.gguf: names, permutation, config, tokenizer vs transformers ===

#[test]
fn tiny_llama_weights_equal_transformers() {
    let md = ModelDir::open(&fixture("tiny_llama.gguf")).unwrap();
    assert!(md.is_gguf());
    let w = md.weights(DType::F32).unwrap();
    let want = goldens("tiny_llama_goldens.json");
    let sums = want["checksums"].as_object().unwrap();
    let mut names: Vec<&str> = sums.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(w.names(), names, "HF tensor names");
    for (name, s) in sums {
        let shape = usizes(&s["shape"]);
        assert_eq!(w.shape_of(name), Some(shape.as_slice()), "shape of {name}");
        let t = w.get_shaped(name, &shape).unwrap();
        let v: Vec<f32> = t.to_vec_f64().unwrap().iter().map(|&x| x as f32).collect();
        assert_eq!(
            checksum(&v),
            s["sum"].as_str().unwrap(),
            "{name}: f32 bits differ from transformers"
        );
    }
    for (name, bits) in want["full"].as_object().unwrap() {
        let got: Vec<u32> = w
            .get(name)
            .unwrap()
            .to_vec_f64()
            .unwrap()
            .iter()
            .map(|&x| (x as f32).to_bits())
            .collect();
        assert_eq!(got, bits_of(bits), "{name}");
    }
    // f64 weights are the same values, widened
    let w64 = md.weights(DType::F64).unwrap();
    let q = "model.layers.1.self_attn.q_proj.weight";
    assert_eq!(
        w64.get(q).unwrap().to_vec_f64().unwrap(),
        w.get(q).unwrap().to_vec_f64().unwrap()
    );
    println!(
        "{} tensors: checksums equal transformers' state_dict",
        sums.len()
    );
}

#[test]
fn q_and_k_are_unpermuted() {
    // the permutation is not the identity on this file: the raw GGUF rows differ from the HF ones
    let g = GgufFile::open(&fixture("tiny_llama.gguf")).unwrap();
    let hf = g.hf_tensors().unwrap();
    for (gguf, n_head) in [("blk.0.attn_q.weight", 4), ("blk.0.attn_k.weight", 2)] {
        let raw = g.dequantize(gguf).unwrap();
        let name = hf_tensor_name(gguf).unwrap();
        let (_, shape, data) = hf.iter().find(|(n, _, _)| *n == name).unwrap();
        assert_ne!(&raw, data, "{gguf}: permutation had no effect");
        assert_eq!(
            &unpermute_rows(&raw, shape[0], n_head).unwrap(),
            data,
            "{gguf}"
        );
        // HF row 1 of head 0 is GGUF row 2 (rows interleave the two rotary halves)
        let cols = shape[1];
        assert_eq!(&data[cols..2 * cols], &raw[2 * cols..3 * cols]);
    }
    // v is not permuted
    let v = g.dequantize("blk.0.attn_v.weight").unwrap();
    let (_, _, hv) = hf
        .iter()
        .find(|(n, _, _)| n == "model.layers.0.self_attn.v_proj.weight")
        .unwrap();
    assert_eq!(&v, hv);
    assert!(unpermute_rows(&raw_rows(6), 6, 4).is_err());
}

fn raw_rows(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32).collect()
}

#[test]
fn tensor_name_mapping() {
    let cases = [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
        (
            "blk.0.attn_norm.weight",
            "model.layers.0.input_layernorm.weight",
        ),
        (
            "blk.12.ffn_norm.weight",
            "model.layers.12.post_attention_layernorm.weight",
        ),
        ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
        (
            "blk.3.attn_k.weight",
            "model.layers.3.self_attn.k_proj.weight",
        ),
        ("blk.3.attn_v.bias", "model.layers.3.self_attn.v_proj.bias"),
        (
            "blk.3.attn_output.weight",
            "model.layers.3.self_attn.o_proj.weight",
        ),
        (
            "blk.29.ffn_gate.weight",
            "model.layers.29.mlp.gate_proj.weight",
        ),
        ("blk.29.ffn_up.weight", "model.layers.29.mlp.up_proj.weight"),
        (
            "blk.29.ffn_down.weight",
            "model.layers.29.mlp.down_proj.weight",
        ),
    ];
    for (g, hf) in cases {
        assert_eq!(hf_tensor_name(g).as_deref(), Some(hf), "{g}");
    }
    for g in [
        "blk.x.attn_q.weight",
        "blk.0.attn_qkv.weight",
        "token_embd",
        "rope_freqs.scale",
    ] {
        assert_eq!(hf_tensor_name(g), None, "{g}");
    }
}

/// Config keys compared with transformers' `model.config` (numbers as f64).
fn assert_config_matches(got: &Value, want: &Value) {
    for (k, w) in want.as_object().unwrap() {
        if k == "architectures" {
            continue; // transformers leaves it unset on a GGUF load; checked separately
        }
        let g = &got[k];
        match (g.as_f64(), w.as_f64()) {
            (Some(a), Some(b)) => assert_eq!(a, b, "config {k}"),
            _ => assert_eq!(g, w, "config {k}"),
        }
    }
}

#[test]
fn tiny_llama_config_and_tokenizer_equal_transformers() {
    let md = ModelDir::open(&fixture("tiny_llama.gguf")).unwrap();
    let want = goldens("tiny_llama_goldens.json");
    let cfg = md.config_json().unwrap();
    assert_config_matches(&cfg, &want["config"]);
    assert_eq!(
        cfg["architectures"],
        serde_json::json!(["LlamaForCausalLM"])
    );
    assert_eq!(cfg["add_bos_token"], Value::Bool(false));
    assert_eq!(cfg["unk_token_id"], Value::from(0));
    let tok = md.tokenizer().unwrap();
    for t in want["texts"].as_array().unwrap() {
        let text = t["text"].as_str().unwrap();
        let e = tok.encode(text, None).unwrap();
        assert_eq!(e.ids, usizes(&t["ids"]), "ids of {text:?}");
    }
    // the control token is one special token
    let e = tok.encode("in the<|im_end|>", None).unwrap();
    assert_eq!(e.tokens.last().map(String::as_str), Some("<|im_end|>"));
}

// === model discovery ===

#[test]
fn model_dir_finds_a_single_gguf() {
    let d = scratch("discovery");
    std::fs::copy(fixture("tiny_llama.gguf"), d.join("m.gguf")).unwrap();
    let md = ModelDir::open(&d).unwrap();
    assert!(md.is_gguf());
    assert_eq!(md.weights, d.join("m.gguf"));
    assert_eq!(md.config_json().unwrap()["hidden_size"], Value::from(64));
    // two candidates: an error that names both
    std::fs::copy(fixture("tiny_llama.gguf"), d.join("n.gguf")).unwrap();
    let e = ModelDir::open(&d).unwrap_err().to_string();
    assert!(e.contains("m.gguf") && e.contains("n.gguf"), "{e}");
    // a config.json makes it a Hugging Face folder again (and then the other files are needed)
    std::fs::write(d.join("config.json"), "{}").unwrap();
    let e = ModelDir::open(&d).unwrap_err().to_string();
    assert!(e.contains("model.safetensors not found"), "{e}");
    // a safetensors folder is unchanged
    let bert = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert");
    let e = ModelDir::open(&bert);
    if let Ok(md) = e {
        assert!(!md.is_gguf());
    }
    let _ = std::fs::remove_dir_all(&d);
}

// === corrupt and unsupported input ===

/// A minimal GGUF v3 writer for the corrupt-input tests.
struct Builder {
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            kv: Vec::new(),
            n_kv: 0,
            infos: Vec::new(),
            n_tensors: 0,
            data: Vec::new(),
        }
    }
    fn put_str(buf: &mut Vec<u8>, s: &str) {
        buf.extend((s.len() as u64).to_le_bytes());
        buf.extend(s.as_bytes());
    }
    fn kv_str(mut self, k: &str, v: &str) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(8u32.to_le_bytes());
        Builder::put_str(&mut self.kv, v);
        self.n_kv += 1;
        self
    }
    fn kv_u32(mut self, k: &str, v: u32) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(4u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
        self
    }
    fn kv_f32(mut self, k: &str, v: f32) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(6u32.to_le_bytes());
        self.kv.extend(v.to_le_bytes());
        self.n_kv += 1;
        self
    }
    fn kv_bool(mut self, k: &str, v: bool) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(7u32.to_le_bytes());
        self.kv.push(v as u8);
        self.n_kv += 1;
        self
    }
    fn kv_strs(mut self, k: &str, v: &[&str]) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(8u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for s in v {
            Builder::put_str(&mut self.kv, s);
        }
        self.n_kv += 1;
        self
    }
    fn kv_i32s(mut self, k: &str, v: &[i32]) -> Builder {
        Builder::put_str(&mut self.kv, k);
        self.kv.extend(9u32.to_le_bytes());
        self.kv.extend(5u32.to_le_bytes());
        self.kv.extend((v.len() as u64).to_le_bytes());
        for x in v {
            self.kv.extend(x.to_le_bytes());
        }
        self.n_kv += 1;
        self
    }
    /// A tensor with `ne` (innermost first), ggml type id `ty` and raw `bytes`.
    fn tensor(mut self, name: &str, ne: &[u64], ty: u32, bytes: &[u8]) -> Builder {
        Builder::put_str(&mut self.infos, name);
        self.infos.extend((ne.len() as u32).to_le_bytes());
        for d in ne {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend((self.data.len() as u64).to_le_bytes());
        self.data.extend(bytes);
        while !self.data.len().is_multiple_of(32) {
            self.data.push(0);
        }
        self.n_tensors += 1;
        self
    }
    /// A tensor entry pointing at data offset `offset` (no data of its own: aliasing tests).
    fn tensor_at(mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Builder {
        Builder::put_str(&mut self.infos, name);
        self.infos.extend((ne.len() as u32).to_le_bytes());
        for d in ne {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(self.n_tensors.to_le_bytes());
        b.extend(self.n_kv.to_le_bytes());
        b.extend(&self.kv);
        b.extend(&self.infos);
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        b.extend(&self.data);
        b
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Opens `path` and reads every tensor; the first error, if any.
fn open_and_read_all(path: &Path) -> Result<(), String> {
    let g = GgufFile::open(path).map_err(|e| e.to_string())?;
    for t in g.tensors() {
        g.dequantize(&t.name).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[test]
fn the_builder_writes_a_readable_file() {
    // guards the corrupt-input tests below: the uncorrupted file reads back
    let d = scratch("builder");
    let b = Builder::new()
        .kv_str("general.architecture", "llama")
        .tensor("x", &[3], 0, &f32_bytes(&[1.0, -2.0, 0.5]));
    let p = write(&d, "ok.gguf", &b.bytes());
    let g = GgufFile::open(&p).unwrap();
    assert_eq!(g.dequantize("x").unwrap(), vec![1.0, -2.0, 0.5]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let d = scratch("truncated");
    let full = std::fs::read(fixture("types.gguf")).unwrap();
    assert!(open_and_read_all(&fixture("types.gguf")).is_ok());
    // the writer pads the last tensor to the 64-byte alignment: those trailing zeros are optional
    let data_end = full.len() - full.iter().rev().take_while(|&&b| b == 0).count();
    assert!(full.len() - data_end < 64);
    let mut open_errors = 0;
    for len in 0..data_end {
        let p = write(&d, "t.gguf", &full[..len]);
        let e = open_and_read_all(&p).expect_err(&format!("{len} bytes accepted"));
        assert!(e.contains("t.gguf"), "error does not name the file: {e}");
        if GgufFile::open(&p).is_err() {
            open_errors += 1;
        }
    }
    for len in data_end..full.len() {
        let p = write(&d, "t.gguf", &full[..len]);
        assert!(
            open_and_read_all(&p).is_ok(),
            "{len} bytes: only padding is missing"
        );
    }
    println!(
        "{data_end} truncations rejected ({open_errors} when parsing the header, the rest when \
         reading data); {} lengths missing only padding accepted",
        full.len() - data_end
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_headers_are_errors() {
    let d = scratch("headers");
    let good = Builder::new()
        .kv_str("general.architecture", "llama")
        .tensor("x", &[3], 0, &f32_bytes(&[1.0, 2.0, 3.0]))
        .bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic",
            [b"GGUG".as_slice(), &good[4..]].concat(),
            "bad magic",
        ),
        (
            "v1",
            [b"GGUF".as_slice(), &1u32.to_le_bytes(), &good[8..]].concat(),
            "version 1",
        ),
        (
            "big-endian",
            [b"GGUF".as_slice(), &3u32.to_be_bytes(), &good[8..]].concat(),
            "big-endian",
        ),
        (
            "huge tensor count",
            [&good[..8], &u64::MAX.to_le_bytes(), &good[16..]].concat(),
            "tensor count",
        ),
        (
            "huge kv count",
            [&good[..16], &(1u64 << 40).to_le_bytes(), &good[24..]].concat(),
            "metadata count",
        ),
    ];
    for (what, bytes, needle) in cases {
        let p = write(&d, "h.gguf", &bytes);
        let e = GgufFile::open(&p).expect_err(what).to_string();
        assert!(e.contains(needle) && e.contains("h.gguf"), "{what}: {e}");
    }
    // a string length far past the end of the file
    let mut b = good.clone();
    b[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes()); // length of the first key
    let p = write(&d, "s.gguf", &b);
    assert!(GgufFile::open(&p).is_err());
    // 5 dimensions
    let b = Builder::new()
        .tensor("x", &[1, 1, 1, 1, 1], 0, &f32_bytes(&[1.0]))
        .bytes();
    let e = GgufFile::open(&write(&d, "dims.gguf", &b)).unwrap_err();
    assert!(e.to_string().contains("5 dimensions"), "{e}");
    // dimensions whose product overflows
    let b = Builder::new()
        .tensor("x", &[u64::MAX / 2, 4], 0, &[])
        .bytes();
    let e = GgufFile::open(&write(&d, "ovf.gguf", &b)).unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unsupported_types_and_non_finite_values_are_errors() {
    let d = scratch("types");
    let b = Builder::new()
        .tensor("blk.0.q4k", &[256], 12, &[0u8; 144])
        .tensor("nan", &[2], 0, &f32_bytes(&[1.0, f32::NAN]))
        .tensor("inf16", &[32], 1, &[0x00, 0x7c].repeat(32))
        .tensor("q4_1_odd", &[16], 3, &[0u8; 20]);
    let p = write(&d, "bad.gguf", &b.bytes());
    let g = GgufFile::open(&p).unwrap();
    let err = |n: &str| g.dequantize(n).unwrap_err().to_string();
    let e = err("blk.0.q4k");
    assert!(
        e.contains("`blk.0.q4k`") && e.contains("Q4_K") && e.contains("not supported"),
        "{e}"
    );
    let e = err("nan");
    assert!(
        e.contains("`nan`") && e.contains("non-finite value at element 1"),
        "{e}"
    );
    let e = err("inf16");
    assert!(e.contains("non-finite value at element 0"), "{e}");
    let e = err("q4_1_odd");
    assert!(e.contains("not a multiple"), "{e}");
    // Data past the end of the file is an error when the file is opened, before any read.
    let b = Builder::new()
        .tensor("x", &[2], 0, &f32_bytes(&[1.0, 2.0]))
        .tensor("past_end", &[64], 0, &[0u8; 4]);
    let e = GgufFile::open(&write(&d, "past.gguf", &b.bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`past_end`") && e.contains("outside"), "{e}");
    let e = err("nope");
    assert!(e.contains("missing tensor `nope`"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Tensor entries that alias one data block (a 1 MB file posing as gigabytes of weights) are an
/// error when the file is opened.
#[test]
fn tensors_sharing_data_bytes_are_errors() {
    let d = scratch("alias");
    let block = f32_bytes(&[0.5; 64]);
    let mut b = Builder::new().tensor("a", &[64], 0, &block);
    for i in 0..100 {
        b = b.tensor_at(&format!("alias{i}"), &[64], 0, 0);
    }
    let e = GgufFile::open(&write(&d, "alias.gguf", &b.bytes()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("share data bytes") && e.contains("alias.gguf"),
        "{e}"
    );
    // A partial overlap too.
    let b = Builder::new()
        .tensor("a", &[64], 0, &block)
        .tensor_at("b", &[8], 0, 128);
    let e = GgufFile::open(&write(&d, "overlap.gguf", &b.bytes()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`a`") && e.contains("`b`"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn unsupported_architecture_and_tokenizer_are_errors() {
    let d = scratch("arch");
    let b = Builder::new()
        .kv_str("general.architecture", "gpt2")
        .bytes();
    let e = ModelDir::open(&write(&d, "gpt2.gguf", &b))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported architecture `gpt2`") && e.contains("llama, mistral, qwen2"),
        "{e}"
    );
    let b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_str("tokenizer.ggml.model", "llama")
        .bytes();
    let md = ModelDir::open(&write(&d, "spm.gguf", &b)).unwrap();
    let e = md.tokenizer().err().unwrap().to_string();
    assert!(
        e.contains("tokenizer model `llama` is not supported yet"),
        "{e}"
    );
    // missing hyper-parameters name the key
    let e = md.config_json().unwrap_err().to_string();
    assert!(e.contains("llama.embedding_length"), "{e}");
    // an unknown tensor name is not silently dropped
    let b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_u32("llama.embedding_length", 4)
        .kv_u32("llama.attention.head_count", 2)
        .kv_u32("llama.feed_forward_length", 8)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.vocab_size", 4)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .tensor("blk.0.attn_qkv.weight", &[4], 0, &f32_bytes(&[0.0; 4]))
        .bytes();
    let md = ModelDir::open(&write(&d, "qkv.gguf", &b)).unwrap();
    assert_eq!(
        md.config_json().unwrap()["num_key_value_heads"],
        Value::from(2)
    );
    let e = md.weights(DType::F32).err().unwrap().to_string();
    assert!(
        e.contains("`blk.0.attn_qkv.weight` has no Hugging Face name"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A byte-level BPE vocabulary: specials, the bytes a..e, space (Ġ), two merges, and a
/// user-defined token.
fn tiny_vocab(add_bos: Option<bool>) -> Vec<u8> {
    let tokens = [
        "<s>", "</s>", "a", "b", "c", "d", "e", "Ġ", "ab", "Ġab", "<user>",
    ];
    let types = [3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4];
    let mut b = Builder::new()
        .kv_str("general.architecture", "llama")
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_strs("tokenizer.ggml.tokens", &tokens)
        .kv_i32s("tokenizer.ggml.token_type", &types)
        .kv_strs("tokenizer.ggml.merges", &["a b", "Ġ ab"])
        .kv_u32("tokenizer.ggml.bos_token_id", 0)
        .kv_u32("tokenizer.ggml.eos_token_id", 1);
    if let Some(v) = add_bos {
        b = b.kv_bool("tokenizer.ggml.add_bos_token", v);
    }
    b.bytes()
}

#[test]
fn bos_follows_add_bos_token_and_token_types_set_added_tokens() {
    let d = scratch("bos");
    for (add_bos, want_bos) in [(Some(true), true), (Some(false), false), (None, false)] {
        let p = write(&d, "v.gguf", &tiny_vocab(add_bos));
        let md = ModelDir::open(&p).unwrap();
        let tok = md.tokenizer().unwrap();
        let e = tok.encode("ab ab<user>c</s>", None).unwrap();
        let mut want = vec![8, 9, 10, 4, 1];
        if want_bos {
            want.insert(0, 0);
        }
        assert_eq!(e.ids, want, "add_bos_token = {add_bos:?}");
        assert_eq!(e.special.first(), Some(&want_bos), "{add_bos:?}: {e:?}");
        // the user-defined token is an added token but not a special one
        let i = e.tokens.iter().position(|t| t == "<user>").unwrap();
        assert!(!e.special[i], "{e:?}");
        assert!(
            md.config_json().is_err(),
            "no hyper-parameters in this file"
        );
        assert_eq!(md.gguf().unwrap().add_bos_token(), want_bos);
    }
    // a pair gets BOS before each sequence
    let p = write(&d, "v.gguf", &tiny_vocab(Some(true)));
    let tok = ModelDir::open(&p).unwrap().tokenizer().unwrap();
    let e = tok.encode("ab", Some("c")).unwrap();
    assert_eq!(e.ids, vec![0, 8, 0, 4]);
    assert_eq!(e.type_ids, vec![0, 0, 1, 1]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn random_header_corruption_never_panics() {
    use rand::{Rng, SeedableRng};
    let d = scratch("fuzz");
    let full = std::fs::read(fixture("tiny_llama.gguf")).unwrap();
    let header_len = 8 * 1024; // metadata (vocabulary, merges) and tensor infos; data follows
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut rejected, mut survived) = (0, 0);
    for _ in 0..400 {
        let mut b = full.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..header_len);
            b[i] = rng.gen();
        }
        let p = write(&d, "f.gguf", &b);
        // every step may fail, none may panic
        let ok = ModelDir::open(&p).and_then(|md| {
            md.config_json()?;
            md.tokenizer()?;
            md.weights(DType::F32).map(|_| ())
        });
        match ok {
            Ok(()) => survived += 1,
            Err(_) => rejected += 1,
        }
    }
    println!("400 corrupted headers: {rejected} rejected, {survived} still loadable");
    assert!(rejected > 0);
    let _ = std::fs::remove_dir_all(&d);
}

// === the real SmolLM2-135M-Instruct (Q4_1) ===

fn smollm2() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    if p.exists() {
        Some(p)
    } else {
        println!(
            "SKIPPED: {} is missing (run scripts/fetch-models.sh)",
            p.display()
        );
        None
    }
}

#[test]
fn smollm2_tokenizer_equals_transformers() {
    let Some(p) = smollm2() else { return };
    let md = ModelDir::open(p.parent().unwrap()).unwrap();
    assert!(md.is_gguf());
    let tok = md.tokenizer().unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    let want = goldens("smollm2_goldens.json");
    let texts = want["texts"].as_array().unwrap();
    for t in texts {
        let text = t["text"].as_str().unwrap();
        let e = tok.encode(text, None).unwrap();
        assert_eq!(e.ids, usizes(&t["ids"]), "ids of {text:?}");
    }
    println!("{} texts: ids equal transformers'", texts.len());
}

#[test]
fn smollm2_weights_and_config_equal_transformers() {
    let Some(p) = smollm2() else { return };
    let t0 = std::time::Instant::now();
    let md = ModelDir::open(&p).unwrap();
    let w = md.weights(DType::F32).unwrap();
    println!("dequantised in {:.2} s", t0.elapsed().as_secs_f64());
    let want = goldens("smollm2_goldens.json");

    let cfg = md.config_json().unwrap();
    assert_config_matches(&cfg, &want["config"]);
    assert_eq!(
        cfg["architectures"],
        serde_json::json!(["LlamaForCausalLM"])
    );
    assert_eq!(cfg["add_bos_token"], Value::Bool(false));

    let sums = want["checksums"].as_object().unwrap();
    assert_eq!(sums.len(), 272);
    assert_eq!(w.names().len(), 272);
    let mut values = 0;
    for (name, s) in sums {
        let shape = usizes(&s["shape"]);
        let v: Vec<f32> = w
            .get_shaped(name, &shape)
            .unwrap()
            .to_vec_f64()
            .unwrap()
            .iter()
            .map(|&x| x as f32)
            .collect();
        assert_eq!(checksum(&v), s["sum"].as_str().unwrap(), "{name}");
        values += v.len();
    }
    let mut sliced = 0;
    for r in want["rows"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let t = w.get(name).unwrap();
        let cols = t.shape()[1];
        let row = r["row"].as_u64().unwrap() as usize;
        let v = t.to_vec_f64().unwrap();
        let got: Vec<u32> = usizes(&r["cols"])
            .iter()
            .map(|&c| (v[row * cols + c] as f32).to_bits())
            .collect();
        assert_eq!(got, bits_of(&r["bits"]), "{name} row {row}");
        sliced += got.len();
    }
    for (name, bits) in want["full"].as_object().unwrap() {
        let got: Vec<u32> = w
            .get(name)
            .unwrap()
            .to_vec_f64()
            .unwrap()
            .iter()
            .map(|&x| (x as f32).to_bits())
            .collect();
        assert_eq!(got, bits_of(bits), "{name}");
        sliced += got.len();
    }
    println!(
        "272 tensors ({values} values) bit-identical to transformers' state_dict (checksums); \
         {sliced} sliced values compared bit by bit (max |diff| 0)"
    );
}

/// Absurd GGUF hyper-parameters (a billion blocks, a 2³²−1 context, a zero epsilon) are config
/// errors naming the Hugging Face key they map to, raised before any tensor is allocated.
#[test]
fn absurd_gguf_hyper_parameters_are_errors_before_allocation() {
    let d = scratch("absurd");
    let base = |blocks: u32, ctx: u32, eps: f32| {
        Builder::new()
            .kv_str("general.architecture", "llama")
            .kv_u32("llama.embedding_length", 4)
            .kv_u32("llama.attention.head_count", 2)
            .kv_u32("llama.feed_forward_length", 8)
            .kv_u32("llama.block_count", blocks)
            .kv_u32("llama.context_length", ctx)
            .kv_u32("llama.vocab_size", 4)
            .kv_f32("llama.attention.layer_norm_rms_epsilon", eps)
            .tensor("token_embd.weight", &[4, 4], 0, &f32_bytes(&[0.5; 16]))
            .bytes()
    };
    for (tag, bytes, key) in [
        ("blocks", base(1_000_000_000, 16, 1e-5), "num_hidden_layers"),
        (
            "context",
            base(1, u32::MAX, 1e-5),
            "max_position_embeddings",
        ),
        ("eps", base(1, 16, 0.0), "rms_norm_eps"),
    ] {
        let p = write(&d, &format!("{tag}.gguf"), &bytes);
        let e = gradpath::models::load(&p, DType::F32)
            .err()
            .unwrap_or_else(|| panic!("{tag}: loaded"))
            .to_string();
        assert!(e.contains(key), "{tag}: {e}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
