//! The `gradpath compare` page: the summary table (base | tuned | tuned − base), both models'
//! mean normalised conductance curves of the chosen token on one SVG plot, the peak-layer
//! histogram, accuracy and averages per depth, and the first examples' IG token heatmaps side by
//! side. Self-contained (no script, no fonts).

use super::html::{colour, esc};
use crate::explain::{
    CompareReport, ExampleComparison, GroupComparison, GroupDifference, GroupStats, ModelResult,
    Stat, StatDifference,
};
use std::fmt::Write;

/// Colours of the two models (lines, legend, column heads).
pub const BASE_COLOUR: &str = "#ff7f0e";
pub const TUNED_COLOUR: &str = "#1f77b4";

/// Examples shown as heatmaps.
pub const MAX_EXAMPLES: usize = 20;

/// One line of the curve plot.
pub struct Curve<'a> {
    pub name: String,
    pub colour: &'a str,
    pub dashed: bool,
    pub values: &'a [f64],
}

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about four intervals over `range`.
fn tick_step(range: f64) -> f64 {
    let raw = range / 4.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * p)
}

/// A tick value without trailing zeros ("0.5", "-1", "0").
fn tick_label(v: f64, step: f64) -> String {
    if v.abs() < 1e-9 * step {
        return "0".into();
    }
    let t = format!("{v:.4}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An SVG plot of per-layer curves (layer on x, value on y, a zero line); layers from
/// `shade_from` on are shaded (the late layers).
pub fn curves_svg(
    curves: &[Curve],
    x_label: &str,
    y_label: &str,
    shade_from: Option<usize>,
) -> String {
    let (w, h, ml, mr, mt, mb) = (760.0, 400.0, 70.0, 210.0, 20.0, 50.0);
    let n = curves.iter().map(|c| c.values.len()).max().unwrap_or(0);
    let (mut y0, mut y1) = (0.0f64, 0.0f64);
    for c in curves {
        for &v in c.values {
            y0 = y0.min(v);
            y1 = y1.max(v);
        }
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let pad = 0.05 * (y1 - y0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let pw = w - ml - mr;
    let px = |l: usize| {
        if n <= 1 {
            ml + pw / 2.0
        } else {
            ml + l as f64 / (n - 1) as f64 * pw
        }
    };
    let py = |v: f64| mt + (y1 - v) / (y1 - y0) * (h - mt - mb);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12" role="img" aria-label="{}">"#,
        esc(y_label)
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{}" fill="#fff" stroke="#999"/>"##,
        h - mt - mb
    );
    if let Some(f) = shade_from.filter(|&f| f < n && n > 1) {
        let x = px(f) - 0.5 * pw / (n - 1) as f64;
        let x = x.max(ml);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{mt}" width="{:.1}" height="{}" fill="#f3f3f3"/><text x="{:.1}" y="{}" fill="#888" text-anchor="end">late layers</text>"##,
            w - mr - x,
            h - mt - mb,
            w - mr - 4.0,
            mt + 14.0
        );
    }
    let step = tick_step(y1 - y0);
    let mut k = (y0 / step).ceil();
    while k * step <= y1 {
        let v = k * step;
        let y = py(v);
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - mr,
            ml - 6.0,
            y + 4.0,
            tick_label(v, step)
        );
        k += 1.0;
    }
    if y0 < 0.0 && y1 > 0.0 {
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#888" stroke-dasharray="2,3"/>"##,
            w - mr,
            y = py(0.0)
        );
    }
    for l in 0..n {
        let x = px(l);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{l}</text>"##,
            h - mb,
            h - mb + 16.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        ml + pw / 2.0,
        h - 10.0,
        esc(x_label),
        mt + (h - mt - mb) / 2.0,
        esc(y_label)
    );
    for (i, c) in curves.iter().enumerate() {
        let dash = if c.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let pts: Vec<String> = c
            .values
            .iter()
            .enumerate()
            .map(|(l, &v)| format!("{:.1},{:.1}", px(l), py(v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2.5"{dash} points="{}"><title>{}</title></polyline>"#,
            c.colour,
            pts.join(" "),
            esc(&c.name)
        );
        if !c.dashed {
            for (l, &v) in c.values.iter().enumerate() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: layer {l}, {v:.4}</title></circle>"#,
                    px(l),
                    py(v),
                    c.colour,
                    esc(&c.name)
                );
            }
        }
        let ly = mt + 12.0 + 20.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2.5"{dash}/><text x="{}" y="{}">{}</text>"#,
            w - mr + 10.0,
            w - mr + 34.0,
            c.colour,
            w - mr + 40.0,
            ly + 4.0,
            esc(&c.name)
        );
    }
    s.push_str("</svg>");
    s
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn signed(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:+.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1} %", 100.0 * x))
}

/// "mean (median)" of a stat.
fn mm(s: &Stat, digits: usize) -> String {
    match (s.mean, s.median) {
        (Some(a), Some(b)) => format!("{a:.digits$} ({b:.digits$})"),
        _ => "–".into(),
    }
}

/// The summary table of one group.
fn summary_table(g: &GroupComparison, late_from: usize, n_layers: usize) -> String {
    let (b, t, d) = (&g.base, &g.tuned, &g.difference);
    let mut s = format!(
        "<table><tr><th class=\"l\">over {} example{}</th><th style=\"color:{BASE_COLOUR}\">base</th><th style=\"color:{TUNED_COLOUR}\">tuned</th><th>tuned − base</th></tr>",
        g.n,
        if g.n == 1 { "" } else { "s" }
    );
    let mut row = |name: &str, x: String, y: String, z: String| {
        let _ = write!(
            s,
            "<tr><td class=\"l\">{}</td><td>{x}</td><td>{y}</td><td>{z}</td></tr>",
            esc(name)
        );
    };
    row(
        &format!("accuracy ({} labelled)", b.labelled),
        pct(b.accuracy),
        pct(t.accuracy),
        d.accuracy
            .map_or("–".into(), |x| format!("{:+.1} points", 100.0 * x)),
    );
    let late = format!(
        "late-layer share (layers {late_from}–{}): mean (median)",
        n_layers.saturating_sub(1)
    );
    type Pick = fn(&GroupStats) -> &Stat;
    type PickDiff = fn(&GroupDifference) -> &StatDifference;
    let stats: [(&str, Pick, PickDiff, usize); 4] = [
        (
            "peak layer: mean (median)",
            |g| &g.peak_layer,
            |d| &d.peak_layer,
            2,
        ),
        (&late, |g| &g.late_share, |d| &d.late_share, 3),
        (
            "entropy of |IG| (0–1): mean (median)",
            |g| &g.entropy,
            |d| &d.entropy,
            3,
        ),
        (
            "negative share of |IG|: mean (median)",
            |g| &g.negative_share,
            |d| &d.negative_share,
            3,
        ),
    ];
    for (name, stat, diff, k) in stats {
        row(
            name,
            mm(stat(b), k),
            mm(stat(t), k),
            signed(diff(d).mean, k),
        );
    }
    let median_max = |x: &Stat| format!("{} ({})", sci(x.median), sci(x.max));
    row(
        "IG relative completeness delta: median (max)",
        median_max(&b.relative_delta),
        median_max(&t.relative_delta),
        String::new(),
    );
    row(
        "conductance relative delta, worst layer: median (max)",
        median_max(&b.conductance_relative_delta),
        median_max(&t.conductance_relative_delta),
        String::new(),
    );
    s.push_str("</table>");
    s
}

fn sci(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{x:.2e}"))
}

/// Per-layer numbers: mean curves, their difference, the peak-layer histogram.
fn layer_table(r: &CompareReport) -> String {
    let g = &r.summary;
    let mut s = String::from("<table><tr><th class=\"l\">layer</th>");
    for l in 0..r.n_layers {
        let _ = write!(s, "<th>{l}</th>");
    }
    s.push_str("</tr>");
    let mut row = |name: String, v: Vec<String>| {
        let _ = write!(s, "<tr><td class=\"l\">{name}</td>");
        for x in v {
            let _ = write!(s, "<td>{x}</td>");
        }
        s.push_str("</tr>");
    };
    let f = |v: &[f64]| v.iter().map(|x| format!("{x:+.3}")).collect::<Vec<_>>();
    row("base: mean normalised".into(), f(&g.base.mean_curve));
    row("tuned: mean normalised".into(), f(&g.tuned.mean_curve));
    row("tuned − base".into(), f(&g.difference.mean_curve));
    row("base: mean |normalised|".into(), f(&g.base.mean_abs_curve));
    row(
        "tuned: mean |normalised|".into(),
        f(&g.tuned.mean_abs_curve),
    );
    row("base: mean token share".into(), f(&g.base.mean_token_share));
    row(
        "tuned: mean token share".into(),
        f(&g.tuned.mean_token_share),
    );
    let c = |v: &[usize]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    row(
        "base: examples peaking here".into(),
        c(&g.base.peak_layer_counts),
    );
    row(
        "tuned: examples peaking here".into(),
        c(&g.tuned.peak_layer_counts),
    );
    s.push_str("</table>");
    s
}

fn depth_table(r: &CompareReport) -> String {
    if r.by_depth.is_empty() {
        return String::new();
    }
    let mut s = String::from("<h2>Per depth</h2><table><tr><th>depth</th><th>examples</th><th>base accuracy</th><th>tuned accuracy</th><th>base late share</th><th>tuned late share</th><th>base peak layer</th><th>tuned peak layer</th><th>base entropy</th><th>tuned entropy</th><th>base negative share</th><th>tuned negative share</th></tr>");
    for d in &r.by_depth {
        let (b, t) = (&d.group.base, &d.group.tuned);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.depth,
            d.group.n,
            pct(b.accuracy),
            pct(t.accuracy),
            num(b.late_share.mean, 3),
            num(t.late_share.mean, 3),
            num(b.peak_layer.mean, 2),
            num(t.peak_layer.mean, 2),
            num(b.entropy.mean, 3),
            num(t.entropy.mean, 3),
            num(b.negative_share.mean, 3),
            num(t.negative_share.mean, 3),
        );
    }
    s.push_str("</table>");
    s
}

/// One model's tokens coloured by IG (scaled by the example's max |a| on that model), the chosen
/// token outlined, and its numbers.
fn tokens_block(x: &ExampleComparison, m: &ModelResult, name: &str, colour_name: &str) -> String {
    let a = &m.ig.attributions;
    let max = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut s = format!(
        "<div class=\"side\"><div class=\"who\" style=\"color:{colour_name}\">{name} · predicts {}{}</div><p>",
        esc(&m.predicted_label.clone().unwrap_or_else(|| m.predicted.to_string())),
        match m.correct {
            Some(true) => " ✓",
            Some(false) => " ✗",
            None => "",
        }
    );
    for (i, (t, v)) in x.tokens_display.iter().zip(a).enumerate() {
        let c = if max > 0.0 { v / max } else { 0.0 };
        let class = if i == x.token_index {
            " class=\"pick\""
        } else {
            ""
        };
        let _ = write!(
            s,
            r#"<mark{class} style="background:{}" title="{}: {:+.6}">{}</mark> "#,
            colour(c),
            esc(t),
            v,
            esc(&crate::io::printable(t))
        );
    }
    let c = &m.conductance;
    let _ = write!(
        s,
        "</p><p class=\"muted\">Σ IG {:+.4} = F(x) − F(x′) {:+.4} + δ {:+.2e} (relative {:.2e}) · entropy {} · negative share {} · peak layer {} · late share {}</p></div>",
        m.ig.attributions.iter().sum::<f64>(),
        m.ig.f_input - m.ig.f_baseline,
        m.ig.delta,
        m.ig.relative_delta,
        num(m.ig.entropy, 3),
        num(m.ig.negative_share, 3),
        c.peak_layer.map_or("–".into(), |p| p.to_string()),
        num(c.late_share, 3)
    );
    s
}

fn examples_html(r: &CompareReport) -> String {
    let mut s = format!(
        "<h2>Examples</h2><p class=\"muted\">The first {} of {} examples. IG attributions of the explained class on each model, each side scaled by its own max |attribution|: green supports, red opposes (hover a token for its value). The outlined token is the one whose conductance curve is read.</p>",
        r.examples.len().min(MAX_EXAMPLES),
        r.examples.len()
    );
    for x in r.examples.iter().take(MAX_EXAMPLES) {
        let mut facts = vec![format!("id {}", x.id)];
        if let Some(l) = &x.label_name {
            facts.push(format!("label {l}"));
        }
        if let Some(d) = x.depth {
            facts.push(format!("depth {d}"));
        }
        facts.push(format!(
            "explains class {}",
            x.class_label.clone().unwrap_or_else(|| x.class.to_string())
        ));
        if x.truncated {
            facts.push("truncated".into());
        }
        let _ = write!(
            s,
            "<div class=\"ex\"><div class=\"facts\">{}</div><div class=\"pair\">{}{}</div></div>",
            esc(&facts.join(" · ")),
            tokens_block(x, &x.base, "base", BASE_COLOUR),
            tokens_block(x, &x.tuned, "tuned", TUNED_COLOUR)
        );
    }
    s
}

/// The whole page.
pub fn render(r: &CompareReport) -> String {
    let g = &r.summary;
    let name = |m: &crate::explain::ModelInfo| {
        let head = match (m.fresh_parameters.is_empty(), m.head_seed) {
            (true, _) => "its own head".to_string(),
            (false, Some(seed)) => format!("fresh head, seed {seed}"),
            (false, None) => "fresh head".to_string(),
        };
        format!("{} ({}; {head})", m.path, m.description)
    };
    let token = r.token.clone();
    let curves = [
        Curve {
            name: "base: mean".into(),
            colour: BASE_COLOUR,
            dashed: false,
            values: &g.base.mean_curve,
        },
        Curve {
            name: "tuned: mean".into(),
            colour: TUNED_COLOUR,
            dashed: false,
            values: &g.tuned.mean_curve,
        },
        Curve {
            name: "base: mean |·|".into(),
            colour: BASE_COLOUR,
            dashed: true,
            values: &g.base.mean_abs_curve,
        },
        Curve {
            name: "tuned: mean |·|".into(),
            colour: TUNED_COLOUR,
            dashed: true,
            values: &g.tuned.mean_abs_curve,
        },
    ];
    let svg = curves_svg(
        &curves,
        "layer (blocks.l.hook_resid_post)",
        &format!("normalised conductance of {token}"),
        Some(r.late_from),
    );
    let warn: String = r
        .warnings
        .iter()
        .map(|w| format!("<p class=\"warn\">⚠ {}</p>", esc(w)))
        .collect();
    let skipped = if r.skipped.is_empty() {
        String::new()
    } else {
        let items: String = r
            .skipped
            .iter()
            .map(|k| {
                format!(
                    "<li>{}{}: {}</li>",
                    esc(&k.id),
                    k.line.map_or(String::new(), |l| format!(" (line {l})")),
                    esc(&k.detail)
                )
            })
            .collect();
        format!(
            "<h2>Skipped ({})</h2><ul class=\"muted\">{items}</ul>",
            r.skipped.len()
        )
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gradpath · fine-tuned vs base</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f4f4f4; }} td.l, th.l {{ text-align: left; }}
.warn {{ background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; }}
.muted {{ color: #666; font-size: 13px; }}
.ex {{ border-top: 1px solid #ddd; padding: 8px 0; }}
.facts {{ font-size: 13px; font-weight: bold; margin-bottom: 4px; }}
.pair {{ display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }}
.who {{ font-weight: bold; font-size: 13px; }}
mark {{ padding: 1px 2px; border-radius: 3px; line-height: 1.9em; font-family: ui-monospace, monospace; font-size: 12px; }}
mark.pick {{ outline: 2px solid #333; }}
</style></head><body>
<h1>gradpath · fine-tuned vs base</h1>
<p><b style="color:{BASE_COLOUR}">base</b>: {base}<br><b style="color:{TUNED_COLOUR}">tuned</b>: {tuned}</p>
<p class="muted">{n} examples · class explained: {class} · {kind} · baseline {baseline} · IG: {steps} {quad} points · conductance at blocks.l.{at}: {csteps} steps ({cpoints} points) · token {token_e} ({occ} occurrence) · dtype {dtype} · max {max_len} tokens · {secs:.1} s</p>
{warn}
{table}
<figure>{svg}<figcaption class="muted">Mean over examples of the normalised conductance curve c_l / ‖c‖₂ of {token_e} (c_l: its layer conductance at layer l, summed over d_model; the norm is over layers), solid; dashed: the mean of its magnitude. Late layers: l ≥ {late_from}.</figcaption></figure>
{layers}
{depths}
{examples}
{skipped}
</body></html>
"#,
        base = esc(&name(&r.base)),
        tuned = esc(&name(&r.tuned)),
        n = g.n,
        class = esc(&r
            .class
            .clone()
            .map_or("the tuned model's prediction".into(), |c| format!(
                "{c} (fixed)"
            ))),
        kind = r.kind,
        baseline = esc(&r.baseline),
        steps = r.steps,
        quad = r.quadrature,
        at = r.at,
        csteps = r.conductance_steps,
        cpoints = r.conductance_steps + 1,
        token_e = esc(&token),
        occ = r.occurrence,
        dtype = esc(&r.dtype),
        max_len = r.max_len,
        secs = r.timing.compare_s,
        table = summary_table(g, r.late_from, r.n_layers),
        late_from = r.late_from,
        layers = layer_table(r),
        depths = depth_table(r),
        examples = examples_html(r),
    )
}
