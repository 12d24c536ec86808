//! A self-contained HTML heatmap of a matrix (rows × columns of labelled cells, empty cells
//! allowed): generation attribution (generated tokens × input tokens). Colours as in
//! [`super::html`]: green supports, red opposes, scaled per row by the row's max |value|.

use super::html::{colour, esc};

/// One page: title, lines of facts above the grid, the grid, and notes (warnings) below.
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub facts: &'a [String],
    pub row_labels: &'a [String],
    /// A short note per row (e.g. its completeness delta), shown at the end of the row.
    pub row_notes: &'a [String],
    pub col_labels: &'a [String],
    pub values: &'a [Vec<Option<f64>>],
    pub warnings: &'a [String],
}

pub fn render(h: &Heatmap) -> String {
    let mut rows = String::new();
    for (i, row) in h.values.iter().enumerate() {
        let m = row
            .iter()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-300);
        rows.push_str(&format!(
            "<tr><th class=\"r\">{}</th>",
            esc(h.row_labels.get(i).map(String::as_str).unwrap_or(""))
        ));
        for (j, v) in row.iter().enumerate() {
            let col = esc(h.col_labels.get(j).map(String::as_str).unwrap_or(""));
            match v {
                Some(v) => rows.push_str(&format!(
                    "<td style=\"background:{}\" title=\"{col}: {v:.6}\">{:.2}</td>",
                    colour(v / m),
                    v
                )),
                None => rows.push_str("<td class=\"na\"></td>"),
            }
        }
        rows.push_str(&format!(
            "<td class=\"note\">{}</td></tr>\n",
            esc(h.row_notes.get(i).map(String::as_str).unwrap_or(""))
        ));
    }
    let head: String = h
        .col_labels
        .iter()
        .map(|c| format!("<th class=\"c\"><div>{}</div></th>", esc(c)))
        .collect();
    let facts: String = h
        .facts
        .iter()
        .map(|f| format!("<li>{}</li>", esc(f)))
        .collect();
    let warnings: String = h
        .warnings
        .iter()
        .map(|w| format!("<p class=\"warn\">⚠ {}</p>", esc(w)))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#111}}
table{{border-collapse:collapse;font-size:12px}}
td{{border:1px solid #eee;padding:3px 5px;text-align:right;font-variant-numeric:tabular-nums;min-width:34px}}
td.na{{background:repeating-linear-gradient(45deg,#f4f4f4,#f4f4f4 4px,#fff 4px,#fff 8px)}}
td.note{{border:none;text-align:left;color:#555;white-space:nowrap}}
th.r{{text-align:right;padding-right:8px;white-space:pre;font-family:ui-monospace,monospace}}
th.c{{height:90px;vertical-align:bottom;font-family:ui-monospace,monospace;font-weight:normal}}
th.c div{{writing-mode:vertical-rl;transform:rotate(180deg);white-space:pre}}
.warn{{background:#fff7e6;border-left:4px solid #f59e0b;padding:6px 10px}}
</style></head><body>
<h1 style="font-size:20px">{title}</h1>
<ul>{facts}</ul>
{warnings}
<table><thead><tr><th></th>{head}<th></th></tr></thead><tbody>
{rows}</tbody></table>
<p style="color:#555;font-size:12px">Rows: explained tokens; columns: the tokens they are attributed to. Green supports, red opposes; each row is scaled by its own max |value|; hatched cells did not exist yet at that step. Hover a cell for its value.</p>
</body></html>
"#,
        title = esc(h.title)
    )
}
