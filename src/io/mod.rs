//! Reading model folders: safetensors weights (memory-mapped), `config.json`, `tokenizer.json`.

pub mod safetensors;
pub mod tokenizer;

pub use self::safetensors::{VarPath, Weights};
pub use tokenizer::{Encoded, Tokenizer};

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The files of a Hugging Face model folder.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl ModelDir {
    /// Checks that `dir` holds `config.json`, `model.safetensors` and `tokenizer.json`.
    pub fn open(dir: &Path) -> Result<ModelDir> {
        if !dir.is_dir() {
            return Err(Error::Model(format!(
                "model folder {} not found",
                dir.display()
            )));
        }
        let need = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(Error::Model(format!(
                    "{}: missing {name} in the model folder",
                    dir.display()
                )))
            }
        };
        Ok(ModelDir {
            dir: dir.to_path_buf(),
            config: need("config.json")?,
            weights: need("model.safetensors")?,
            tokenizer: need("tokenizer.json")?,
        })
    }

    /// Parses `config.json` as JSON.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        let text = std::fs::read_to_string(&self.config).map_err(|e| Error::Io {
            path: self.config.display().to_string(),
            source: e,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: malformed JSON ({e})", self.config.display())))
    }
}
