//! Evaluation of a classifier on labelled data: accuracy, mean cross-entropy, per-class
//! precision / recall / F1, the confusion matrix (rows: true class, columns: predicted class).
//! Precision or recall with nothing to count (no prediction of, or no example of, a class) is 0.

use super::data::{batch, Encoded};
use super::loss::{argmax_rows, cross_entropy};
use crate::models::{Hooks, Model};
use crate::{Error, Result};

/// Scores of one class.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Examples of this class.
    pub support: usize,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    /// Examples evaluated.
    pub n: usize,
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    pub labels: Vec<String>,
    pub per_class: Vec<ClassMetrics>,
    pub macro_f1: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Examples cut at the maximum length.
    pub truncated: usize,
    /// Accuracy per reasoning depth, ascending, when the examples have one (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_depth: Vec<DepthAccuracy>,
}

/// Accuracy over the examples of one depth.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DepthAccuracy {
    pub depth: usize,
    pub n: usize,
    pub accuracy: f64,
}

/// Accuracy per depth of the examples that have one, ascending.
pub fn accuracy_by_depth(data: &[Encoded], pred: &[usize]) -> Vec<DepthAccuracy> {
    let mut per: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
    for (e, &p) in data.iter().zip(pred) {
        if let Some(d) = e.depth {
            let c = per.entry(d).or_default();
            c.0 += 1;
            c.1 += usize::from(p == e.label);
        }
    }
    per.into_iter()
        .map(|(depth, (n, right))| DepthAccuracy {
            depth,
            n,
            accuracy: right as f64 / n as f64,
        })
        .collect()
}

/// Per-class scores, macro F1 and the confusion matrix of predictions against gold labels.
pub fn scores(
    labels: &[String],
    gold: &[usize],
    pred: &[usize],
) -> (Vec<ClassMetrics>, f64, Vec<Vec<usize>>) {
    let k = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&g, &p) in gold.iter().zip(pred) {
        confusion[g][p] += 1;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|c| {
            let tp = confusion[c][c];
            let support: usize = confusion[c].iter().sum();
            let predicted: usize = confusion.iter().map(|r| r[c]).sum();
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            ClassMetrics {
                label: labels[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let macro_f1 = per_class.iter().map(|c| c.f1).sum::<f64>() / k.max(1) as f64;
    (per_class, macro_f1, confusion)
}

/// Predicted classes and the summed cross-entropy of `data`, in batches of `batch_size`, without
/// dropout.
pub fn predict(
    model: &dyn Model,
    data: &[Encoded],
    batch_size: usize,
    pad_id: usize,
) -> Result<(Vec<usize>, f64)> {
    let mut pred = Vec::with_capacity(data.len());
    let mut loss_sum = 0.0;
    for chunk in data.chunks(batch_size.max(1)) {
        let rows: Vec<&Encoded> = chunk.iter().collect();
        let (x, y) = batch(&rows, pad_id);
        let out = model.forward(&x, &mut Hooks::new())?;
        let logits = out.logits.ok_or_else(|| {
            Error::TargetMismatch(
                "evaluation needs a classifier (this model has no classification head)".into(),
            )
        })?;
        loss_sum += cross_entropy(&logits, &y)?.value().to_scalar()? * y.len() as f64;
        pred.extend(argmax_rows(logits.value())?);
    }
    Ok((pred, loss_sum))
}

/// Evaluates `model` on encoded, labelled data.
pub fn evaluate(
    model: &dyn Model,
    labels: &[String],
    data: &[Encoded],
    batch_size: usize,
    pad_id: usize,
    truncated: usize,
) -> Result<EvalReport> {
    if data.is_empty() {
        return Err(Error::Empty("the evaluation data"));
    }
    let (pred, loss_sum) = predict(model, data, batch_size, pad_id)?;
    let gold: Vec<usize> = data.iter().map(|e| e.label).collect();
    let correct = gold.iter().zip(&pred).filter(|(g, p)| g == p).count();
    let (per_class, macro_f1, confusion) = scores(labels, &gold, &pred);
    Ok(EvalReport {
        n: data.len(),
        accuracy: correct as f64 / data.len() as f64,
        loss: loss_sum / data.len() as f64,
        labels: labels.to_vec(),
        per_class,
        macro_f1,
        confusion,
        truncated,
        by_depth: accuracy_by_depth(data, &pred),
    })
}
