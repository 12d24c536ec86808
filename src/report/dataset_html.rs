//! The data-set report (`gradpath report`): one self-contained page (no scripts, no external
//! assets) drawn from a [`DatasetSummary`]: what is not summarised for the method (notes), LIG
//! completeness per layer with the rough columns, the spread of neuron conductance, the mean
//! attention entropy per head, conductance per layer with its spread, the mean head-importance
//! grid (ATTATTR), the distribution of completeness deltas with the flagged examples, top tokens
//! by mean attribution, and every example one click away (links to anchors).

use super::attention_html::{blue, colour, esc, heatmap, page};
use crate::batch::summary::{
    AttentionEntropy, DatasetSummary, Deltas, LayerCurve, LigSummary, NeuronSummary, Spread,
    TopTokens,
};

const RED: &str = "#b91c1c";
const BLUE: &str = "#1d4ed8";

fn ex_link(k: usize, label: &str) -> String {
    format!("<a href=\"#ex-{k}\">{}</a>", esc(label))
}

fn tokens_table(t: &TopTokens, positive: bool, s: &DatasetSummary) -> String {
    let list = if positive { &t.positive } else { &t.negative };
    let max = list.iter().fold(0.0f64, |m, x| m.max(x.mean.abs()));
    let mut h = format!(
        "<div><h3>{}</h3>\n<table class=\"heat\"><tr><th>{}</th><th>n</th><th>mean</th><th>std</th><th>examples</th></tr>\n",
        if positive { "Highest mean" } else { "Lowest mean" },
        if t.by_word { "word" } else { "token" }
    );
    for x in list {
        let links: Vec<String> = x
            .examples
            .iter()
            .map(|&k| ex_link(k, s.examples.get(k).map_or("?", |e| e.id.as_str())))
            .collect();
        let a = if max > 0.0 { x.mean / max } else { 0.0 };
        h.push_str(&format!(
            "<tr><td style=\"text-align:left\"><mark style=\"background:{}\">{}</mark></td><td>{}</td><td>{:+.4}</td><td>{:.4}</td><td style=\"text-align:left\">{}</td></tr>\n",
            colour(a),
            esc(&x.token),
            x.count,
            x.mean,
            x.std,
            links.join(" ")
        ));
    }
    if list.is_empty() {
        h.push_str("<tr><td colspan=\"5\">none</td></tr>\n");
    }
    h.push_str("</table></div>");
    h
}

fn tokens_section(t: &TopTokens, s: &DatasetSummary) -> String {
    format!(
        "<h2>Top {} by mean {} ({} distinct, special tokens left out)</h2>\n<div style=\"display:flex;flex-wrap:wrap;gap:24px\">{}{}</div>",
        if t.by_word { "words" } else { "tokens" },
        esc(&t.score),
        t.distinct,
        tokens_table(t, true, s),
        tokens_table(t, false, s)
    )
}

fn deltas_section(d: &Deltas, rough: f64, s: &DatasetSummary) -> String {
    let (w, h, ml, mb, mt) = (640.0, 240.0, 48.0, 40.0, 12.0);
    let n = d.histogram.len().max(1);
    let bw = (w - ml - 12.0) / n as f64;
    let top = d.histogram.iter().map(|x| x.1).max().unwrap_or(1).max(1) as f64;
    let ph = h - mb - mt;
    let mut svg = format!(
        r##"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="11">
<line x1="{ml}" y1="{0}" x2="{1}" y2="{0}" stroke="#999"/>
"##,
        h - mb,
        w - 12.0
    );
    let cut = rough.log10().floor() as i32;
    for (i, (e, c)) in d.histogram.iter().enumerate() {
        let x = ml + i as f64 * bw;
        let bh = *c as f64 / top * ph;
        let fill = if *e >= cut { RED } else { BLUE };
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{c} examples with delta in [1e{e}, 1e{})</title></rect>
<text x="{:.1}" y="{:.1}" text-anchor="middle">1e{e}</text><text x="{:.1}" y="{:.1}" text-anchor="middle">{c}</text>
"##,
            x + 2.0,
            h - mb - bh,
            (bw - 4.0).max(1.0),
            bh,
            e + 1,
            x + bw / 2.0,
            h - mb + 14.0,
            x + bw / 2.0,
            h - mb - bh - 3.0
        ));
    }
    svg.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} (decades; red: ≥ 1e{cut}, flagged)</text></svg>"##,
        ml + (w - ml) / 2.0,
        h - 6.0,
        esc(&d.what)
    ));
    let mut flagged = String::new();
    if d.flagged.is_empty() {
        flagged.push_str("<p>No example is flagged.</p>");
    } else {
        flagged.push_str(&format!(
            "<h3>Flagged: {} of {} examples (rough path or relative delta above {rough:.0e})</h3>\n<table class=\"heat\"><tr><th>example</th><th>relative delta</th><th style=\"text-align:left\">why</th></tr>\n",
            d.flagged.len(),
            d.values.len()
        ));
        for f in &d.flagged {
            let link = if f.example < s.examples.len() {
                ex_link(f.example, &f.id)
            } else {
                esc(&f.id)
            };
            flagged.push_str(&format!(
                "<tr style=\"color:{RED}\"><td>{link}</td><td>{:.3e}</td><td style=\"text-align:left\">{}</td></tr>\n",
                f.relative_delta,
                esc(&f.reason)
            ));
        }
        flagged.push_str("</table>");
    }
    format!(
        "<h2>Completeness deltas over {} examples</h2>\n<p>median {:.2e}, 90th percentile {:.2e}, max {:.2e}</p>\n{svg}\n{flagged}",
        d.values.len(),
        d.median,
        d.p90,
        d.max
    )
}

/// `blocks.3.hook_resid_post` → `layer 3`; other names as they are.
fn short(label: &str) -> String {
    let mut p = label.split('.');
    match (p.next(), p.next()) {
        (Some("blocks"), Some(l)) if l.parse::<usize>().is_ok() => format!("layer {l}"),
        _ => label.to_string(),
    }
}

fn layers_section(c: &LayerCurve) -> String {
    let (w, h, ml, mb, mt, mr) = (680.0, 300.0, 90.0, 70.0, 14.0, 40.0);
    let n = c.labels.len().max(1);
    let hi = c
        .p90
        .iter()
        .chain(&c.mean)
        .fold(0.0f64, |m, v| if v.is_finite() { m.max(*v) } else { m })
        .max(1e-12)
        * 1.1;
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let x = |i: usize| {
        ml + if n > 1 {
            i as f64 / (n - 1) as f64 * pw
        } else {
            pw / 2.0
        }
    };
    let y = |v: f64| mt + (1.0 - (v / hi).clamp(0.0, 1.0)) * ph;
    let mut s = format!(
        r##"<h2>Conductance per layer over {} examples</h2>
<p>{} — line: mean; band: 10th to 90th percentile; hover a point for mean ± std.</p>
<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="11">
<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>
"##,
        c.examples,
        esc(&c.what)
    );
    for k in 0..=4 {
        let v = hi * k as f64 / 4.0;
        s.push_str(&format!(
            r##"<line x1="{ml}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#eee"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{v:.2}</text>
"##,
            y(v),
            ml + pw,
            ml - 4.0,
            y(v) + 4.0
        ));
    }
    let mut band: Vec<String> = (0..n)
        .map(|i| format!("{:.1},{:.1}", x(i), y(c.p90[i])))
        .collect();
    band.extend(
        (0..n)
            .rev()
            .map(|i| format!("{:.1},{:.1}", x(i), y(c.p10[i]))),
    );
    s.push_str(&format!(
        "<polygon points=\"{}\" fill=\"#bfdbfe\" stroke=\"none\"/>\n",
        band.join(" ")
    ));
    let line: Vec<String> = (0..n)
        .map(|i| format!("{:.1},{:.1}", x(i), y(c.mean[i])))
        .collect();
    s.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"2\"/>\n",
        line.join(" ")
    ));
    for i in 0..n {
        s.push_str(&format!(
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{BLUE}"><title>{}: mean {:.4} ± {:.4} (p10 {:.4}, p90 {:.4})</title></circle>
<text x="{:.1}" y="{:.1}" text-anchor="end" transform="rotate(-30 {:.1} {:.1})">{}</text>
"##,
            x(i),
            y(c.mean[i]),
            esc(&c.labels[i]),
            c.mean[i],
            c.std[i],
            c.p10[i],
            c.p90[i],
            x(i),
            h - mb + 14.0,
            x(i),
            h - mb + 14.0,
            esc(&short(&c.labels[i]))
        ));
    }
    s.push_str("</svg>");
    s
}

fn lig_section(l: &LigSummary, rough: f64, s: &DatasetSummary) -> String {
    let mut h = format!(
        "<h2>LIG completeness per layer</h2>\n<p>{} — per layer: the mean over examples of each example's mean over its columns, the median and maximum over all columns, and the columns above {rough:.0e}.</p>\n<table class=\"heat\"><tr><th>layer</th><th>examples</th><th>columns</th><th>mean</th><th>median</th><th>max</th><th>above {rough:.0e}</th></tr>\n",
        esc(&l.what)
    );
    for x in &l.layers {
        let style = if x.rough > 0 {
            format!(" style=\"color:{RED}\"")
        } else {
            String::new()
        };
        h.push_str(&format!(
            "<tr{style}><td>layer {}</td><td>{}</td><td>{}</td><td>{:.2e}</td><td>{:.2e}</td><td>{:.2e}</td><td>{}</td></tr>\n",
            x.layer, x.examples, x.columns, x.mean, x.median, x.max, x.rough
        ));
    }
    h.push_str("</table>\n");
    if l.rough_total == 0 {
        h.push_str(&format!(
            "<p>No column has a relative delta above {rough:.0e}.</p>\n"
        ));
    } else {
        h.push_str(&format!(
            "<h3>Rough columns: {} above {rough:.0e}{}</h3>\n<table class=\"heat\"><tr><th>example</th><th>layer</th><th>column</th><th>token</th><th>relative delta</th></tr>\n",
            l.rough_total,
            if l.rough_total > l.rough_columns.len() {
                format!(" (the {} largest listed)", l.rough_columns.len())
            } else {
                String::new()
            }
        ));
        for c in &l.rough_columns {
            let link = if c.example < s.examples.len() {
                ex_link(c.example, &c.id)
            } else {
                esc(&c.id)
            };
            h.push_str(&format!(
                "<tr style=\"color:{RED}\"><td>{link}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3e}</td></tr>\n",
                c.layer,
                c.column,
                esc(&c.token),
                c.relative_delta
            ));
        }
        h.push_str("</table>\n");
    }
    if !l.unconverged.is_empty() {
        let list: Vec<String> = l
            .unconverged
            .iter()
            .map(|(k, id, layer)| {
                let link = if *k < s.examples.len() {
                    ex_link(*k, id)
                } else {
                    esc(id)
                };
                format!("{link} (layer {layer})")
            })
            .collect();
        h.push_str(&format!(
            "<p style=\"color:{RED}\">Layer maps that did not reach --tolerance: {}</p>\n",
            list.join(", ")
        ));
    }
    h
}

fn spread_row(name: &str, x: &Spread) -> String {
    format!(
        "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{:+.4e}</td><td>{:.4e}</td><td>{:+.4e}</td><td>{:+.4e}</td><td>{:+.4e}</td><td>{:+.4e}</td><td>{:+.4e}</td></tr>\n",
        esc(name),
        x.n,
        x.mean,
        x.std,
        x.min,
        x.p10,
        x.median,
        x.p90,
        x.max
    )
}

fn neuron_section(n: &NeuronSummary) -> String {
    format!(
        "<h2>Neuron conductance of {} {:?} over {} examples</h2>\n<table class=\"heat\"><tr><th></th><th>n</th><th>mean</th><th>std</th><th>min</th><th>p10</th><th>median</th><th>p90</th><th>max</th></tr>\n{}{}</table>\n",
        esc(&n.boundary),
        n.neuron,
        n.total.n,
        spread_row("total (Σ attributions)", &n.total),
        spread_row("share of F(x) − F(x′)", &n.share)
    )
}

fn attention_section(a: &AttentionEntropy) -> String {
    // Blue, darker for more entropy, normalised by the largest head (heatmap's unsigned scale
    // stops at 1; entropies reach ln T).
    let max = a.mean.iter().fold(0.0f64, |m, v| m.max(*v));
    let mut h = format!(
        "<h2>Mean attention entropy per head over {} examples</h2>\n<p>Entropy −Σ_k p_k ln p_k of each query row, in nats, averaged over the rows and the examples (rows: layers, columns: heads; 0 for a masked head). Low: the head looks at few keys; a row spread evenly over every key has ln T (mean over these examples {:.3}).</p>\n<table class=\"heat\"><tr><th></th>",
        a.examples, a.mean_log_tokens
    );
    for k in 0..a.n_heads {
        h.push_str(&format!("<th>head {k}</th>"));
    }
    h.push_str("</tr>\n");
    for (l, row) in a.mean.chunks(a.n_heads.max(1)).enumerate() {
        h.push_str(&format!("<tr><th>layer {l}</th>"));
        for v in row {
            let bg = blue(if max > 0.0 { v / max } else { 0.0 });
            h.push_str(&format!(
                "<td style=\"background:{bg}\" title=\"{v:.6} nats\">{v:.3}</td>"
            ));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>");
    h
}

fn examples_section(s: &DatasetSummary) -> String {
    let mut h = format!(
        "<h2>Examples ({} shown of {})</h2>\n<table class=\"heat\"><tr><th>id</th><th>target</th><th>relative delta</th><th style=\"text-align:left\">text</th></tr>\n",
        s.examples.len(),
        s.examples_total
    );
    for (k, e) in s.examples.iter().enumerate() {
        let text: String = e.text.chars().take(90).collect();
        let more = if e.text.chars().count() > 90 {
            "…"
        } else {
            ""
        };
        let style = if e.rough {
            format!(" style=\"color:{RED}\"")
        } else {
            String::new()
        };
        h.push_str(&format!(
            "<tr{style}><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}{more}</td></tr>\n",
            ex_link(k, &e.id),
            esc(&e.target),
            e.relative_delta.map(|d| format!("{d:.2e}")).unwrap_or_default(),
            esc(&text)
        ));
    }
    h.push_str("</table>\n");
    for (k, e) in s.examples.iter().enumerate() {
        let max = e.scores.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut marks = String::new();
        for (l, v) in e.labels.iter().zip(&e.scores) {
            let a = if max > 0.0 { v / max } else { 0.0 };
            marks.push_str(&format!(
                r#"<mark style="background:{}" title="{}: {:+.6}">{}</mark> "#,
                colour(a),
                esc(l),
                v,
                esc(l)
            ));
        }
        h.push_str(&format!(
            "<section id=\"ex-{k}\" class=\"ex\"><h3>{} <small>{}{}</small></h3>\n<p>{}</p>\n<p>{}</p><a href=\"#top\">↑ top</a></section>\n",
            esc(&e.id),
            esc(&e.target),
            e.relative_delta
                .map(|d| format!(", relative delta {d:.2e}"))
                .unwrap_or_default(),
            esc(&e.text),
            if marks.is_empty() { "(no per-token scores)".into() } else { marks }
        ));
    }
    h
}

/// The page for `s` (`rough`: the relative delta above which examples were flagged).
pub fn render(s: &DatasetSummary, source: &str, rough: f64) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("method", s.method.clone()),
        ("model", s.model.clone()),
        ("output", source.to_string()),
        ("examples", s.examples_total.to_string()),
    ];
    if let Some(d) = &s.deltas {
        rows.push((
            "flagged",
            format!(
                "{} of {} (relative delta above {rough:.0e} or a rough path)",
                d.flagged.len(),
                d.values.len()
            ),
        ));
    }
    // The compact per-layer views first, then the deltas, the token tables and the examples.
    let mut sections = vec!["<a id=\"top\"></a>".to_string()];
    for n in &s.notes {
        sections.push(format!("<p class=\"note\">{}</p>", esc(n)));
    }
    if let Some(l) = &s.lig {
        sections.push(lig_section(l, rough, s));
    }
    if let Some(n) = &s.neuron {
        sections.push(neuron_section(n));
    }
    if let Some(a) = &s.attention {
        sections.push(attention_section(a));
    }
    if let Some(c) = &s.layers {
        sections.push(layers_section(c));
    }
    if let Some(g) = &s.heads {
        let layers: Vec<String> = g.layers.iter().map(|l| format!("layer {l}")).collect();
        let heads: Vec<String> = (0..g.n_heads).map(|h| format!("head {h}")).collect();
        sections.push(heatmap(
            &format!(
                "Mean head importance over {} examples (ATTATTR, max attribution per head; rows: layers, columns: heads)",
                g.examples
            ),
            &layers,
            &heads,
            &g.mean,
            true,
        ));
    }
    if let Some(d) = &s.deltas {
        sections.push(deltas_section(d, rough, s));
    }
    if let Some(t) = &s.tokens {
        sections.push(tokens_section(t, s));
    }
    sections.push(examples_section(s));
    let mut html = page(
        &format!("gradpath · data-set report · {}", s.method),
        &rows,
        &sections,
    );
    // Section spacing for the per-example blocks (the shared page style has none).
    html = html.replacen(
        "</style>",
        ".ex{border-top:1px solid #ddd;margin-top:1em}\nh3 small{font-weight:normal;color:#555}\n</style>",
        1,
    );
    html
}
