//! One training step (forward with every parameter a tape leaf, cross-entropy, backward, global
//! norm clipping, AdamW at the scheduled learning rate, the new values set on the model) and the
//! epoch loop with evaluation and checkpoints ([`fit`]).

use super::classifier::{self, Classifier};
use super::data::{batch, read_jsonl, Encoded, TextEncoder};
use super::eval::{evaluate, EvalReport};
use super::loss::{argmax_rows, cross_entropy};
use super::optim::{clip_grad_norm, no_decay, AdamW, AdamWConfig, LinearSchedule};
use super::rng::Rng;
use super::save::{self, TrainerState};
use crate::io::ModelDir;
use crate::models::{Batch, Hooks, Leaves, Model};
use crate::{DType, Error, Result, Tape, Tensor};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Stream kind of the per-epoch shuffle in [`Rng::derive`].
pub const SHUFFLE_STREAM: u64 = 3;

/// A classifier with its optimizer and schedule.
pub struct Trainer {
    pub clf: Classifier,
    pub opt: AdamW,
    pub schedule: LinearSchedule,
    /// Global gradient-norm limit (transformers' default 1.0); `f64::INFINITY` turns clipping off.
    pub max_grad_norm: f64,
    /// Seed of the dropout masks.
    pub seed: u64,
    /// Training-mode dropout (the config's rates) on or off.
    pub dropout: bool,
}

/// Loss and gradients of one batch.
pub struct Gradients {
    pub loss: f64,
    pub logits: Tensor,
    /// ∂loss/∂p for every parameter, in registry order.
    pub grads: Vec<Tensor>,
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub loss: f64,
    /// Rows whose prediction (before the step) was right.
    pub correct: usize,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
}

impl Trainer {
    /// AdamW over every parameter of `clf` (biases and norm weights without decay).
    pub fn new(clf: Classifier, adam: AdamWConfig, schedule: LinearSchedule, seed: u64) -> Trainer {
        let opt = AdamW::new(&clf.model.parameters(), adam, |p| !no_decay(p));
        Trainer {
            clf,
            opt,
            schedule,
            max_grad_norm: 1.0,
            seed,
            dropout: true,
        }
    }

    /// Forward (dropout masks of the coming step when dropout is on), mean cross-entropy and
    /// its gradient with respect to every parameter.
    pub fn gradients(&self, x: &Batch, labels: &[usize]) -> Result<Gradients> {
        let m = &self.clf.model;
        let tape = Tape::new();
        let leaves = Leaves::all(&tape, m)?;
        let mut hooks = if self.dropout {
            self.clf.dropout.hooks(
                (m.cfg.n_layers, m.cfg.n_heads, m.cfg.d_model),
                (x.batch, x.pos),
                m.dtype(),
                self.seed,
                self.opt.step,
            )?
        } else {
            Hooks::new()
        };
        let out = m.forward_with_params(x, &mut hooks, &leaves)?;
        let logits = out
            .logits
            .ok_or_else(|| Error::Internal("a classifier forward returned no logits".into()))?;
        let loss = cross_entropy(&logits, labels)?;
        let seed = Tensor::ones(loss.shape(), loss.dtype());
        let grads = tape.grad(&[&loss], &[seed], &leaves.vars())?;
        let grads = grads
            .into_iter()
            .zip(leaves.names())
            .map(|(g, n)| {
                g.ok_or_else(|| Error::Internal(format!("parameter `{n}` got no gradient")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Gradients {
            loss: loss.value().to_scalar()?,
            logits: logits.value().clone(),
            grads,
        })
    }

    /// Clips `grads`, takes one AdamW step at the scheduled rate and sets the new values on the
    /// model. Returns (gradient norm before clipping, learning rate).
    pub fn apply(&mut self, mut grads: Vec<Tensor>) -> Result<(f64, f64)> {
        let norm = if self.max_grad_norm.is_finite() {
            clip_grad_norm(&mut grads, self.max_grad_norm)?
        } else {
            f64::NAN
        };
        let lr = self.opt.cfg.lr * self.schedule.factor(self.opt.step as usize);
        let params = self.clf.model.parameters();
        let new = self.opt.step(&params, &grads, lr)?;
        self.clf.model.set_parameters(new)?;
        Ok((norm, lr))
    }

    /// One training step on a batch.
    pub fn step(&mut self, x: &Batch, labels: &[usize]) -> Result<StepReport> {
        let g = self.gradients(x, labels)?;
        let correct = argmax_rows(&g.logits)?
            .iter()
            .zip(labels)
            .filter(|(p, y)| p == y)
            .count();
        if !g.loss.is_finite() {
            return Err(Error::BadValue {
                name: "lr",
                detail: format!(
                    "the loss became {} at step {}; lower the learning rate",
                    g.loss,
                    self.opt.step + 1
                ),
            });
        }
        let (grad_norm, lr) = self.apply(g.grads)?;
        Ok(StepReport {
            loss: g.loss,
            correct,
            grad_norm,
            lr,
        })
    }
}

/// Settings of a training run (the CLI's defaults).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    pub epochs: usize,
    pub lr: f64,
    pub batch: usize,
    pub max_len: usize,
    /// Warm-up as a fraction of all optimizer steps.
    pub warmup: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub max_grad_norm: f64,
    /// Class names for a base model (required) or a classifier (must match its head).
    pub labels: Option<Vec<String>>,
    #[serde(with = "dtype_name")]
    pub dtype: DType,
    /// Training-mode dropout.
    pub dropout: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 3,
            lr: 2e-5,
            batch: 32,
            max_len: 64,
            warmup: 0.1,
            weight_decay: 0.01,
            seed: 0,
            max_grad_norm: 1.0,
            labels: None,
            dtype: DType::F32,
            dropout: true,
        }
    }
}

impl TrainOptions {
    fn check(&self) -> Result<()> {
        let bad = |name: &'static str, detail: String| Err(Error::BadValue { name, detail });
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("{} is not a positive learning rate", self.lr));
        }
        if !(0.0..=1.0).contains(&self.warmup) {
            return bad(
                "warmup",
                format!("{} is not a fraction in [0, 1]", self.warmup),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("{} is not a non-negative number", self.weight_decay),
            );
        }
        Ok(())
    }
}

/// Progress of [`fit`], for a progress bar.
pub enum Event<'a> {
    /// Before the first step: what will run.
    Start {
        train: usize,
        dev: usize,
        truncated_train: usize,
        truncated_dev: usize,
        steps_per_epoch: usize,
        first_epoch: usize,
        epochs: usize,
        fresh_head: &'a [String],
        labels: &'a [String],
        describe: String,
    },
    /// After each optimizer step: running means over the epoch so far.
    Step {
        epoch: usize,
        step: usize,
        steps_per_epoch: usize,
        loss: f64,
        accuracy: f64,
        examples_per_s: f64,
    },
    /// After each epoch's evaluation and checkpoint.
    Epoch(&'a EpochRecord, &'a Path),
}

/// One epoch's numbers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    /// Accuracy of the predictions made during the epoch (dropout on, before each step).
    pub train_accuracy: f64,
    pub dev: EvalReport,
    /// Training time (without evaluation and checkpoint).
    pub seconds: f64,
    pub examples_per_s: f64,
}

/// What [`fit`] returns (also written to `training_report.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitReport {
    pub out: PathBuf,
    pub labels: Vec<String>,
    pub fresh_head: Vec<String>,
    pub options: TrainOptions,
    pub history: Vec<EpochRecord>,
    /// The epoch the run started from (0 unless resumed).
    pub resumed_from: usize,
}

fn encode(enc: &TextEncoder, path: &Path, labels: &[String]) -> Result<(Vec<Encoded>, usize)> {
    enc.encode(&read_jsonl(path, labels)?)
}

/// What [`fit`] does with an output folder that is not empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// An error ([`Error::OutputExists`]).
    Refuse,
    /// Start again: the folder's checkpoints are removed, its files replaced.
    Overwrite,
    /// Continue from its last complete checkpoint (a fresh start when there is none).
    Resume,
}

/// Fine-tunes the model in `model_dir` on `train` (JSONL), evaluating on `dev` after every
/// epoch, writing a checkpoint per epoch under `out/checkpoints/` and the final model as a
/// Hugging Face folder in `out`. A non-empty `out` is handled as `existing` says (a resume
/// restores the optimizer state too).
pub fn fit(
    model_dir: &Path,
    train: &Path,
    dev: &Path,
    out: &Path,
    opts: &TrainOptions,
    existing: Existing,
    on: &mut dyn FnMut(Event),
) -> Result<FitReport> {
    opts.check()?;
    let (resume, overwrite) = (
        existing == Existing::Resume,
        existing == Existing::Overwrite,
    );
    let occupied = out.is_file()
        || (out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true));
    if occupied && !resume && !overwrite {
        return Err(Error::OutputExists {
            path: out.display().to_string(),
        });
    }
    if out.is_file() {
        return Err(Error::OutputExists {
            path: out.display().to_string(),
        });
    }
    let last = if resume {
        save::checkpoints(out)?.pop()
    } else {
        None
    };
    if !resume && overwrite && out.join("checkpoints").is_dir() {
        let c = out.join("checkpoints");
        std::fs::remove_dir_all(&c).map_err(|e| Error::Io {
            path: c.display().to_string(),
            source: e,
        })?;
    }
    let (clf, state) = match &last {
        Some((_, dir)) => {
            let state = save::read_state(dir)?;
            let ckpt_err = |detail: String| Error::Checkpoint {
                path: dir.display().to_string(),
                detail,
            };
            if state.dtype != opts.dtype.to_string() {
                return Err(ckpt_err(format!(
                    "was trained in {}, not {}",
                    state.dtype, opts.dtype
                )));
            }
            if let Some(l) = &opts.labels {
                if *l != state.labels {
                    return Err(ckpt_err(format!(
                        "has the classes {}, not {}",
                        state.labels.join(","),
                        l.join(",")
                    )));
                }
            }
            let mut clf = classifier::load(dir, Some(&state.labels), opts.seed, opts.dtype)?;
            clf.source = model_dir_tokenizer_source(dir, model_dir);
            (clf, Some(state))
        }
        None => (
            classifier::load(model_dir, opts.labels.as_deref(), opts.seed, opts.dtype)?,
            None,
        ),
    };
    let max = clf.model.max_tokens();
    if opts.max_len > max {
        return Err(Error::BadValue {
            name: "max_len",
            detail: format!("{} is more than the model's {max} positions", opts.max_len),
        });
    }
    let pad = clf.model.pad_token_id().unwrap_or(0);
    let md = ModelDir::open(&clf.source)?;
    let enc = TextEncoder::new(&md.tokenizer, opts.max_len, pad)?;
    let (train_data, truncated_train) = encode(&enc, train, &clf.labels)?;
    let (dev_data, truncated_dev) = encode(&enc, dev, &clf.labels)?;
    let steps_per_epoch = train_data.len().div_ceil(opts.batch);
    let schedule = LinearSchedule::from_ratio(steps_per_epoch * opts.epochs, opts.warmup);
    let adam = AdamWConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    };
    let fresh = clf.fresh.clone();
    let labels = clf.labels.clone();
    let mut tr = Trainer::new(clf, adam, schedule, opts.seed);
    tr.max_grad_norm = opts.max_grad_norm;
    tr.dropout = opts.dropout;
    let (first_epoch, mut history) = match (&last, state) {
        (Some((_, dir)), Some(st)) => {
            save::load_optimizer(dir, &mut tr.opt)?;
            let hist = st
                .history
                .iter()
                .map(|h| serde_json::from_value(h.clone()))
                .collect::<std::result::Result<Vec<EpochRecord>, _>>()
                .map_err(|e| Error::Checkpoint {
                    path: dir.display().to_string(),
                    detail: format!("malformed history ({e})"),
                })?;
            (st.epoch, hist)
        }
        _ => (0, Vec::new()),
    };
    on(Event::Start {
        train: train_data.len(),
        dev: dev_data.len(),
        truncated_train,
        truncated_dev,
        steps_per_epoch,
        first_epoch,
        epochs: opts.epochs,
        fresh_head: &fresh,
        labels: &labels,
        describe: tr.clf.model.describe(),
    });
    for epoch in first_epoch..opts.epochs {
        let mut order: Vec<usize> = (0..train_data.len()).collect();
        Rng::derive(opts.seed, &[SHUFFLE_STREAM, epoch as u64]).shuffle(&mut order);
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (s, idx) in order.chunks(opts.batch).enumerate() {
            let rows: Vec<&Encoded> = idx.iter().map(|&i| &train_data[i]).collect();
            let (x, y) = batch(&rows, pad);
            let r = tr.step(&x, &y)?;
            loss_sum += r.loss * y.len() as f64;
            correct += r.correct;
            seen += y.len();
            on(Event::Step {
                epoch: epoch + 1,
                step: s + 1,
                steps_per_epoch,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                examples_per_s: seen as f64 / start.elapsed().as_secs_f64().max(1e-9),
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let dev_report = evaluate(
            &tr.clf.model,
            &labels,
            &dev_data,
            opts.batch,
            pad,
            truncated_dev,
        )?;
        let rec = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            dev: dev_report,
            seconds,
            examples_per_s: seen as f64 / seconds.max(1e-9),
        };
        history.push(rec.clone());
        let state = TrainerState {
            epoch: epoch + 1,
            global_step: tr.opt.step,
            seed: opts.seed,
            dtype: opts.dtype.to_string(),
            labels: labels.clone(),
            options: serde_json::to_value(opts).map_err(|e| Error::Internal(e.to_string()))?,
            history: history
                .iter()
                .map(serde_json::to_value)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Internal(e.to_string()))?,
        };
        let ck = save::save_checkpoint(out, &tr.clf, &tr.opt, &state)?;
        on(Event::Epoch(&rec, &ck));
    }
    save::save_model(out, &tr.clf)?;
    let report = FitReport {
        out: out.to_path_buf(),
        labels,
        fresh_head: fresh,
        options: opts.clone(),
        history,
        resumed_from: first_epoch,
    };
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
    save::write_atomic(&out.join("training_report.json"), text.as_bytes())?;
    Ok(report)
}

/// A checkpoint holds copies of the tokenizer files; fall back to the original folder for any
/// that were not copied.
fn model_dir_tokenizer_source(ckpt: &Path, model_dir: &Path) -> PathBuf {
    if ckpt.join("tokenizer.json").is_file() {
        ckpt.to_path_buf()
    } else {
        model_dir.to_path_buf()
    }
}

/// `DType` as its name ("f32", "f64") in JSON.
mod dtype_name {
    use crate::DType;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &DType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DType, D::Error> {
        let s = String::deserialize(d)?;
        DType::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Evaluates the classifier in `model_dir` on a JSONL file (labels by index or by the model's
/// class names), texts truncated at `max_len` tokens.
pub fn evaluate_file(
    model_dir: &Path,
    data: &Path,
    batch_size: usize,
    max_len: usize,
    dtype: DType,
) -> Result<EvalReport> {
    let md = ModelDir::open(model_dir)?;
    let cfg = md.config_json()?;
    let is_classifier = crate::models::encoder::EncoderConfig::from_hf(&cfg)
        .map(|c| c.classifier)
        .unwrap_or(false);
    if !is_classifier && crate::models::decoder::architecture(&cfg).is_none() {
        return Err(Error::TargetMismatch(format!(
            "{} has no classification head to evaluate (train one with `gradpath train`)",
            model_dir.display()
        )));
    }
    let clf = classifier::load(model_dir, None, 0, dtype)?;
    if batch_size == 0 {
        return Err(Error::BadValue {
            name: "batch",
            detail: "must be at least 1".into(),
        });
    }
    let max = clf.model.max_tokens();
    if max_len > max {
        return Err(Error::BadValue {
            name: "max_len",
            detail: format!("{max_len} is more than the model's {max} positions"),
        });
    }
    let pad = clf.model.pad_token_id().unwrap_or(0);
    let enc = TextEncoder::new(&md.tokenizer, max_len, pad)?;
    let (rows, truncated) = encode(&enc, data, &clf.labels)?;
    evaluate(&clf.model, &clf.labels, &rows, batch_size, pad, truncated)
}
