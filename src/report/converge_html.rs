//! The `gradpath converge` page: a log–log SVG plot of attribution error against model passes,
//! one line per quadrature rule, and the table behind it. Self-contained (no script, no fonts).

use super::html::esc;
use crate::explain::{ConvergeReport, ConvergeSummary};
use std::fmt::Write;

/// One line of the plot: a rule and its (passes, error) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [&str; 9] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f",
];

/// An SVG log–log plot of `series` (non-positive values are drawn at the floor 1e−16).
pub fn loglog_svg(series: &[Series], x_label: &str, y_label: &str) -> String {
    let (w, h, ml, mr, mt, mb) = (760.0, 440.0, 70.0, 170.0, 20.0, 50.0);
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        let y = y.max(1e-16);
        x0 = x0.min(x.max(1.0).log10());
        x1 = x1.max(x.max(1.0).log10());
        y0 = y0.min(y.log10());
        y1 = y1.max(y.log10());
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, -1.0, 0.0);
    }
    let (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let px = |x: f64| ml + (x.max(1.0).log10() - x0) / (x1 - x0) * (w - ml - mr);
    let py = |y: f64| mt + (y1 - y.max(1e-16).log10()) / (y1 - y0) * (h - mt - mb);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{}" height="{}" fill="#fff" stroke="#999"/>"##,
        w - ml - mr,
        h - mt - mb
    );
    for d in (x0 as i32)..=(x1 as i32) {
        let x = ml + (d as f64 - x0) / (x1 - x0) * (w - ml - mr);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">10<tspan dy="-6" font-size="9">{d}</tspan></text>"##,
            h - mb,
            h - mb + 18.0
        );
    }
    for d in (y0 as i32)..=(y1 as i32) {
        let y = mt + (y1 - d as f64) / (y1 - y0) * (h - mt - mb);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">10<tspan dy="-6" font-size="9">{d}</tspan></text>"##,
            w - mr,
            ml - 6.0,
            y + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        ml + (w - ml - mr) / 2.0,
        h - 8.0,
        esc(x_label),
        mt + (h - mt - mb) / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = se
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            path.join(" "),
            esc(&se.name)
        );
        for &(x, y) in &se.points {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {x} passes, {y:.3e}</title></circle>"#,
                px(x),
                py(y),
                esc(&se.name)
            );
        }
        let ly = mt + 10.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            w - mr + 10.0,
            w - mr + 30.0,
            w - mr + 36.0,
            ly + 4.0,
            esc(&se.name)
        );
    }
    s.push_str("</svg>");
    s
}

fn page(title: &str, intro: &str, svg: &str, table: &str, warnings: &[String]) -> String {
    let warn: String = warnings
        .iter()
        .map(|w| format!("<p class=\"warn\">⚠ {}</p>", esc(w)))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f4f4f4; }} td.l, th.l {{ text-align: left; }}
.warn {{ background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; }}
.muted {{ color: #666; font-size: 13px; }}
</style></head><body>
<h1>{t}</h1>
{intro}
{warn}
<figure>{svg}<figcaption class="muted">Relative attribution error ‖A − A_ref‖₂ / ‖A_ref‖₂ against forward + backward passes (path points), log–log; one line per rule.</figcaption></figure>
{table}
</body></html>
"#,
        t = esc(title)
    )
}

/// The page of one text's [`ConvergeReport`].
pub fn render(r: &ConvergeReport) -> String {
    let series: Vec<Series> = r
        .rules
        .iter()
        .map(|rc| Series {
            name: rc.rule.name().to_string(),
            points: rc
                .runs
                .iter()
                .map(|x| (x.passes as f64, x.attribution_error))
                .collect(),
        })
        .collect();
    let svg = loglog_svg(&series, "forward + backward passes", "attribution error");
    let h = &r.header;
    let intro = format!(
        "<p>{} · <b>{}</b></p><p class=\"muted\">target {} · baseline {} · dtype {} · F(x) = {:.6}, F(x′) = {:.6} · reference: {} Kronrod panels, {} points, error estimate {:.2e} ({}), relative completeness delta {:.2e} · {} distinct passes in all, {:.4} s per pass</p>",
        esc(&h.model_description),
        esc(&h.text),
        esc(&h.target_description()),
        esc(&h.baseline),
        esc(&h.dtype),
        r.f_input,
        r.f_baseline,
        r.reference.panels,
        r.reference.points,
        r.reference.error_estimate,
        if r.reference.converged { "converged" } else { "NOT converged" },
        r.reference.relative_delta,
        r.total_passes,
        r.seconds_per_pass
    );
    let mut t = String::from("<table><tr><th class=\"l\">rule</th><th>asked</th><th>points</th><th>passes (refining)</th><th>relative delta</th><th>attribution error</th><th>max token error</th><th>successive estimate</th><th>seconds</th><th>order</th></tr>");
    for rc in &r.rules {
        for (k, x) in rc.runs.iter().enumerate() {
            let _ = write!(
                t,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2e}</td><td>{:.2e}</td><td>{:.2e}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
                if k == 0 { rc.rule.name() } else { "" },
                x.requested,
                x.points,
                x.passes_refining,
                x.relative_delta,
                x.attribution_error,
                x.max_token_error,
                x.successive_estimate.map_or("–".into(), |e| format!("{e:.2e}")),
                x.seconds,
                if k == 0 { rc.order.map_or("–".into(), |o| format!("{o:.2}")) } else { String::new() }
            );
        }
    }
    t.push_str("</table>");
    page(
        "gradpath · quadrature convergence",
        &intro,
        &svg,
        &t,
        &r.warnings,
    )
}

/// The page of a `converge --data` run: medians over texts.
pub fn render_summary(s: &ConvergeSummary, model: &str, warnings: &[String]) -> String {
    let series: Vec<Series> = s
        .rules
        .iter()
        .map(|r| Series {
            name: r.rule.name().to_string(),
            points: r
                .runs
                .iter()
                .map(|x| (x.passes as f64, x.median_attribution_error))
                .collect(),
        })
        .collect();
    let svg = loglog_svg(
        &series,
        "forward + backward passes",
        "median attribution error",
    );
    let intro = format!("<p>{} · medians over {} texts</p>", esc(model), s.texts);
    let mut t = String::from("<table><tr><th class=\"l\">rule</th><th>asked</th><th>points</th><th>median relative delta</th><th>median attribution error</th><th>worst attribution error</th><th>median seconds</th><th>median order</th></tr>");
    for r in &s.rules {
        for (k, x) in r.runs.iter().enumerate() {
            let _ = write!(
                t,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2e}</td><td>{:.2e}</td><td>{:.2e}</td><td>{:.3}</td><td>{}</td></tr>",
                if k == 0 { r.rule.name() } else { "" },
                x.requested,
                x.points,
                x.median_relative_delta,
                x.median_attribution_error,
                x.worst_attribution_error,
                x.median_seconds,
                if k == 0 { r.median_order.map_or("–".into(), |o| format!("{o:.2}")) } else { String::new() }
            );
        }
    }
    t.push_str("</table>");
    page(
        "gradpath · quadrature convergence over a data set",
        &intro,
        &svg,
        &t,
        warnings,
    )
}
