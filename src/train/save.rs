//! Writing a trained classifier as a Hugging Face folder, and the training checkpoints.
//!
//! A model folder holds `config.json` (with `architectures`, `id2label` and `label2id`),
//! `model.safetensors` (every parameter under its HF name, in the training dtype: F32 or F64) and
//! the tokenizer files of the folder the model came from. Every file is written under a temporary
//! name in the same folder and renamed into place, so a reader (or a killed run) never sees half a
//! file. A checkpoint is a model folder plus `optimizer.safetensors` (AdamW's moments,
//! `m.<name>` / `v.<name>`) and `trainer_state.json`; it is assembled in a temporary folder and
//! renamed to `checkpoints/epoch-<e>` as a whole.

use super::classifier::Classifier;
use super::optim::{AdamW, Slot};
use crate::io::Weights;
use crate::models::Model;
use crate::{DType, Error, Result, Tensor};
use safetensors::tensor::{Dtype as StDtype, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Tokenizer files copied next to a saved model when the source folder has them.
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
];

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

pub use crate::io::atomic::write_atomic;

/// Little-endian bytes of a tensor and its safetensors dtype.
fn bytes_of(t: &Tensor) -> Result<(StDtype, Vec<u8>)> {
    Ok(match t.dtype() {
        DType::F32 => (
            StDtype::F32,
            t.as_slice::<f32>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            StDtype::F64,
            t.as_slice::<f64>()?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
    })
}

/// A safetensors file of named tensors (sorted by name, as the format requires).
pub fn safetensors_bytes(
    tensors: &[(String, Tensor)],
    meta: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (dt, b) = bytes_of(t)?;
        raw.push((name.clone(), dt, t.shape().to_vec(), b));
    }
    let mut views = Vec::with_capacity(raw.len());
    for (name, dt, shape, b) in &raw {
        let v = TensorView::new(*dt, shape.clone(), b)
            .map_err(|e| Error::Internal(format!("safetensors view of `{name}`: {e}")))?;
        views.push((name.clone(), v));
    }
    safetensors::tensor::serialize(views, meta)
        .map_err(|e| Error::Internal(format!("safetensors serialisation: {e}")))
}

/// Writes `clf` as a Hugging Face folder in `dir` (created if needed).
pub fn save_model(dir: &Path, clf: &Classifier) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let params: Vec<(String, Tensor)> = clf
        .model
        .parameters()
        .into_iter()
        .map(|p| (p.name, p.value))
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    write_atomic(
        &dir.join("model.safetensors"),
        &safetensors_bytes(&params, Some(meta))?,
    )?;
    let mut cfg = clf.config.clone();
    cfg["torch_dtype"] = serde_json::json!(match clf.model.dtype() {
        DType::F32 => "float32",
        DType::F64 => "float64",
    });
    let text = serde_json::to_string_pretty(&cfg)
        .map_err(|e| Error::Internal(format!("config.json: {e}")))?;
    write_atomic(&dir.join("config.json"), text.as_bytes())?;
    for f in TOKENIZER_FILES {
        let src = clf.source.join(f);
        if src.is_file() && clf.source != dir {
            let b = std::fs::read(&src).map_err(io_err(&src))?;
            write_atomic(&dir.join(f), &b)?;
        }
    }
    Ok(())
}

/// What `trainer_state.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    /// Epochs completed (1-based count).
    pub epoch: usize,
    /// Optimizer steps taken.
    pub global_step: u64,
    pub seed: u64,
    pub dtype: String,
    pub labels: Vec<String>,
    /// The options the run was started with.
    pub options: serde_json::Value,
    /// One record per epoch so far.
    pub history: Vec<serde_json::Value>,
}

/// Writes checkpoint `out/checkpoints/epoch-<e>` atomically (a temporary folder renamed into
/// place), then removes older epochs' checkpoints. Returns the checkpoint folder.
pub fn save_checkpoint(
    out: &Path,
    clf: &Classifier,
    opt: &AdamW,
    state: &TrainerState,
) -> Result<PathBuf> {
    let root = out.join("checkpoints");
    std::fs::create_dir_all(&root).map_err(io_err(&root))?;
    let tmp = root.join(format!(".tmp-epoch-{}-{}", state.epoch, std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    save_model(&tmp, clf)?;
    let mut moments = Vec::with_capacity(2 * opt.slots.len());
    for s in &opt.slots {
        moments.push((format!("m.{}", s.name), s.m.clone()));
        moments.push((format!("v.{}", s.name), s.v.clone()));
    }
    let mut meta = HashMap::new();
    meta.insert("step".to_string(), opt.step.to_string());
    meta.insert(
        "config".to_string(),
        serde_json::to_string(&opt.cfg).map_err(|e| Error::Internal(e.to_string()))?,
    );
    write_atomic(
        &tmp.join("optimizer.safetensors"),
        &safetensors_bytes(&moments, Some(meta))?,
    )?;
    let st = serde_json::to_string_pretty(state).map_err(|e| Error::Internal(e.to_string()))?;
    write_atomic(&tmp.join("trainer_state.json"), st.as_bytes())?;
    let dst = root.join(format!("epoch-{}", state.epoch));
    if dst.exists() {
        std::fs::remove_dir_all(&dst).map_err(io_err(&dst))?;
    }
    std::fs::rename(&tmp, &dst).map_err(io_err(&dst))?;
    for (e, p) in checkpoints(out)? {
        if e < state.epoch {
            std::fs::remove_dir_all(&p).map_err(io_err(&p))?;
        }
    }
    Ok(dst)
}

/// Complete checkpoints under `out/checkpoints`, by epoch.
pub fn checkpoints(out: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let root = out.join("checkpoints");
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(&root).map_err(io_err(&root))? {
        let p = e.map_err(io_err(&root))?.path();
        let epoch = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("epoch-"))
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(epoch) = epoch {
            if p.join("trainer_state.json").is_file() {
                v.push((epoch, p));
            }
        }
    }
    v.sort();
    Ok(v)
}

/// Reads a checkpoint's `trainer_state.json`.
pub fn read_state(dir: &Path) -> Result<TrainerState> {
    let p = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
        path: p.display().to_string(),
        detail: format!("malformed trainer state ({e})"),
    })
}

/// Restores AdamW's moments and step count from a checkpoint into `opt` (built over the same
/// parameters, same dtype).
pub fn load_optimizer(dir: &Path, opt: &mut AdamW) -> Result<()> {
    let p = dir.join("optimizer.safetensors");
    let bad = |detail: String| Error::Checkpoint {
        path: p.display().to_string(),
        detail,
    };
    let dtype = opt.slots.first().map(|s| s.m.dtype()).unwrap_or(DType::F32);
    let w = Weights::open(&p, dtype)?;
    let bytes = std::fs::read(&p).map_err(io_err(&p))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let step = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("step"))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("no optimizer step count in the metadata".into()))?;
    let mut slots: Vec<Slot> = Vec::with_capacity(opt.slots.len());
    for s in &opt.slots {
        let get = |k: &str| -> Result<Tensor> {
            let name = format!("{k}.{}", s.name);
            if !w.contains(&name) {
                return Err(bad(format!(
                    "no optimizer state for parameter `{}`",
                    s.name
                )));
            }
            w.get_shaped(&name, s.m.shape())
        };
        slots.push(Slot {
            name: s.name.clone(),
            decay: s.decay,
            m: get("m")?,
            v: get("v")?,
        });
    }
    opt.slots = slots;
    opt.step = step;
    Ok(())
}
