//! The terminal table: token, attribution, and a signed bar.

use super::TokenScores;

/// Renders `scores` as rows `token  value  bar` (bars scaled to the largest |value|; `+` supports
/// the target, `-` opposes it).
pub fn render(s: &TokenScores, width: usize) -> String {
    let max = s.scores.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let name_w = s
        .labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 24);
    let mut out = format!("{:<name_w$}  {:>12}  {}\n", "token", "attribution", "");
    for (l, v) in s.labels.iter().zip(&s.scores) {
        let n = if max > 0.0 {
            ((v.abs() / max) * width as f64).round() as usize
        } else {
            0
        };
        let bar = if *v >= 0.0 {
            format!("{:>w$}|{}", "", "█".repeat(n), w = width)
        } else {
            format!("{:>w$}|", "█".repeat(n), w = width)
        };
        let label: String = l.chars().take(24).collect();
        out.push_str(&format!("{label:<name_w$}  {v:>12.6}  {bar}\n"));
    }
    out
}
