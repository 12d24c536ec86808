//! Reading models: Hugging Face folders (safetensors weights, memory-mapped; `config.json`;
//! `tokenizer.json`) and single GGUF files (`gguf.rs`, served under HF names by `gguf_hf.rs`).

pub mod atomic;
pub mod chat;
pub mod gguf;
pub mod gguf_hf;
pub mod safetensors;
pub mod tokenizer;

pub use self::gguf::{GgmlType, GgufFile, GgufTensorInfo, MetaValue};
pub use self::safetensors::{NamedF32, VarPath, Weights};
pub use chat::{ChatTemplate, Message};
pub use tokenizer::{display_tokens, printable, Encoded, TokenSpelling, Tokenizer};

use crate::{DType, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files of a model: a Hugging Face folder, or one GGUF file (then `config`, `weights` and
/// `tokenizer` all name the `.gguf` file and `dir` is its folder). Model loaders read through
/// [`ModelDir::config_json`], [`ModelDir::weights`] and [`ModelDir::tokenizer`], which work for both.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    /// The parsed GGUF header (parsed once, in `open`), for GGUF models.
    gguf: Option<Arc<GgufFile>>,
}

fn is_gguf_path(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

impl ModelDir {
    /// Opens a model: a `.gguf` file; a folder holding `config.json`, `model.safetensors` and
    /// `tokenizer.json`; or a folder without `config.json` holding exactly one `*.gguf` file.
    pub fn open(dir: &Path) -> Result<ModelDir> {
        if dir.is_file() {
            if is_gguf_path(dir) {
                return ModelDir::open_gguf(dir);
            }
            return Err(Error::NotFound {
                path: dir.display().to_string(),
                what: "model folder or .gguf file".into(),
            });
        }
        if !dir.is_dir() {
            return Err(Error::NotFound {
                path: dir.display().to_string(),
                what: "model folder".into(),
            });
        }
        if !dir.join("config.json").is_file() {
            let ggufs = gguf_files(dir)?;
            match ggufs.len() {
                0 => {}
                1 => return ModelDir::open_gguf(&ggufs[0]),
                _ => {
                    return Err(Error::AmbiguousModel {
                        dir: dir.display().to_string(),
                        candidates: ggufs
                            .iter()
                            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .collect(),
                    });
                }
            }
        }
        let need = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::NotFound {
                    path: dir.display().to_string(),
                    what: name.to_string(),
                })
            }
        };
        Ok(ModelDir {
            dir: dir.to_path_buf(),
            config: need("config.json")?,
            weights: need("model.safetensors")?,
            tokenizer: need("tokenizer.json")?,
            gguf: None,
        })
    }

    fn open_gguf(path: &Path) -> Result<ModelDir> {
        let g = GgufFile::open(path)?;
        // fail early on an architecture we cannot map
        g.architecture()?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(ModelDir {
            dir,
            config: path.to_path_buf(),
            weights: path.to_path_buf(),
            tokenizer: path.to_path_buf(),
            gguf: Some(Arc::new(g)),
        })
    }

    /// True for a model read from a GGUF file.
    pub fn is_gguf(&self) -> bool {
        self.gguf.is_some()
    }

    /// The parsed GGUF file, for GGUF models.
    pub fn gguf(&self) -> Option<&GgufFile> {
        self.gguf.as_deref()
    }

    /// The model config as JSON: `config.json`, or for GGUF the config derived from the metadata
    /// ([`GgufFile::hf_config`]).
    pub fn config_json(&self) -> Result<serde_json::Value> {
        if let Some(g) = &self.gguf {
            return g.hf_config();
        }
        let text = std::fs::read_to_string(&self.config).map_err(|e| Error::Io {
            path: self.config.display().to_string(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Config {
            file: self.config.display().to_string(),
            key: String::new(),
            detail: format!("malformed JSON ({e})"),
        })
    }

    /// The weights under Hugging Face names, converted to `dtype` when read (GGUF tensors are
    /// dequantised here, once).
    pub fn weights(&self, dtype: DType) -> Result<Weights> {
        match &self.gguf {
            Some(g) => g.weights(dtype),
            None => Weights::open(&self.weights, dtype),
        }
    }

    /// The chat template ([`chat`]): `chat_template.jinja` or `chat_template` in
    /// `tokenizer_config.json`, or `tokenizer.chat_template` in the GGUF metadata; `None` when the
    /// model has none.
    pub fn chat_template(&self) -> Result<Option<ChatTemplate>> {
        match &self.gguf {
            Some(g) => Ok(g.chat_template()),
            None => chat::from_hf_folder(&self.dir),
        }
    }

    /// The tokenizer: `tokenizer.json`, or the one described by the GGUF metadata.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        match &self.gguf {
            Some(g) => g.tokenizer(),
            None => Tokenizer::from_file(&self.tokenizer),
        }
    }
}

/// The `*.gguf` files directly inside `dir`, sorted.
fn gguf_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_gguf_path(p))
        .collect();
    v.sort();
    Ok(v)
}

/// Memory-maps a weight file read-only.
pub(crate) fn mmap_read_only(path: &Path) -> Result<memmap2::Mmap> {
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the file is opened read-only and the map is never written; as with any mmap, a
    // concurrent truncation by another process would fault, which we accept for weight files.
    unsafe { memmap2::Mmap::map(&file) }.map_err(io)
}
