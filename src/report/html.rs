//! One self-contained HTML page (no scripts or external assets): tokens coloured green
//! (supports) / red (opposes) with values on hover, the target, the completeness check, and the
//! target along the path as an inline SVG chart.

use super::TokenScores;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Captum's `visualize_text` colours: hsl(120, 75%, 100 − 50a%) for a > 0, hsl(0, 75%, 100 − 40|a|%)
/// for a < 0, with a = value / max|value| clipped to [−1, 1].
pub(crate) fn colour(a: f64) -> String {
    let a = a.clamp(-1.0, 1.0);
    if a >= 0.0 {
        format!("hsl(120,75%,{:.0}%)", 100.0 - 50.0 * a)
    } else {
        format!("hsl(0,75%,{:.0}%)", 100.0 - 40.0 * a.abs())
    }
}

/// An SVG polyline of F(α) along the path, with the two endpoints marked.
fn path_svg(alphas: &[f64], f: &[f64], f0: f64, f1: f64) -> String {
    let (w, h, pad) = (520.0, 196.0, 30.0);
    let mut pts: Vec<(f64, f64)> = alphas.iter().copied().zip(f.iter().copied()).collect();
    pts.push((0.0, f0));
    pts.push((1.0, f1));
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |a: f64| pad + a * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v - lo) / span * (h - 2.0 * pad);
    let line: Vec<String> = pts
        .iter()
        .map(|(a, v)| format!("{:.1},{:.1}", x(*a), y(*v)))
        .collect();
    format!(
        r##"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="target along the path">
<rect x="0" y="0" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>
<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{}"/>
<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#b91c1c"><title>F(x′) = {f0:.6}</title></circle>
<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#15803d"><title>F(x) = {f1:.6}</title></circle>
<text x="{pad}" y="{}" font-size="11">α = 0 (baseline)</text><text x="{}" y="{}" font-size="11" text-anchor="end">α = 1 (input)</text>
<text x="4" y="14" font-size="11">max {hi:.4}</text><text x="4" y="{}" font-size="11">min {lo:.4}</text>
</svg>"##,
        line.join(" "),
        x(0.0),
        y(f0),
        x(1.0),
        y(f1),
        h - 4.0,
        w - pad,
        h - 4.0,
        h - pad + 14.0
    )
}

/// What the page shows besides the tokens.
pub struct PageInfo<'a> {
    pub title: &'a str,
    pub model: &'a str,
    pub text: &'a str,
    pub target: &'a str,
    pub f_input: f64,
    pub f_baseline: f64,
    pub delta: f64,
    pub relative_delta: f64,
    pub method: &'a str,
    pub warning: Option<&'a str>,
    pub path_alphas: &'a [f64],
    pub path_f: &'a [f64],
}

/// The whole page.
pub fn render(s: &TokenScores, info: &PageInfo) -> String {
    let max = s.scores.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut toks = String::new();
    for (l, v) in s.labels.iter().zip(&s.scores) {
        let a = if max > 0.0 { v / max } else { 0.0 };
        toks.push_str(&format!(
            r#"<mark style="background:{}" title="{}: {:+.6}">{}</mark> "#,
            colour(a),
            esc(l),
            v,
            esc(l)
        ));
    }
    let warn = info
        .warning
        .map(|w| format!(r#"<p class="warn">⚠ {}</p>"#, esc(w)))
        .unwrap_or_default();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:880px;margin:2em auto;color:#111}}
mark{{padding:2px 3px;border-radius:3px;line-height:2.2em;font-family:ui-monospace,monospace}}
table{{border-collapse:collapse}}td{{padding:2px 10px 2px 0}}
.warn{{background:#fff7ed;border:1px solid #fdba74;padding:8px}}
.legend span{{padding:2px 6px;margin-right:6px;border-radius:3px}}
</style></head><body>
<h1>{title}</h1>
<table>
<tr><td>model</td><td>{model}</td></tr>
<tr><td>text</td><td>{text}</td></tr>
<tr><td>target</td><td>{target}</td></tr>
<tr><td>method</td><td>{method}</td></tr>
<tr><td>F(input) / F(baseline)</td><td>{fi:.6} / {fb:.6}</td></tr>
<tr><td>completeness delta</td><td>{delta:+.3e} (relative {rel:.2e})</td></tr>
</table>
{warn}
<p class="legend"><span style="background:{neg}">opposes</span><span style="background:#fff;border:1px solid #ddd">neutral</span><span style="background:{pos}">supports</span> (hover a token for its value)</p>
<p>{toks}</p>
<h2>Target along the path</h2>
{svg}
</body></html>
"#,
        title = esc(info.title),
        model = esc(info.model),
        text = esc(info.text),
        target = esc(info.target),
        method = esc(info.method),
        fi = info.f_input,
        fb = info.f_baseline,
        delta = info.delta,
        rel = info.relative_delta,
        neg = colour(-1.0),
        pos = colour(1.0),
        svg = path_svg(info.path_alphas, info.path_f, info.f_baseline, info.f_input),
    )
}
