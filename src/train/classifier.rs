//! An encoder classifier ready to train: a checkpoint that has a classification head, or a base
//! encoder (e.g. all-MiniLM-L6-v2, a `BertModel`) given a fresh head the way transformers
//! initialises one when a base checkpoint is loaded into `*ForSequenceClassification`: every new
//! Linear weight from normal(0, `initializer_range`), every new bias 0 (seeded by our own
//! generator, [`Rng`]); weights the checkpoint has (BERT's pooler) are kept.
//!
//! | family | head parameters | new when the checkpoint is a base model |
//! |---|---|---|
//! | BERT | `bert.pooler.dense`, `classifier` | `classifier` (and the pooler if absent) |
//! | RoBERTa | `classifier.dense`, `classifier.out_proj` | both |
//! | DistilBERT | `pre_classifier`, `classifier` | both |
//!
//! Backbone tensors of a base checkpoint are renamed under the classifier's prefix (`bert.`,
//! `roberta.`, `distilbert.`), so the saved folder is a Hugging Face classifier checkpoint.

use super::dropout::Dropout;
use super::rng::Rng;
use crate::io::{ModelDir, NamedF32, Weights};
use crate::models::encoder::{Encoder, EncoderConfig, Family};
use crate::models::{decoder, Model};
use crate::{DType, Error, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Stream kind of head initialisation in [`Rng::derive`].
pub const HEAD_STREAM: u64 = 2;

/// A classifier to train or evaluate.
pub struct Classifier {
    pub model: Encoder,
    /// The HF config to save (architectures, `id2label`, `label2id` set).
    pub config: Value,
    /// Class names in index order.
    pub labels: Vec<String>,
    /// Parameters initialised here (empty when the checkpoint had its head).
    pub fresh: Vec<String>,
    /// Training-mode dropout rates from the config.
    pub dropout: Dropout,
    /// The folder it was loaded from (its tokenizer files are copied when saving).
    pub source: PathBuf,
}

fn family_names(f: Family) -> (&'static str, &'static str) {
    match f {
        Family::Bert => ("bert", "BertForSequenceClassification"),
        Family::Roberta => ("roberta", "RobertaForSequenceClassification"),
        Family::DistilBert => ("distilbert", "DistilBertForSequenceClassification"),
    }
}

/// `id2label` / `label2id` objects for `labels`.
fn label_maps(labels: &[String]) -> (Value, Value) {
    let mut id2label = Map::new();
    let mut label2id = Map::new();
    for (i, l) in labels.iter().enumerate() {
        id2label.insert(i.to_string(), json!(l));
        label2id.insert(l.clone(), json!(i));
    }
    (Value::Object(id2label), Value::Object(label2id))
}

/// Checks class names: at least two, none empty, no duplicates.
fn check_labels(labels: &[String]) -> Result<()> {
    if labels.len() < 2 {
        return Err(Error::BadValue {
            name: "labels",
            detail: format!(
                "{} class name(s) given; a classifier needs at least two",
                labels.len()
            ),
        });
    }
    for (i, l) in labels.iter().enumerate() {
        if l.trim().is_empty() {
            return Err(Error::BadValue {
                name: "labels",
                detail: format!("class name {i} is empty"),
            });
        }
        if labels[..i].contains(l) {
            return Err(Error::BadValue {
                name: "labels",
                detail: format!("class name `{l}` appears twice"),
            });
        }
    }
    Ok(())
}

/// Loads `dir` as a classifier in `dtype`. `labels` (class names in index order) are required for
/// a base encoder and must match the head's size for a classifier checkpoint; `seed` chooses a
/// fresh head's initial values.
pub fn load(dir: &Path, labels: Option<&[String]>, seed: u64, dtype: DType) -> Result<Classifier> {
    let md = ModelDir::open(dir)?;
    let mut cfg = md.config_json()?;
    if let Some(arch) = decoder::architecture(&cfg) {
        return Err(Error::UnsupportedArchitecture {
            found: format!("{arch} (training takes encoder classifiers)"),
            supported: crate::models::encoder::SUPPORTED
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
    }
    let ecfg = EncoderConfig::from_hf(&cfg)?;
    let dropout = Dropout::from_config(&cfg, ecfg.family);
    let (prefix, arch) = family_names(ecfg.family);
    if ecfg.classifier {
        let model = Encoder::load(&md, dtype)?;
        let n = model.n_labels().unwrap_or(0);
        let names: Vec<String> = match labels {
            Some(l) => {
                check_labels(l)?;
                if l.len() != n {
                    return Err(Error::Mismatch {
                        what: "class names".into(),
                        detail: format!(
                            "{} given, but the classifier head of {} has {n} classes",
                            l.len(),
                            dir.display()
                        ),
                    });
                }
                l.to_vec()
            }
            None if model.labels().len() == n => model.labels().to_vec(),
            None => (0..n).map(|i| format!("LABEL_{i}")).collect(),
        };
        let (i2l, l2i) = label_maps(&names);
        cfg["id2label"] = i2l;
        cfg["label2id"] = l2i;
        return Ok(Classifier {
            model,
            config: cfg,
            labels: names,
            fresh: Vec::new(),
            dropout,
            source: dir.to_path_buf(),
        });
    }
    let labels = labels.ok_or_else(|| Error::NoLabels {
        model: dir.display().to_string(),
    })?;
    check_labels(labels)?;
    let init_range = cfg
        .get("initializer_range")
        .and_then(Value::as_f64)
        .unwrap_or(0.02);
    let w = md.weights(DType::F32)?;
    let base = Encoder::from_weights(ecfg.clone(), &w)?;
    let mut tensors: Vec<NamedF32> = Vec::new();
    let pre = format!("{prefix}.");
    for p in base.parameters() {
        let name = if p.name.starts_with(&pre) {
            p.name.clone()
        } else {
            format!("{pre}{}", p.name)
        };
        tensors.push((
            name,
            p.shape().to_vec(),
            p.value.as_slice::<f32>()?.to_vec(),
        ));
    }
    let (d, n) = (ecfg.d_model, labels.len());
    // (name, shape) of the head; a BERT pooler the checkpoint has is kept.
    let head: Vec<(String, Vec<usize>)> = match ecfg.family {
        Family::Bert => vec![
            ("bert.pooler.dense".into(), vec![d, d]),
            ("classifier".into(), vec![n, d]),
        ],
        Family::Roberta => vec![
            ("classifier.dense".into(), vec![d, d]),
            ("classifier.out_proj".into(), vec![n, d]),
        ],
        Family::DistilBert => vec![
            ("pre_classifier".into(), vec![d, d]),
            ("classifier".into(), vec![n, d]),
        ],
    };
    let mut fresh = Vec::new();
    for (k, (module, shape)) in head.iter().enumerate() {
        let bare = module.strip_prefix(&pre).unwrap_or(module);
        let stored = [module.as_str(), bare]
            .into_iter()
            .find(|m| w.contains(&format!("{m}.weight")) && w.contains(&format!("{m}.bias")));
        let (wn, bn) = (format!("{module}.weight"), format!("{module}.bias"));
        match stored {
            Some(m) if ecfg.family == Family::Bert => {
                let wt = w.get_shaped(&format!("{m}.weight"), shape)?;
                let bt = w.get_shaped(&format!("{m}.bias"), &shape[..1])?;
                tensors.push((wn, shape.clone(), wt.as_slice::<f32>()?.to_vec()));
                tensors.push((bn, shape[..1].to_vec(), bt.as_slice::<f32>()?.to_vec()));
            }
            _ => {
                let mut rng = Rng::derive(seed, &[HEAD_STREAM, k as u64]);
                let numel: usize = shape.iter().product();
                let wv: Vec<f32> = (0..numel)
                    .map(|_| (rng.normal() * init_range) as f32)
                    .collect();
                tensors.push((wn.clone(), shape.clone(), wv));
                tensors.push((bn.clone(), shape[..1].to_vec(), vec![0.0; shape[0]]));
                fresh.push(wn);
                fresh.push(bn);
            }
        }
    }
    cfg["architectures"] = json!([arch]);
    let (i2l, l2i) = label_maps(labels);
    cfg["id2label"] = i2l;
    cfg["label2id"] = l2i;
    let ccfg = EncoderConfig::from_hf(&cfg)?;
    let cw = Weights::from_f32_tensors(&md.weights, tensors, dtype)?;
    let model = Encoder::from_weights(ccfg, &cw)?;
    Ok(Classifier {
        model,
        config: cfg,
        labels: labels.to_vec(),
        fresh,
        dropout,
        source: dir.to_path_buf(),
    })
}
