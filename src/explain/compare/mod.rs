//! A fine-tuned classifier against its base model (`gradpath compare`, seed 000's study): token
//! Integrated Gradients and the all-layer conductance sweep on both models, for the same class,
//! per example and averaged over a data set.
//!
//! **The two models.** [`Explainer::load_classifier`] loads a classifier checkpoint as it is, and
//! gives a base encoder (e.g. all-MiniLM-L6-v2, a `BertModel`) a fresh classification head the
//! way transformers does when a base checkpoint is loaded into `*ForSequenceClassification`
//! ([`crate::train::classifier::load`]: new Linear weights normal(0, `initializer_range`), zero
//! biases, from gradpath's own generator seeded by `seed`; a pooler the checkpoint has is kept).
//! [`compare`] requires the same vocabulary, the same number of layers and the same number of
//! classes on both sides, and the same tokens for every example.
//!
//! **What is explained.** F is the same class on both models: [`CompareOptions::class`] when
//! given, else the class the *tuned* model predicts for the example (the base model's prediction
//! is reported but does not change F). The kind (logit by default), the baseline (`[PAD]` for
//! every non-special token) and the rules (Gauss–Legendre) are shared.
//!
//! **Per example and model** ([`ModelResult`]):
//!
//! - IG over the word embeddings (`steps` Gauss–Legendre points): the token attributions a_i and
//!   the completeness delta δ = Σ_i a_i − (F(x) − F(x′)) with |δ| / |F(x) − F(x′)|;
//! - the **entropy** of |a| over the n non-special tokens, normalised to [0, 1]:
//!   H(p) / ln n with p_i = |a_i| / Σ_j |a_j| (1: every token carries the same share; 0: one token
//!   carries everything); `None` when n < 2 or every a_i is 0;
//! - the **negative share** Σ_{a_i < 0} |a_i| / Σ_i |a_i| over the same tokens;
//! - layer conductance at every `blocks.{l}.hook_resid_post` from one sweep of
//!   `conductance_steps` + 1 points ([`Explainer::conductance`]), read at the chosen token t
//!   ([`CompareOptions::token`], default the separator `[SEP]` / `</s>`; its first occurrence,
//!   the one between the two segments of a text pair, unless [`Occurrence::Last`]): c_l, the
//!   layer's conductance summed over `d_model` at t, and
//!   - the **normalised curve** c_l / ‖c‖₂, the L2 norm over layers of that token's values (each
//!     example weighs the same in a mean curve);
//!   - the **token share** c_l / ‖c_{l,·}‖₂, the L2 norm over the layer's tokens (Captum's BERT
//!     tutorial's `summarize_attributions`; [`super::TokenCurve::normalised`]);
//!   - the **peak layer** argmax_l |c_l| (= argmax of the normalised curve's magnitude; layers
//!     from 0; the first on ties);
//!   - the **late-layer share** Σ_{l ≥ L/2} |c_l| / Σ_l |c_l| (the last ⌊L/2⌋ layers, l from
//!     ⌈L/2⌉ = [`late_from`]: 3..5 of MiniLM's 6, 6..11 of BERT-base's 12);
//!   - every layer's completeness delta Σ_tokens Cond_l − (F(x) − F(x′)) and its relative size.
//!
//! **Over examples** ([`GroupStats`], for all examples and per `depth`): accuracy where examples
//! have labels, the mean normalised curve (and the mean of its magnitude, and the mean token
//! share), the mean, median, min and max of every scalar, a histogram of the peak layers; and
//! [`GroupDifference`]: tuned − base of each.

mod data;
mod report;
mod stats;

pub use data::*;
pub use report::*;
pub use stats::*;

use super::{
    argmax, encode, ConductanceOptions, Explainer, IgOptions, Input, Options, PathOptions,
    Quadrature, TargetSpec,
};
use crate::attribution::{Baseline, TargetKind};
use crate::integrate::Rule;
use crate::io::Encoded;
use crate::models::HookName;
use crate::train::data::{data_err, text_line};
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// How a classifier was loaded by [`Explainer::load_classifier`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifierInfo {
    /// Class names in index order.
    pub labels: Vec<String>,
    /// Parameters initialised fresh (empty for a classifier checkpoint).
    pub fresh_parameters: Vec<String>,
    /// The seed of the fresh head (`None` when nothing was initialised).
    pub head_seed: Option<u64>,
}

impl Explainer {
    /// Loads `dir` as a sequence classifier: a classifier checkpoint as it is (`labels`, when
    /// given, must match its head), or a base encoder with a fresh classification head seeded by
    /// `seed` (then `labels` is required: [`Error::NoLabels`]), exactly as
    /// [`crate::train::classifier::load`] does for training.
    pub fn load_classifier(
        dir: impl AsRef<Path>,
        labels: Option<&[String]>,
        seed: u64,
        options: Options,
    ) -> Result<Explainer> {
        let path = dir.as_ref().to_path_buf();
        let t0 = Instant::now();
        let clf = crate::train::classifier::load(&path, labels, seed, options.dtype)?;
        let head_seed = (!clf.fresh.is_empty()).then_some(seed);
        let info = ClassifierInfo {
            labels: clf.labels,
            fresh_parameters: clf.fresh,
            head_seed,
        };
        Explainer::assemble(path, Box::new(clf.model), options, t0, Some(info))
    }

    /// How [`Explainer::load_classifier`] loaded the model (`None` after [`Explainer::load`]).
    pub fn classifier_info(&self) -> Option<&ClassifierInfo> {
        self.classifier.as_ref()
    }

    /// Class names: those [`Explainer::load_classifier`] resolved, else the config's `id2label`
    /// (`LABEL_i` where it has none); empty for a model without a classification head.
    fn class_names(&self) -> Vec<String> {
        if let Some(c) = &self.classifier {
            return c.labels.clone();
        }
        let n = self.n_classes().unwrap_or(0);
        let l = self.model().labels();
        if l.len() == n {
            l.to_vec()
        } else {
            (0..n).map(|i| format!("LABEL_{i}")).collect()
        }
    }

    /// The number of classes of the head (`None`: no classification head).
    fn n_classes(&self) -> Option<usize> {
        if self.model().is_decoder() {
            return None;
        }
        self.model()
            .hook_points(2)
            .iter()
            .find(|p| p.name == HookName::Logits)
            .map(|p| p.shape[0])
    }
}

/// Which occurrence of [`CompareOptions::token`] is read when the input has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Occurrence {
    /// The first: for a text pair `[CLS] a [SEP] b [SEP]`, the separator between the segments.
    #[default]
    First,
    /// The last: the closing separator.
    Last,
}

impl Occurrence {
    pub fn parse(s: &str) -> Result<Occurrence> {
        match s {
            "first" => Ok(Occurrence::First),
            "last" => Ok(Occurrence::Last),
            _ => Err(Error::Unknown {
                what: "token occurrence",
                value: s.to_string(),
                valid: vec!["first".into(), "last".into()],
            }),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Occurrence::First => "first",
            Occurrence::Last => "last",
        }
    }
}

/// Options of [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// The token whose conductance curve is read, as printed in the token list, or its index
    /// (used when no token is spelled so). `None`: the tokenizer's separator (`[SEP]`, else
    /// `</s>`).
    pub token: Option<String>,
    /// Which occurrence of `token` (default the first).
    pub occurrence: Occurrence,
    /// Gauss–Legendre points of IG (default 50).
    pub steps: usize,
    /// Conductance: `conductance_steps` + 1 Gauss–Legendre nodes, left-point rule (default 50,
    /// as `gradpath conductance` and Captum).
    pub conductance_steps: usize,
    /// The path start of both methods (default `[PAD]`).
    pub baseline: Baseline,
    /// The class explained on both models, an index or a label of the tuned model (default: the
    /// tuned model's predicted class, per example).
    pub class: Option<String>,
    /// Logit (default), probability or log-probability of the class.
    pub kind: TargetKind,
    /// Longest input in tokens: longer examples are truncated as transformers'
    /// `truncation=True` (longest segment first, special tokens kept), as `gradpath train` and
    /// `eval` do. Default: the models' positions.
    pub max_len: Option<usize>,
    /// Skip examples that cannot be run (the token is missing, the tokenizers disagree, a
    /// non-finite result) and list them in [`CompareReport::skipped`], instead of failing.
    pub skip_bad: bool,
}

impl Default for CompareOptions {
    fn default() -> CompareOptions {
        CompareOptions {
            token: None,
            occurrence: Occurrence::First,
            steps: 50,
            conductance_steps: 50,
            baseline: Baseline::Pad,
            class: None,
            kind: TargetKind::Logit,
            max_len: None,
            skip_bad: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// An example checked against both models, ready to run.
struct Ready<'a> {
    example: &'a CompareExample,
    text: String,
    pair: Option<String>,
    truncated: bool,
    encoded: Encoded,
    display: Vec<String>,
    token_index: usize,
}

/// [`compare_with_progress`] without a progress callback.
pub fn compare(
    base: &Explainer,
    tuned: &Explainer,
    examples: &[CompareExample],
    o: &CompareOptions,
) -> Result<CompareReport> {
    compare_with_progress(base, tuned, examples, o, &mut |_, _| {})
}

fn mismatch(detail: String) -> Error {
    Error::Mismatch {
        what: "models".into(),
        detail,
    }
}

/// Checks that the two models can be compared; returns the class names and the layer count.
fn check_models(base: &Explainer, tuned: &Explainer) -> Result<(Vec<String>, usize)> {
    for (name, ex) in [("base", base), ("tuned", tuned)] {
        if ex.n_classes().is_none() {
            return Err(Error::TargetMismatch(format!(
                "the {name} model ({}) has no classification head: compare explains a class on two sequence classifiers (Explainer::load_classifier gives a base encoder a fresh head)",
                ex.path().display()
            )));
        }
    }
    if !base.tokenizer().same_vocabulary(tuned.tokenizer()) {
        return Err(Error::Mismatch {
            what: "tokenizers".into(),
            detail: format!(
                "{} ({} tokens) and {} ({} tokens) have different vocabularies; compare needs the tokenizer the tuned model was fine-tuned with",
                base.path().display(),
                base.tokenizer().vocab_size(),
                tuned.path().display(),
                tuned.tokenizer().vocab_size()
            ),
        });
    }
    let (nb, nt) = (base.n_classes(), tuned.n_classes());
    if nb != nt {
        return Err(mismatch(format!(
            "the base model has {} classes and the tuned model {}",
            nb.unwrap_or(0),
            nt.unwrap_or(0)
        )));
    }
    let (lb, lt) = (base.model().n_layers(), tuned.model().n_layers());
    if lb != lt {
        return Err(mismatch(format!(
            "the base model has {lb} layers and the tuned model {lt}; their conductance curves cannot be compared layer by layer"
        )));
    }
    Ok((tuned.class_names(), lt))
}

/// Encodes an example for both models (truncated at `max_len`), checks they agree and finds
/// the token.
fn ready<'a>(
    e: &'a CompareExample,
    base: &Explainer,
    tuned: &Explainer,
    token: &str,
    o: &CompareOptions,
    max_len: usize,
) -> Result<Ready<'a>> {
    let tok = tuned.tokenizer();
    let (mut text, mut pair) = (e.text.clone(), e.pair.clone());
    let mut enc = encode(tok, &text, pair.as_deref(), usize::MAX, false)?;
    let mut truncated = false;
    if enc.len() > max_len {
        let (a, b, ids) = tok
            .truncation_cut(&text, pair.as_deref(), max_len)?
            .ok_or_else(|| Error::Internal("truncation kept every token".into()))?;
        text = text.get(..a).unwrap_or(&text).to_string();
        pair = pair.map(|p| {
            let end = b.unwrap_or(p.len());
            p.get(..end).unwrap_or(&p).to_string()
        });
        enc = encode(tok, &text, pair.as_deref(), max_len, false)?;
        if enc.ids != ids {
            return Err(Error::Internal(format!(
                "the text cut after its last kept token does not tokenize to the {max_len} tokens truncation kept ({} tokens)",
                enc.len()
            )));
        }
        truncated = true;
    }
    let eb = encode(base.tokenizer(), &text, pair.as_deref(), usize::MAX, false)?;
    if eb.ids != enc.ids || eb.type_ids != enc.type_ids {
        return Err(Error::Mismatch {
            what: "tokenizers".into(),
            detail: format!(
                "the two models tokenize the example differently ({} and {} tokens)",
                eb.len(),
                enc.len()
            ),
        });
    }
    let hits: Vec<usize> = (0..enc.len()).filter(|&i| enc.tokens[i] == token).collect();
    let hit = match o.occurrence {
        Occurrence::First => hits.first(),
        Occurrence::Last => hits.last(),
    };
    let token_index = match (hit, token.parse::<usize>()) {
        (Some(&i), _) => i,
        (None, Ok(i)) if i < enc.len() => i,
        (None, Ok(i)) => {
            return Err(Error::OutOfRange {
                what: "token",
                index: i,
                len: enc.len(),
            })
        }
        (None, Err(_)) => {
            return Err(Error::Unknown {
                what: "token",
                value: token.to_string(),
                valid: enc.tokens.clone(),
            })
        }
    };
    let display = tok.display_tokens(&enc.tokens, &enc.special);
    Ok(Ready {
        example: e,
        text,
        pair,
        truncated,
        encoded: enc,
        display,
        token_index,
    })
}

fn logits(ex: &Explainer, e: &Encoded) -> Result<Vec<f64>> {
    ex.forward(e)?
        .logits
        .ok_or_else(|| Error::Internal("no logits".into()))?
        .value()
        .to_vec_f64()
}

/// IG and conductance of `class` on one model.
fn run_model(
    ex: &Explainer,
    r: &Ready,
    class: usize,
    logits: Vec<f64>,
    labels: &[String],
    o: &CompareOptions,
) -> Result<ModelResult> {
    let input = Input {
        text: r.text.clone(),
        target: TargetSpec {
            class: Some(class.to_string()),
            kind: o.kind,
            ..TargetSpec::default()
        },
        truncate: false,
        pair: r.pair.clone(),
        chat: None,
    };
    let path = |steps| PathOptions {
        baseline: o.baseline.clone(),
        quadrature: Quadrature {
            rule: Rule::GaussLegendre,
            steps,
        },
    };
    let ig = ex.ig(
        &input,
        &IgOptions {
            path: path(o.steps),
            adaptive: None,
        },
    )?;
    let cond = ex.conductance(
        &input,
        &ConductanceOptions {
            path: path(o.conductance_steps),
            ..ConductanceOptions::default()
        },
    )?;
    let n = r.encoded.len();
    if ig.header.ids != r.encoded.ids
        || cond.header.ids != r.encoded.ids
        || cond.layers.iter().any(|l| l.attributions.len() != n)
    {
        return Err(Error::Internal(
            "the methods saw other tokens than the comparison".into(),
        ));
    }
    let content: Vec<f64> = ig
        .attributions
        .iter()
        .zip(&r.encoded.special)
        .filter(|(_, &s)| !s)
        .map(|(a, _)| *a)
        .collect();
    let t = r.token_index;
    let values: Vec<f64> = cond.layers.iter().map(|l| l.attributions[t]).collect();
    let token_share = cond
        .layers
        .iter()
        .map(|l| {
            let norm = l.attributions.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                l.attributions[t] / norm
            } else {
                0.0
            }
        })
        .collect();
    let missing = || Error::Internal("conductance without a completeness delta".into());
    let layer_deltas = cond
        .layers
        .iter()
        .map(|l| l.delta.ok_or_else(missing))
        .collect::<Result<Vec<f64>>>()?;
    let layer_relative_deltas = cond
        .layers
        .iter()
        .map(|l| l.relative_delta.ok_or_else(missing))
        .collect::<Result<Vec<f64>>>()?;
    let predicted = argmax(&logits);
    Ok(ModelResult {
        predicted,
        predicted_label: labels.get(predicted).cloned(),
        correct: r.example.label.map(|l| l == predicted),
        logits,
        ig: IgSummary {
            entropy: normalised_entropy(&content),
            negative_share: negative_share(&content),
            attributions: ig.attributions,
            f_input: ig.f_input,
            f_baseline: ig.f_baseline,
            delta: ig.delta,
            relative_delta: ig.relative_delta,
        },
        conductance: ConductanceCurve {
            normalised: unit(&values),
            token_share,
            peak_layer: peak_layer(&values),
            late_share: late_share(&values),
            layer_totals: cond.layers.iter().map(|l| l.total).collect(),
            worst_relative_delta: layer_relative_deltas.iter().copied().fold(0.0, f64::max),
            layer_deltas,
            layer_relative_deltas,
            values,
        },
    })
}

/// Both models on one example.
fn run_example(
    base: &Explainer,
    tuned: &Explainer,
    r: &Ready,
    fixed: Option<usize>,
    labels: &[String],
    o: &CompareOptions,
) -> Result<ExampleComparison> {
    let lt = logits(tuned, &r.encoded)?;
    let lb = logits(base, &r.encoded)?;
    let class = fixed.unwrap_or_else(|| argmax(&lt));
    let e = r.example;
    Ok(ExampleComparison {
        id: e.id.clone(),
        text: r.text.clone(),
        pair: r.pair.clone(),
        truncated: r.truncated,
        label: e.label,
        label_name: e.label.and_then(|l| labels.get(l).cloned()),
        depth: e.depth,
        tokens: r.encoded.tokens.clone(),
        tokens_display: r.display.clone(),
        special: r.encoded.special.clone(),
        token_index: r.token_index,
        class,
        class_label: labels.get(class).cloned(),
        base: run_model(base, r, class, lb, labels, o)?,
        tuned: run_model(tuned, r, class, lt, labels, o)?,
    })
}

/// A failed example: named (for data) and either an error or a skip.
fn fail(e: &CompareExample, err: Error) -> Error {
    match &e.origin {
        Some((file, line)) => Error::BadExample {
            file: file.clone(),
            line: *line,
            id: Some(e.id.clone()),
            detail: err.to_string(),
            cause: Some(Box::new(err)),
        },
        None => err,
    }
}

/// Runs IG and the all-layer conductance sweep of the same class on both models for every
/// example (see the module docs for every number); `progress(done, total)` after each example.
pub fn compare_with_progress(
    base: &Explainer,
    tuned: &Explainer,
    examples: &[CompareExample],
    o: &CompareOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CompareReport> {
    let started = Instant::now();
    for (name, steps) in [
        ("steps", o.steps),
        ("conductance_steps", o.conductance_steps),
    ] {
        if steps == 0 {
            return Err(Error::BadValue {
                name,
                detail: "must be at least 1".into(),
            });
        }
    }
    if examples.is_empty() {
        return Err(Error::Empty("the list of examples"));
    }
    let (labels, n_layers) = check_models(base, tuned)?;
    let positions = base.model().max_tokens().min(tuned.model().max_tokens());
    let max_len = match o.max_len {
        None => positions,
        Some(m) if m > positions => {
            return Err(Error::BadValue {
                name: "max_len",
                detail: format!("{m} is more than the models' {positions} positions"),
            })
        }
        Some(m) if m < 4 => {
            return Err(Error::BadValue {
                name: "max_len",
                detail: format!("{m} tokens leave no room for text (at least 4)"),
            })
        }
        Some(m) => m,
    };
    let fixed = match &o.class {
        None => None,
        Some(c) => Some(match c.parse::<usize>() {
            Ok(i) if i < labels.len() => i,
            Ok(i) => {
                return Err(Error::OutOfRange {
                    what: "class",
                    index: i,
                    len: labels.len(),
                })
            }
            Err(_) => labels
                .iter()
                .position(|l| l == c)
                .ok_or_else(|| Error::Unknown {
                    what: "class label",
                    value: c.clone(),
                    valid: labels.clone(),
                })?,
        }),
    };
    let token = match &o.token {
        Some(t) => t.clone(),
        None => {
            tuned
                .tokenizer()
                .find_token(&["[SEP]", "</s>"])
                .ok_or(Error::NoToken {
                    role: "separator ([SEP] or </s>)",
                    owner: "tokenizer",
                })?
                .0
        }
    };
    // Every example is checked before any is run: a bad one fails in seconds, not after hours.
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut skip_or_fail = |e: &CompareExample, err: Error| -> Result<()> {
        if !o.skip_bad {
            return Err(fail(e, err));
        }
        skipped.push(Skipped {
            id: e.id.clone(),
            line: e.origin.as_ref().map(|x| x.1),
            detail: err.to_string(),
        });
        Ok(())
    };
    let mut todo: Vec<Ready> = Vec::new();
    for e in examples {
        match ready(e, base, tuned, &token, o, max_len) {
            Ok(r) => todo.push(r),
            Err(err) => skip_or_fail(e, err)?,
        }
    }
    let mut out: Vec<ExampleComparison> = Vec::new();
    let total = todo.len();
    for (k, r) in todo.iter().enumerate() {
        match run_example(base, tuned, r, fixed, &labels, o).and_then(|x| {
            crate::report::check::scan(&x)?
                .non_finite
                .map_or(Ok(x), |(place, value)| {
                    Err(Error::NonFinite { place, value })
                })
        }) {
            Ok(x) => out.push(x),
            Err(err) => skip_or_fail(r.example, err)?,
        }
        progress(k + 1, total);
    }
    if out.is_empty() {
        return Err(Error::Empty("the list of examples left after skipping"));
    }
    let summary = GroupComparison::of(&out.iter().collect::<Vec<_>>(), n_layers);
    let mut depths: BTreeMap<usize, Vec<&ExampleComparison>> = BTreeMap::new();
    for x in &out {
        if let Some(d) = x.depth {
            depths.entry(d).or_default().push(x);
        }
    }
    let by_depth = depths
        .into_iter()
        .map(|(depth, v)| DepthComparison {
            depth,
            group: GroupComparison::of(&v, n_layers),
        })
        .collect();
    let truncated = out.iter().filter(|x| x.truncated).count();
    let warnings = warnings(&out, truncated, max_len, o.conductance_steps);
    let info = |ex: &Explainer| ModelInfo {
        path: ex.path().display().to_string(),
        description: ex.model().describe(),
        fresh_parameters: ex
            .classifier_info()
            .map(|c| c.fresh_parameters.clone())
            .unwrap_or_default(),
        head_seed: ex.classifier_info().and_then(|c| c.head_seed),
        load_s: ex.load_seconds(),
    };
    Ok(CompareReport {
        method: "compare",
        gradpath_version: env!("CARGO_PKG_VERSION"),
        base: info(base),
        tuned: info(tuned),
        labels,
        n_layers,
        late_from: late_from(n_layers),
        at: "hook_resid_post",
        token,
        occurrence: o.occurrence.name(),
        class: o.class.clone(),
        kind: o.kind.name(),
        baseline: o.baseline.name(),
        quadrature: Rule::GaussLegendre.name(),
        steps: o.steps,
        conductance_steps: o.conductance_steps,
        max_len,
        dtype: tuned.options().dtype.to_string(),
        truncated,
        examples: out,
        summary,
        by_depth,
        skipped,
        warnings,
        timing: CompareTiming {
            load_s: base.load_seconds() + tuned.load_seconds(),
            compare_s: started.elapsed().as_secs_f64(),
        },
    })
}

/// Completeness deltas above 1 % (per model and method) and truncation, one line each. The
/// conductance line says how many steps the worst example needs at a 1/steps decay.
fn warnings(
    out: &[ExampleComparison],
    truncated: usize,
    max_len: usize,
    conductance_steps: usize,
) -> Vec<String> {
    let mut w = Vec::new();
    let n = out.len();
    for (name, pick) in [
        (
            "base",
            (|x: &ExampleComparison| &x.base) as fn(&ExampleComparison) -> &ModelResult,
        ),
        ("tuned", |x: &ExampleComparison| &x.tuned),
    ] {
        let ig: Vec<f64> = out.iter().map(|x| pick(x).ig.relative_delta).collect();
        let bad = ig.iter().filter(|&&d| d > 0.01).count();
        if bad > 0 {
            w.push(format!(
                "{name}: IG's relative completeness delta is above 1 % on {bad} of {n} examples (worst {:.3}); raise --steps",
                ig.iter().copied().fold(0.0, f64::max)
            ));
        }
        let c: Vec<f64> = out
            .iter()
            .map(|x| pick(x).conductance.worst_relative_delta)
            .collect();
        let bad = c.iter().filter(|&&d| d > 0.01).count();
        if bad > 0 {
            let worst = c.iter().copied().fold(0.0, f64::max);
            // First order: the delta falls like 1/steps, so 1 % needs about steps · worst / 0.01.
            let need = ((conductance_steps as f64 * worst / 0.01 / 100.0).ceil() * 100.0) as usize;
            w.push(format!(
                "{name}: a layer's relative conductance completeness delta is above 1 % on {bad} of {n} examples (worst {worst:.3} at --conductance-steps {conductance_steps}); conductance is a first-order rule whose delta falls like 1/steps, so the worst example needs about {need} steps"
            ));
        }
    }
    if truncated > 0 {
        w.push(format!(
            "{truncated} of {n} examples were longer than {max_len} tokens and were truncated (longest segment first, as transformers' truncation=True)"
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas() {
        // equal magnitudes: entropy 1; one token: 0
        assert_eq!(normalised_entropy(&[1.0, -1.0, 1.0, -1.0]), Some(1.0));
        assert_eq!(normalised_entropy(&[0.0, 2.0, 0.0]), Some(0.0));
        assert_eq!(normalised_entropy(&[0.0, 0.0]), None);
        assert_eq!(normalised_entropy(&[3.0]), None);
        // p = (1/4, 3/4): H = −(¼ ln ¼ + ¾ ln ¾) / ln 2
        let h = -(0.25f64 * 0.25f64.ln() + 0.75 * 0.75f64.ln()) / 2f64.ln();
        assert_eq!(normalised_entropy(&[1.0, -3.0]), Some(h));
        assert_eq!(negative_share(&[1.0, -3.0]), Some(0.75));
        assert_eq!(negative_share(&[0.0, 0.0]), None);
        assert_eq!(late_from(6), 3);
        assert_eq!(late_from(5), 3);
        assert_eq!(late_from(2), 1);
        assert_eq!(late_share(&[1.0, -1.0, 2.0, 0.0, -4.0, 0.0]), Some(0.5));
        assert_eq!(late_share(&[0.0; 4]), None);
        assert_eq!(peak_layer(&[0.5, -2.0, 2.0]), Some(1));
        assert_eq!(peak_layer(&[0.0, 0.0]), None);
        let s = Stat::of([Some(3.0), None, Some(1.0), Some(2.0), Some(10.0)]);
        assert_eq!(
            (s.n, s.mean, s.median, s.min, s.max),
            (4, Some(4.0), Some(2.5), Some(1.0), Some(10.0))
        );
        assert_eq!(Stat::of([None]).mean, None);
    }
}
