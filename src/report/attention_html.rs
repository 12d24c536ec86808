//! Self-contained HTML pages (no scripts, no external assets) for the layer, gradient,
//! perturbation and attention commands: a key/value header, tokens coloured by score, heatmap
//! tables (tokens × layers for conductance, query × key for one attention head), and a
//! layer × head grid of attention thumbnails.

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Captum `visualize_text` colours for a ∈ [−1, 1] (as `report::html`).
pub(crate) fn colour(a: f64) -> String {
    let a = if a.is_finite() {
        a.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    if a >= 0.0 {
        format!("hsl(120,75%,{:.0}%)", 100.0 - 50.0 * a)
    } else {
        format!("hsl(0,75%,{:.0}%)", 100.0 - 40.0 * a.abs())
    }
}

/// Blue scale for non-negative values in [0, 1] (attention probabilities).
pub(crate) fn blue(a: f64) -> String {
    let a = if a.is_finite() {
        a.clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("hsl(217,90%,{:.0}%)", 100.0 - 55.0 * a)
}

/// A whole page: title, a table of (key, value) rows, then the given HTML sections.
pub fn page(title: &str, rows: &[(&str, String)], sections: &[String]) -> String {
    let mut info = String::new();
    for (k, v) in rows {
        info.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            esc(k),
            esc(v)
        ));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#111}}
mark{{padding:2px 3px;border-radius:3px;line-height:2.2em;font-family:ui-monospace,monospace}}
table.info td{{padding:2px 10px 2px 0}}
table.heat{{border-collapse:collapse;font-size:11px;font-family:ui-monospace,monospace}}
table.heat td,table.heat th{{border:1px solid #eee;padding:2px 4px;text-align:right}}
.grid{{display:grid;gap:4px}}
.grid a{{font-size:10px;color:#333;text-decoration:none}}
.sel{{outline:2px solid #b91c1c}}
</style></head><body>
<h1>{t}</h1>
<table class="info">
{info}</table>
{body}
</body></html>
"#,
        t = esc(title),
        body = sections.join("\n")
    )
}

/// Tokens coloured by score (normalised by the largest |score|), value on hover.
pub fn token_marks(heading: &str, labels: &[String], scores: &[f64]) -> String {
    let max = scores.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut s = format!("<h2>{}</h2>\n<p>", esc(heading));
    for (l, v) in labels.iter().zip(scores) {
        let a = if max > 0.0 { v / max } else { 0.0 };
        s.push_str(&format!(
            r#"<mark style="background:{}" title="{}: {:+.6}">{}</mark> "#,
            colour(a),
            esc(l),
            v,
            esc(l)
        ));
    }
    s.push_str("</p>");
    s
}

/// A heatmap table: `values` row-major `[rows, cols]`; signed values use the green/red scale
/// (normalised by the largest |value|), unsigned ones a blue scale on [0, 1].
pub fn heatmap(
    heading: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[f64],
    signed: bool,
) -> String {
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut s = format!(
        "<h2>{}</h2>\n<table class=\"heat\"><tr><th></th>",
        esc(heading)
    );
    for c in col_labels {
        s.push_str(&format!("<th>{}</th>", esc(c)));
    }
    s.push_str("</tr>\n");
    let nc = col_labels.len().max(1);
    for (r, row) in row_labels.iter().zip(values.chunks(nc)) {
        s.push_str(&format!("<tr><th>{}</th>", esc(r)));
        for v in row {
            let bg = if signed {
                colour(if max > 0.0 { v / max } else { 0.0 })
            } else {
                blue(*v)
            };
            s.push_str(&format!(
                r#"<td style="background:{bg}" title="{v:+.6}">{v:.3}</td>"#
            ));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>");
    s
}

/// A thumbnail SVG of one `[pos, pos]` map (block means when `pos` exceeds 32 cells).
fn thumb(map: &[f64], pos: usize, px: usize) -> String {
    let cells = pos.clamp(1, 32);
    let step = pos.div_ceil(cells);
    let n = pos.div_ceil(step);
    let cw = px as f64 / n as f64;
    let mut s = format!(r#"<svg width="{px}" height="{px}" viewBox="0 0 {px} {px}">"#);
    for bi in 0..n {
        for bj in 0..n {
            let (mut sum, mut cnt) = (0.0, 0.0);
            for i in bi * step..((bi + 1) * step).min(pos) {
                for j in bj * step..((bj + 1) * step).min(pos) {
                    sum += map[i * pos + j];
                    cnt += 1.0;
                }
            }
            // block means of probabilities are small: scale by the block width
            let v = if cnt > 0.0 {
                sum / cnt * step as f64
            } else {
                0.0
            };
            s.push_str(&format!(
                r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                bj as f64 * cw,
                bi as f64 * cw,
                cw + 0.05,
                cw + 0.05,
                blue(v)
            ));
        }
    }
    s.push_str("</svg>");
    s
}

/// The layer × head grid of thumbnails, the selected head outlined.
pub fn attention_grid(
    n_layers: usize,
    n_heads: usize,
    pos: usize,
    head: &dyn Fn(usize, usize) -> Vec<f64>,
    selected: (usize, usize),
) -> String {
    let mut s = format!(
        "<h2>All layers × heads (rows: layers, columns: heads; query ↓, key →)</h2>\n<div class=\"grid\" style=\"grid-template-columns:40px repeat({n_heads}, 64px)\">\n<span></span>"
    );
    for h in 0..n_heads {
        s.push_str(&format!("<span style=\"font-size:10px\">head {h}</span>"));
    }
    for l in 0..n_layers {
        s.push_str(&format!("<span style=\"font-size:10px\">layer {l}</span>"));
        for h in 0..n_heads {
            let cls = if (l, h) == selected {
                " class=\"sel\""
            } else {
                ""
            };
            s.push_str(&format!(
                "<span{cls} title=\"layer {l} head {h}\">{}</span>",
                thumb(&head(l, h), pos, 60)
            ));
        }
    }
    s.push_str("\n</div>");
    s
}
