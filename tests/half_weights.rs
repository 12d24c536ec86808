//! F16 and BF16 checkpoints (how many models ship, Llama-3.2 in BF16 among them): a copy of
//! tiny-bert is written in each half type; every weight must load as exactly the half-rounded f32
//! value, and the model's logits must stay close to the f32 model's.

use gradpath::io::{ModelDir, Weights};
use gradpath::models::{Batch, Encoder, Hooks};
use gradpath::DType;
use safetensors::tensor::{Dtype, TensorView};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn src() -> PathBuf {
    fixture("tiny-bert")
}

/// Copies tiny-bert with weights stored as `dt` (F16 or BF16); returns the folder.
fn half_copy(dt: Dtype) -> PathBuf {
    half_copy_of(&src(), dt)
}

/// Copies the model folder `src` with weights stored as `dt`; returns the folder.
fn half_copy_of(src: &std::path::Path, dt: Dtype) -> PathBuf {
    let name = src.file_name().unwrap().to_string_lossy();
    let dir = std::env::temp_dir().join(format!(
        "gradpath-half-{}-{name}-{dt:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let w = Weights::open(&src.join("model.safetensors"), DType::F32).unwrap();
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for name in w.names() {
        let t = w.get(name).unwrap();
        let bytes: Vec<u8> = t
            .to_vec_f64()
            .unwrap()
            .iter()
            .flat_map(|&v| match dt {
                Dtype::F16 => half::f16::from_f64(v).to_le_bytes(),
                _ => half::bf16::from_f64(v).to_le_bytes(),
            })
            .collect();
        bufs.push((name.to_string(), t.shape().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView)> = bufs
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(dt, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    dir
}

fn check(dt: Dtype, logits_tol: f64) {
    let dir = half_copy(dt);
    let full = Weights::open(&src().join("model.safetensors"), DType::F64).unwrap();
    let half = Weights::open(&dir.join("model.safetensors"), DType::F64).unwrap();
    for name in full.names() {
        let a = full.get(name).unwrap().to_vec_f64().unwrap();
        let b = half.get(name).unwrap().to_vec_f64().unwrap();
        for (x, y) in a.iter().zip(&b) {
            let want = match dt {
                Dtype::F16 => half::f16::from_f64(*x).to_f64(),
                _ => half::bf16::from_f64(*x).to_f64(),
            };
            assert_eq!(*y, want, "{name}: {dt:?} value of {x}");
        }
    }
    let ids = [2usize, 11, 20, 30, 3];
    let logits = |d: &PathBuf| {
        let m = Encoder::load(&ModelDir::open(d).unwrap(), DType::F64).unwrap();
        m.forward(&Batch::repeat(&ids, &[0; 5], 1), &mut Hooks::new())
            .unwrap()
            .logits
            .unwrap()
            .value()
            .to_vec_f64()
            .unwrap()
    };
    let (a, b) = (logits(&src()), logits(&dir));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    eprintln!("{dt:?}: logits max diff vs f32 weights {diff:.2e}");
    assert!(diff < logits_tol, "{dt:?}: logits differ by {diff}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn f16_checkpoint_loads_exactly() {
    // f16 keeps 11 significant bits: logits of O(1) move by ~1e-3 at most.
    check(Dtype::F16, 1e-2);
}

#[test]
fn bf16_checkpoint_loads_exactly() {
    // bf16 keeps 8 significant bits: ~1e-2 relative per weight.
    check(Dtype::BF16, 1e-1);
}

/// A BF16 Llama checkpoint (how Llama-3.2-1B ships) loads through the decoder path and predicts
/// next-token logits close to the f32 checkpoint's.
#[test]
fn bf16_llama_checkpoint_loads() {
    let src = fixture("tiny-llama");
    let dir = half_copy_of(&src, Dtype::BF16);
    let ids = [1usize, 261, 224, 84, 88, 271];
    let logits = |d: &PathBuf| {
        let m = gradpath::models::load(d, DType::F64).unwrap();
        assert!(m.is_decoder());
        m.forward(&Batch::repeat(&ids, &[0; 6], 1), &mut Hooks::new())
            .unwrap()
            .token_logits(5)
            .unwrap()
            .value()
            .to_vec_f64()
            .unwrap()
    };
    let (a, b) = (logits(&src), logits(&dir));
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    eprintln!("BF16 tiny-llama: last-position logits max diff {diff:.2e} (scale {scale:.2})");
    assert!(
        diff > 0.0,
        "the BF16 copy should differ from the f32 weights"
    );
    assert!(
        diff < 0.1 * scale,
        "BF16 logits differ by {diff} (scale {scale})"
    );
    std::fs::remove_dir_all(dir).ok();
}
