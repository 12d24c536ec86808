//! Cross-entropy with integer labels, as `torch.nn.functional.cross_entropy` (mean over the
//! batch): `L = −(1/b) Σ_r log_softmax(logits)[r, y_r]`. The gradient with respect to the logits
//! is `(softmax − onehot(y)) / b`, recorded on the tape through `log_softmax`.

use crate::{Error, Result, Tensor, Var};

/// Mean cross-entropy of `logits` `[batch, classes]` against `labels` (one class index per row).
pub fn cross_entropy(logits: &Var, labels: &[usize]) -> Result<Var> {
    let shape = logits.shape();
    if shape.len() != 2 || shape[0] != labels.len() {
        return Err(Error::Mismatch {
            what: "cross-entropy labels".into(),
            detail: format!(
                "{} labels for logits of shape {shape:?} (expected [{}, classes])",
                labels.len(),
                labels.len()
            ),
        });
    }
    let (b, n) = (shape[0], shape[1]);
    if b == 0 {
        return Err(Error::Empty("the batch"));
    }
    // −1/b at each row's label: the loss is Σ pick ⊙ log_softmax.
    let mut pick = vec![0.0; b * n];
    for (r, &y) in labels.iter().enumerate() {
        if y >= n {
            return Err(Error::OutOfRange {
                what: "class",
                index: y,
                len: n,
            });
        }
        pick[r * n + y] = -1.0 / b as f64;
    }
    let pick = Var::constant(Tensor::from_f64_on(
        &pick,
        &[b, n],
        logits.dtype(),
        logits.device(),
    )?);
    logits.log_softmax(None)?.mul(&pick)?.sum_all()
}

/// The predicted class of each row of `logits` `[batch, classes]` (the first maximum).
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<usize>> {
    let shape = logits.shape();
    if shape.len() != 2 || shape[1] == 0 {
        return Err(Error::Shape {
            op: "argmax_rows",
            detail: format!("logits of shape {shape:?} are not [batch, classes]"),
        });
    }
    let v = logits.to_vec_f64()?;
    Ok(v.chunks(shape[1])
        .map(|row| {
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect())
}
