//! The numbers of `gradpath compare`: entropy, negative share, late-layer share, peak layer, and
//! the mean/median/min/max summary of a scalar over examples.

use super::*;

/// The first late layer of `n_layers`: ⌈L/2⌉ (layers l ≥ L/2, counted from 0).
pub fn late_from(n_layers: usize) -> usize {
    n_layers.div_ceil(2)
}

/// H(p) / ln n with p = |a| / Σ|a|: 1 when every value has the same magnitude, 0 when one holds
/// everything; `None` for fewer than two values or all zero.
pub fn normalised_entropy(a: &[f64]) -> Option<f64> {
    let s: f64 = a.iter().map(|x| x.abs()).sum();
    if a.len() < 2 || s <= 0.0 {
        return None;
    }
    let h: f64 = a
        .iter()
        .map(|x| x.abs() / s)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    Some(h / (a.len() as f64).ln())
}

/// Σ_{a<0} |a| / Σ |a|; `None` when every value is 0.
pub fn negative_share(a: &[f64]) -> Option<f64> {
    let s: f64 = a.iter().map(|x| x.abs()).sum();
    (s > 0.0).then(|| a.iter().filter(|&&x| x < 0.0).map(|x| -x).sum::<f64>() / s)
}

/// Σ_{l ≥ L/2} |c_l| / Σ_l |c_l| ([`late_from`]); `None` when every value is 0.
pub fn late_share(c: &[f64]) -> Option<f64> {
    let s: f64 = c.iter().map(|x| x.abs()).sum();
    (s > 0.0).then(|| c[late_from(c.len())..].iter().map(|x| x.abs()).sum::<f64>() / s)
}

/// argmax_l |c_l| (the first on ties); `None` when every value is 0.
pub fn peak_layer(c: &[f64]) -> Option<usize> {
    let m: Vec<f64> = c.iter().map(|x| x.abs()).collect();
    m.iter().any(|&x| x > 0.0).then(|| argmax(&m))
}

/// `v` over its L2 norm (zeros stay zeros).
pub(super) fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter()
        .map(|x| if n > 0.0 { x / n } else { 0.0 })
        .collect()
}

/// Count, mean, median, min and max of the values that exist (`None` where there are none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    pub n: usize,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Stat {
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Stat {
        let mut v: Vec<f64> = values.into_iter().flatten().collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Stat {
                n,
                mean: None,
                median: None,
                min: None,
                max: None,
            };
        }
        Stat {
            n,
            mean: Some(v.iter().sum::<f64>() / n as f64),
            median: crate::explain::median(&v),
            min: Some(v[0]),
            max: Some(v[n - 1]),
        }
    }
}

/// tuned − base of a [`Stat`]'s mean and median.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StatDifference {
    pub mean: Option<f64>,
    pub median: Option<f64>,
}

impl StatDifference {
    pub(super) fn of(base: &Stat, tuned: &Stat) -> StatDifference {
        let d = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        StatDifference {
            mean: d(base.mean, tuned.mean),
            median: d(base.median, tuned.median),
        }
    }
}
