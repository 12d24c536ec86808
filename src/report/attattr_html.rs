//! HTML pieces of the ATTATTR report: two heatmaps side by side, a completeness table and the
//! attribution tree as an inline SVG (no scripts, no external assets, no graphviz).

use crate::attribution::attattr::Tree;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Sections side by side (wrapping on narrow screens).
pub fn side_by_side(sections: &[String]) -> String {
    let mut s = String::from("<div style=\"display:flex;flex-wrap:wrap;gap:24px\">");
    for x in sections {
        s.push_str("<div>");
        s.push_str(x);
        s.push_str("</div>");
    }
    s.push_str("</div>");
    s
}

/// A plain table: a heading, column names and rows of cells (already formatted); rows whose
/// `flag` is true are shown in red.
pub fn table(heading: &str, columns: &[&str], rows: &[(Vec<String>, bool)]) -> String {
    let mut s = format!("<h2>{}</h2>\n<table class=\"heat\"><tr>", esc(heading));
    for c in columns {
        s.push_str(&format!("<th>{}</th>", esc(c)));
    }
    s.push_str("</tr>\n");
    for (cells, flag) in rows {
        let style = if *flag {
            " style=\"color:#b91c1c\""
        } else {
            ""
        };
        s.push_str(&format!("<tr{style}>"));
        for c in cells {
            s.push_str(&format!("<td>{}</td>", esc(c)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>");
    s
}

/// The attribution tree: tokens along the x axis in sentence order, at the heights the authors
/// give them (the root highest); an arrow from a query token to the key token it takes
/// information from, its width and label the normalised attribution, its layer on hover.
pub fn tree_svg(tokens: &[String], t: &Tree) -> String {
    let n = tokens.len().max(1);
    let w = (n * 72).max(480) as f64;
    let h = 380.0;
    let (mx, my) = (24.0, 40.0);
    let x = |i: usize| mx + (i as f64 + 0.5) / n as f64 * (w - 2.0 * mx);
    let height = |i: usize| {
        t.nodes
            .iter()
            .find(|nd| nd.token == i)
            .map(|nd| nd.height)
            .unwrap_or(0.0)
    };
    // The authors' heights can go below 0 (a child of a root child gets (0·L − 1)/L): scale the
    // range the nodes use onto the canvas.
    let (lo, hi) = t
        .nodes
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), nd| {
            (lo.min(nd.height), hi.max(nd.height))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let y = |i: usize| my + (hi - height(i)) / span * (h - 2.0 * my);
    let mut s = format!(
        r##"<h2>Attribution tree (τ = {tau}; root: {root})</h2>
<p style="font-size:12px;color:#555">An arrow i → j: token i (query) takes information from token j (key) at that layer, with a normalised, head-summed attribution above τ. Heights follow the authors' drawing: the root at the top, one step lower per level.</p>
<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="ui-monospace,monospace" font-size="12">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1d4ed8"/></marker></defs>
"##,
        tau = t.threshold,
        root = esc(&tokens[t.root.min(n - 1)]),
    );
    for e in &t.edges {
        let (x1, y1, x2, y2) = (x(e.from), y(e.from), x(e.to), y(e.to));
        // Stop short of the node circle.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        let (ex, ey) = (x2 - dx / len * 12.0, y2 - dy / len * 12.0);
        s.push_str(&format!(
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{ex:.1}" y2="{ey:.1}" stroke="#1d4ed8" stroke-opacity="0.8" stroke-width="{sw:.2}" marker-end="url(#arrow)"><title>layer {l}: {a} → {b} ({v:.3})</title></line>
"##,
            sw = 1.0 + 2.5 * e.weight.clamp(0.0, 1.0),
            l = e.layer,
            a = esc(&tokens[e.from]),
            b = esc(&tokens[e.to]),
            v = e.weight
        ));
        s.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">L{}</text>
"##,
            (x1 + x2) / 2.0 + 3.0,
            (y1 + y2) / 2.0 - 3.0,
            e.layer
        ));
    }
    for nd in &t.nodes {
        let fill = if nd.token == t.root {
            "#b91c1c"
        } else {
            "#1d4ed8"
        };
        s.push_str(&format!(
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="10" fill="{fill}"/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text>
"##,
            cx = x(nd.token),
            cy = y(nd.token),
            ty = y(nd.token) + 24.0,
            label = esc(&format!("{}{}", tokens[nd.token], nd.token)),
        ));
    }
    s.push_str("</svg>");
    s
}

/// A compact square heatmap (`labels` on both axes; row = query, column = key): colour only,
/// each cell's value on hover, so two of them fit side by side. Signed values use green/red
/// normalised by the largest |value|; unsigned ones a blue scale on [0, 1].
pub fn compact_heatmap(heading: &str, labels: &[String], values: &[f64], signed: bool) -> String {
    let n = labels.len();
    let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let cell = if n > 40 { 8 } else { 18 };
    let colour = |v: f64| -> String {
        if signed {
            let a = if max > 0.0 {
                (v / max).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            if a >= 0.0 {
                format!("hsl(120,75%,{:.0}%)", 100.0 - 50.0 * a)
            } else {
                format!("hsl(0,75%,{:.0}%)", 100.0 + 40.0 * a)
            }
        } else {
            let a = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
            format!("hsl(217,90%,{:.0}%)", 100.0 - 55.0 * a)
        }
    };
    let mut s = format!(
        "<h3 style=\"font-size:14px\">{}</h3>\n<table style=\"border-collapse:collapse;font-size:11px;font-family:ui-monospace,monospace\"><tr><th></th>",
        esc(heading)
    );
    for l in labels {
        s.push_str(&format!(
            "<th style=\"writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal;padding:2px 0\">{}</th>",
            esc(l)
        ));
    }
    s.push_str("</tr>\n");
    for (i, row) in values.chunks(n.max(1)).enumerate() {
        s.push_str(&format!(
            "<tr><th style=\"text-align:right;font-weight:normal;padding-right:4px\">{}</th>",
            esc(&labels[i])
        ));
        for (j, v) in row.iter().enumerate() {
            s.push_str(&format!(
                "<td style=\"width:{cell}px;height:{cell}px;padding:0;border:1px solid #f3f3f3;background:{}\" title=\"{} ← {}: {v:+.6}\"></td>",
                colour(*v),
                esc(&labels[i]),
                esc(&labels[j])
            ));
        }
        s.push_str("</tr>\n");
    }
    s.push_str(&format!(
        "</table><p style=\"font-size:11px;color:#555\">{}</p>",
        if signed {
            format!("green: raises F, red: lowers it; full colour = |{max:.3e}|; hover a cell for its value")
        } else {
            "blue: attention probability from 0 (white) to 1; hover a cell for its value".to_string()
        }
    ));
    s
}

/// A line chart of accuracy against the fraction of heads pruned, one line per series
/// `(name, accuracy per fraction)`, with a legend.
pub fn curves_svg(heading: &str, fractions: &[f64], series: &[(String, Vec<f64>)]) -> String {
    const COLOURS: [&str; 6] = [
        "#b91c1c", "#1d4ed8", "#15803d", "#6b7280", "#a16207", "#7e22ce",
    ];
    let (w, h, ml, mb, mt, mr) = (640.0, 360.0, 56.0, 44.0, 16.0, 150.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let x = |f: f64| ml + f * pw;
    let y = |a: f64| mt + (1.0 - a.clamp(0.0, 1.0)) * ph;
    let mut s = format!(
        r##"<h2>{}</h2>
<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="12">
<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>
"##,
        esc(heading)
    );
    for k in 0..=10 {
        let f = k as f64 / 10.0;
        s.push_str(&format!(
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#eee"/><text x="{0:.1}" y="{3:.1}" text-anchor="middle">{4:.0}%</text>
<line x1="{5:.1}" y1="{6:.1}" x2="{7:.1}" y2="{6:.1}" stroke="#eee"/><text x="{8:.1}" y="{9:.1}" text-anchor="end">{10:.1}</text>
"##,
            x(f), mt, mt + ph, h - mb + 16.0, f * 100.0,
            ml, y(f), ml + pw, ml - 6.0, y(f) + 4.0, f
        ));
    }
    s.push_str(&format!(
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">heads pruned (least important first)</text>
<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">accuracy</text>
"##,
        ml + pw / 2.0,
        h - 6.0,
        mt + ph / 2.0,
        mt + ph / 2.0
    ));
    for (i, (name, acc)) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = fractions
            .iter()
            .zip(acc)
            .map(|(f, a)| format!("{:.1},{:.1}", x(*f), y(*a)))
            .collect();
        s.push_str(&format!(
            r##"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>
"##,
            pts.join(" ")
        ));
        for (f, a) in fractions.iter().zip(acc) {
            s.push_str(&format!(
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {:.0}% pruned, accuracy {:.4}</title></circle>
"##,
                x(*f),
                y(*a),
                esc(name),
                f * 100.0,
                a
            ));
        }
        let ly = mt + 14.0 + 20.0 * i as f64;
        s.push_str(&format!(
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="{c}" stroke-width="3"/><text x="{3:.1}" y="{4:.1}">{5}</text>
"##,
            ml + pw + 12.0,
            ly,
            ml + pw + 36.0,
            ml + pw + 42.0,
            ly + 4.0,
            esc(name)
        ));
    }
    s.push_str("</svg>");
    s
}
