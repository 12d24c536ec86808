//! Attribution over data sets: one method over every example of a JSONL file, with the model
//! loaded once, an append-only output that survives `kill -9` and resumes exactly once per id,
//! shards for job arrays (Slurm, Kubernetes Indexed Jobs), a merge that checks the shards cover
//! the input, and a data-set summary ([`summary`]) for the report page.
//!
//! ```no_run
//! use gradpath::batch::{self, BatchOptions, Method};
//! use gradpath::explain::{Explainer, IgOptions, Options};
//! let ex = Explainer::load("models/all-MiniLM-L6-v2", Options::default())?;
//! let mut o = BatchOptions::new(Method::Ig(IgOptions::default()));
//! o.defaults.target.similar_to = Some("A happy sentence.".into());
//! let s = batch::run(&ex, "data.jsonl".as_ref(), "out.jsonl".as_ref(), &o, &mut |_| {})?;
//! println!("{} written, {} skipped", s.written, s.skipped.len());
//! # Ok::<(), gradpath::Error>(())
//! ```
//!
//! - input: [`input`] (one example per line, `id` + `text` + optional per-example targets);
//! - which examples: [`shard`] (FNV-1a 64 of the id modulo the number of shards);
//! - output: [`output`] (one line per example: `id`, `line`, `shard`, `config` (`batch_config`
//!   for LIG, whose report has a `config` of its own) and the method's report JSON,
//!   docs/JSON.md; appended with one write per line; torn tails cut on resume);
//! - [`merge()`]: shard outputs → one file, every id exactly once;
//! - [`summary`]: top tokens, completeness deltas, conductance per layer, head importance, LIG
//!   completeness per layer, neuron conductance, attention entropy per head.
//!
//! **Order.** Examples run in order of token count (then input line): one example's path points
//! fill each forward, so no example is ever padded, and consecutive examples of equal length
//! reuse the buffer pool's buffers, which are kept by exact size. The output is in that order;
//! [`merge()`] restores the input order.

pub mod input;
pub mod merge;
pub mod output;
pub mod shard;
pub mod summary;

pub use input::{read_examples, BadLine, BatchExample};
pub use merge::{merge, Merged};
pub use output::{fingerprint, scan, Appender, Record, Scan};
pub use shard::{fnv1a64, Shard, ShardSource};

use crate::attribution::lig::LigOptions;
use crate::explain::{
    AblateOptions, AttAttrOptions, AttentionOptions, ConductanceOptions, Explainer, IgOptions,
    Input, LayerIgOptions, NeuronOptions, SaliencyOptions, SensitivityOptions, TargetSpec,
    TokenReport,
};
use crate::report::Aggregate;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

/// A method of [`crate::explain`] with its options (the same option structs as the
/// one-sentence methods).
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Ig(IgOptions),
    LayerIg(LayerIgOptions),
    Conductance(ConductanceOptions),
    AttAttr(AttAttrOptions),
    /// Set-to-set layer-wise IG ([`Explainer::lig`]; the example's target is not used).
    Lig(LigOptions),
    Saliency(SaliencyOptions),
    Ablate(AblateOptions),
    Sensitivity(SensitivityOptions),
    Neuron(NeuronOptions),
    /// Attention maps ([`Explainer::attention`]; the example's target is not used).
    Attention(AttentionOptions),
}

impl Method {
    /// The method names the CLI takes (`--method`).
    pub const NAMES: [&'static str; 10] = [
        "ig",
        "layer-ig",
        "conductance",
        "attattr",
        "lig",
        "saliency",
        "ablate",
        "sensitivity",
        "neuron",
        "attention",
    ];

    /// The name of the method as the CLI takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ig(_) => "ig",
            Method::LayerIg(_) => "layer-ig",
            Method::Conductance(_) => "conductance",
            Method::AttAttr(_) => "attattr",
            Method::Lig(_) => "lig",
            Method::Saliency(_) => "saliency",
            Method::Ablate(_) => "ablate",
            Method::Sensitivity(_) => "sensitivity",
            Method::Neuron(_) => "neuron",
            Method::Attention(_) => "attention",
        }
    }

    /// Whether the method scores input tokens (words merge them into words).
    fn has_tokens(&self) -> bool {
        !matches!(
            self,
            Method::Conductance(_) | Method::AttAttr(_) | Method::Lig(_) | Method::Attention(_)
        )
    }

    /// The key of the options fingerprint in an output line: `config`, except for LIG, whose
    /// report has a `config` object of its own (kept as `gradpath lig --json` writes it), where
    /// it is `batch_config`.
    pub fn config_key(&self) -> &'static str {
        match self {
            Method::Lig(_) => "batch_config",
            _ => "config",
        }
    }

    /// Runs the method on one input and returns its report as JSON (docs/JSON.md), with words
    /// merged when asked (LIG: the word-level maps, sub-words summed) and, for ATTATTR without
    /// `keep_maps`, the per-layer `attention` and `attribution` matrices left out.
    pub fn run(
        &self,
        ex: &Explainer,
        input: &Input,
        words: Option<Aggregate>,
        keep_maps: bool,
    ) -> Result<Value> {
        /// The example's line; a NaN or infinity anywhere in it is an error naming its place
        /// (JSON would carry it as `null`), so it is never written silently.
        fn json<T: serde::Serialize>(r: &T) -> Result<Value> {
            if let Some((place, value)) = crate::report::check::scan(r)?.non_finite {
                return Err(Error::NonFinite { place, value });
            }
            serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()))
        }
        fn token<T: TokenReport + serde::Serialize>(
            mut r: T,
            words: Option<Aggregate>,
        ) -> Result<Value> {
            if let Some(how) = words {
                r.merge_words(how)?;
            }
            json(&r)
        }
        match self {
            Method::Ig(o) => token(ex.ig(input, o)?, words),
            Method::LayerIg(o) => token(ex.layer_ig(input, o)?, words),
            Method::Saliency(o) => token(ex.saliency(input, o)?, words),
            Method::Ablate(o) => token(ex.ablate(input, o)?, words),
            Method::Sensitivity(o) => token(ex.sensitivity(input, o)?, words),
            Method::Neuron(o) => token(ex.neuron(input, o)?, words),
            Method::Conductance(o) => json(&ex.conductance(input, o)?),
            Method::Lig(o) => json(&ex.lig(input, o, words.is_some())?),
            Method::Attention(o) => json(&ex.attention(input, o)?),
            Method::AttAttr(o) => {
                let mut v = json(&ex.attattr(input, o)?)?;
                if !keep_maps {
                    if let Some(layers) = v.get_mut("layers").and_then(Value::as_array_mut) {
                        for l in layers.iter_mut().filter_map(Value::as_object_mut) {
                            l.remove("attention");
                            l.remove("attribution");
                        }
                    }
                }
                Ok(v)
            }
        }
    }
}

/// The target and truncation of every example, where its line says nothing else.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExampleDefaults {
    /// The run's target (a line's `target`, `similar_to`, `target_token` and `position`
    /// override the matching fields; the kind is always the run's).
    pub target: TargetSpec,
    /// Cut texts longer than the model's positions instead of failing.
    pub truncate: bool,
    /// Explain the class in the line's `label` when it has no `target` (e.g. the gold label of
    /// a labelled data set, as in ATTATTR's head importance).
    pub label_as_target: bool,
}

impl ExampleDefaults {
    /// The library input of one example.
    pub fn input(&self, e: &BatchExample) -> Input {
        let t = &self.target;
        let class = e
            .target
            .clone()
            .or_else(|| self.label_as_target.then(|| e.label.clone()).flatten())
            .or_else(|| t.class.clone());
        Input {
            text: e.text.clone(),
            target: TargetSpec {
                class,
                similar_to: e.similar_to.clone().or_else(|| t.similar_to.clone()),
                token: e.target_token.clone().or_else(|| t.token.clone()),
                position: e.position.or(t.position),
                kind: t.kind,
                answer: t.answer.clone(),
                contrast: t.contrast.clone(),
            },
            truncate: self.truncate,
            pair: e.text_pair.clone(),
            chat: None,
        }
    }
}

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOptions {
    pub method: Method,
    pub defaults: ExampleDefaults,
    /// Merge sub-word tokens into words (token-level methods; JSON gains `words`).
    pub words: Option<Aggregate>,
    /// ATTATTR: keep the per-layer `[head][query][key]` attention and attribution matrices in
    /// each line (large: layers × heads × tokens² × 2 numbers).
    pub keep_maps: bool,
    /// The examples of this shard only.
    pub shard: Shard,
    /// Continue an existing output: ids already in it are not run again; a torn last line is cut
    /// off and its example run again.
    pub resume: bool,
    /// Replace an existing output (without `resume`).
    pub overwrite: bool,
    /// Skip bad lines and examples the method refuses (listed in [`BatchSummary::skipped`])
    /// instead of failing on the first.
    pub skip_bad: bool,
    /// `fdatasync` after each line.
    pub sync: bool,
}

impl BatchOptions {
    /// `method` over every example, default targets, shard 0/1, no resume, durable appends.
    pub fn new(method: Method) -> BatchOptions {
        BatchOptions {
            method,
            defaults: ExampleDefaults::default(),
            words: None,
            keep_maps: false,
            shard: Shard::default(),
            resume: false,
            overwrite: false,
            skip_bad: false,
            sync: true,
        }
    }

    /// A fingerprint of everything that decides an output line's content apart from the
    /// example and the model: FNV-1a 64 (hex) of the options' debug text. Every line carries
    /// it (`config`); resume and merge refuse lines written with other options.
    pub fn config(&self) -> String {
        let s = format!(
            "{:?}|{:?}|{:?}|{}",
            self.method, self.defaults, self.words, self.keep_maps
        );
        format!("{:016x}", fnv1a64(s.as_bytes()))
    }
}

/// An example that was not run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Skipped {
    pub line: usize,
    pub id: String,
    pub reason: String,
}

/// Progress of a run.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Examples of this run finished (written or skipped).
    pub done: usize,
    /// Examples this run has to do (the shard's, less those already in the output).
    pub total: usize,
}

/// What [`run`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchSummary {
    pub method: &'static str,
    pub shard: String,
    pub config: String,
    /// Non-blank lines of the input.
    pub input_lines: usize,
    /// Lines of the input in this shard (good and bad).
    pub in_shard: usize,
    /// Examples found already done in the output (resume).
    pub already_done: usize,
    /// Bytes of a torn last line cut off on resume.
    pub torn_bytes: u64,
    /// Lines written by this run.
    pub written: usize,
    /// Lines skipped (bad lines and examples the method refused), in input order.
    pub skipped: Vec<Skipped>,
    /// Seconds spent running examples (model loading excluded).
    pub seconds: f64,
}

/// Errors that say an example cannot be run (skipped with `skip_bad`); any other error stops
/// the run.
fn is_example_error(e: &Error) -> bool {
    matches!(
        e,
        Error::TooLong { .. }
            | Error::Empty(_)
            | Error::OutOfRange { .. }
            | Error::Unknown { .. }
            | Error::TargetMismatch(_)
            | Error::NoToken { .. }
            | Error::Tokenizer(_)
            | Error::NonFinite { .. }
    )
}

/// Runs `o.method` over the examples of `input` in shard `o.shard` and appends one JSON line
/// per example to `output` (see the module documentation). Bad lines anywhere in the input are
/// an error before anything runs, unless `skip_bad` (then those of this shard are listed in the
/// summary). `progress` is called after every example.
pub fn run(
    ex: &Explainer,
    input: &Path,
    output: &Path,
    o: &BatchOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<BatchSummary> {
    match (&o.method, o.words) {
        (_, None) => {}
        (Method::Lig(_), Some(Aggregate::Sum)) => {}
        (Method::Lig(_), Some(_)) => {
            return Err(Error::BadValue {
                name: "words",
                detail: "lig's word-level maps sum the sub-words on both axes; other aggregations do not apply".into(),
            })
        }
        (m, Some(_)) if !m.has_tokens() => {
            return Err(Error::BadValue {
                name: "words",
                detail: format!(
                    "{} reports per layer or per head, not per input token; words apply to token-level methods (and lig)",
                    m.name()
                ),
            })
        }
        _ => {}
    }
    let lines = read_examples(input)?;
    let mut skipped = Vec::new();
    let mut todo: Vec<BatchExample> = Vec::new();
    let mut in_shard = 0;
    for l in &lines {
        match l {
            Ok(e) => {
                if o.shard.owns(&e.id) {
                    in_shard += 1;
                    todo.push(e.clone());
                }
            }
            Err(b) if !o.skip_bad => return Err(b.error(input)),
            Err(b) => {
                if o.shard.owns(&b.id) {
                    in_shard += 1;
                    skipped.push(Skipped {
                        line: b.line,
                        id: b.id.clone(),
                        reason: b.detail.clone(),
                    });
                }
            }
        }
    }
    let config = o.config();
    let (mut out, found) = Appender::open(output, o.resume, o.overwrite, o.sync)?;
    let ids: HashSet<&str> = todo.iter().map(|e| e.id.as_str()).collect();
    let mut done: HashSet<String> = HashSet::new();
    for r in &found.records {
        let fail = |detail: String| Error::Checkpoint {
            path: output.display().to_string(),
            detail,
        };
        if !ids.contains(r.id.as_str()) {
            return Err(fail(format!(
                "holds id {:?}, which is not an example of this shard ({}) of {}",
                r.id,
                o.shard,
                input.display()
            )));
        }
        let v: Value = serde_json::from_str(&r.json).map_err(|e| Error::Internal(e.to_string()))?;
        let theirs = output::fingerprint(&v);
        if theirs != Some(config.as_str()) {
            return Err(fail(format!(
                "id {:?} was written by a run with other options (config {} here, {} there)",
                r.id,
                config,
                theirs.unwrap_or("none")
            )));
        }
        if !done.insert(r.id.clone()) {
            return Err(fail(format!("holds id {:?} twice", r.id)));
        }
    }
    todo.retain(|e| !done.contains(&e.id));
    // Bucket by length: token count, then line.
    let mut keyed: Vec<(usize, BatchExample)> = todo
        .into_iter()
        .map(|e| {
            let n = crate::explain::encode(
                ex.tokenizer(),
                &e.text,
                e.text_pair.as_deref(),
                usize::MAX,
                false,
            )
            .map(|x| x.len())
            .unwrap_or(0);
            (n, e)
        })
        .collect();
    keyed.sort_by_key(|(n, e)| (*n, e.line));
    let total = keyed.len();
    let started = Instant::now();
    let mut written = 0;
    let shard = o.shard.to_string();
    for (k, (_, e)) in keyed.iter().enumerate() {
        let inp = o.defaults.input(e);
        match o.method.run(ex, &inp, o.words, o.keep_maps) {
            Ok(mut v) => {
                if let Some(m) = v.as_object_mut() {
                    m.insert("id".into(), Value::String(e.id.clone()));
                    m.insert("line".into(), Value::from(e.line));
                    m.insert("shard".into(), Value::String(shard.clone()));
                    m.insert(o.method.config_key().into(), Value::String(config.clone()));
                }
                out.append(&v)?;
                written += 1;
            }
            Err(err) if is_example_error(&err) && o.skip_bad => skipped.push(Skipped {
                line: e.line,
                id: e.id.clone(),
                reason: err.to_string(),
            }),
            Err(err) if is_example_error(&err) => {
                return Err(Error::BadExample {
                    file: input.display().to_string(),
                    line: e.line,
                    id: Some(e.id.clone()),
                    detail: err.to_string(),
                    cause: Some(Box::new(err)),
                })
            }
            Err(err) => return Err(err),
        }
        progress(Progress { done: k + 1, total });
    }
    skipped.sort_by_key(|s| s.line);
    Ok(BatchSummary {
        method: o.method.name(),
        shard,
        config,
        input_lines: lines.len(),
        in_shard,
        already_done: done.len(),
        torn_bytes: found.torn_bytes,
        written,
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}
