//! `gradpath attattr`: self-attention attribution (Hao et al. 2021) of every requested layer in
//! one sweep, with per-layer completeness, head importance, the strongest connections, the
//! attribution tree (`--tree`), JSON and an HTML report.

use super::args::*;
use crate::attribution::TargetKind;
use crate::explain::{AdaptiveOptions, AttAttrOptions, AttAttrReport, Quadrature, Scheme};
use crate::integrate::Rule;
use crate::report::attattr_html;
use crate::{Error, Result};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct AttAttrArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub text: TextArgs,
    // The help is an attribute, not a doc comment: rustdoc would read [CLS] as a link.
    #[arg(
        long,
        help = "A second segment for sentence-pair classifiers ([CLS] TEXT [SEP] PAIR [SEP])"
    )]
    pub text_pair: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Layers to attribute: `all` or a list such as `0,3` (all run in one sweep).
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Quadrature points per layer (the paper: 20).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Quadrature rule: riemann-left (the paper's: α = k/m, k = 0..m−1), gauss-legendre,
    /// riemann-right, riemann-middle, riemann-trapezoid, captum-trapezoid, clenshaw-curtis,
    /// tanh-sinh, gauss-kronrod.
    #[arg(long, default_value = "riemann-left")]
    pub method: String,
    /// Refine each layer's rule until its relative completeness delta is ≤ T.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Point budget per layer for --tolerance.
    #[arg(long, default_value_t = 1024)]
    pub max_points: usize,
    /// Build the attribution tree (encoders, all layers; METHODS.md §2.6).
    #[arg(long)]
    pub tree: bool,
    /// Threshold τ of the tree (normalised attributions ≤ τ are dropped).
    #[arg(long, default_value_t = 0.4, requires = "tree")]
    pub threshold: f64,
    /// The head shown in the HTML heatmaps, `LAYER:HEAD` (default: the most important head).
    #[arg(long)]
    pub head: Option<String>,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `all` or a comma-separated list of layer indices.
pub fn parse_layers(s: &str) -> Result<Option<Vec<usize>>> {
    let s = s.trim();
    if s == "all" {
        return Ok(None);
    }
    let bad = |p: &str| Error::BadValue {
        name: "--layers",
        detail: format!("`{p}` is not a layer index: give `all` or a list such as 0,3"),
    };
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse().map_err(|_| bad(p)))
        .collect::<Result<_>>()?;
    if v.is_empty() {
        return Err(bad(s));
    }
    Ok(Some(v))
}

fn parse_head(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::BadValue {
        name: "--head",
        detail: format!("`{s}`: expected LAYER:HEAD, e.g. 3:7"),
    };
    let (l, h) = s.split_once(':').ok_or_else(bad)?;
    Ok((
        l.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

/// The options of the command, checked before the model is loaded.
pub fn options(a: &AttAttrArgs) -> Result<AttAttrOptions> {
    let rule = Rule::parse(&a.method)?;
    let quadrature = Quadrature {
        rule,
        steps: a.steps,
    };
    quadrature.check()?;
    let adaptive = a.tolerance.map(|tolerance| AdaptiveOptions {
        tolerance,
        scheme: Scheme::Doubling,
        max_points: a.max_points,
    });
    if let Some(ad) = &adaptive {
        ad.scheme_for(&quadrature)?;
    }
    Ok(AttAttrOptions {
        layers: parse_layers(&a.layers)?,
        quadrature,
        adaptive,
        tree: a.tree.then_some(a.threshold),
    })
}

/// `gradpath attattr`.
pub fn run(a: &AttAttrArgs) -> Result<()> {
    let opts = options(a)?;
    let head = a.head.as_deref().map(parse_head).transpose()?;
    let mut input = a.target.input_kind(&a.text, TargetKind::Prob)?;
    input.pair = a.text_pair.clone();
    let options = a.run.options(a.batch.batch)?;
    let (ex, bar) = load(&a.model.model, options, a.run.quiet)?;
    let r = ex
        .attattr(&input, &opts)
        .map_err(|e| a.target.explain(e, ex.model().is_decoder()))?;
    bar.finish_and_clear();
    let shown = match head {
        Some((l, h)) => {
            let i = r
                .layers
                .iter()
                .position(|x| x.layer == l)
                .ok_or_else(|| Error::BadValue {
                    name: "--head",
                    detail: format!("layer {l} was not attributed (see --layers)"),
                })?;
            crate::explain::check_head(l, h, r.n_layers, r.n_heads)?;
            (i, h)
        }
        None => most_important(&r),
    };
    if !a.run.quiet {
        print_summary(&r);
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    a.output.write_json(&r)?;
    if let Some(path) = &a.output.html {
        write(path, &page(&r, shown))?;
    }
    Ok(())
}

/// (index into `r.layers`, head) of the largest head importance.
pub fn most_important(r: &AttAttrReport) -> (usize, usize) {
    let mut best = (0, 0, f64::NEG_INFINITY);
    for (i, l) in r.layers.iter().enumerate() {
        for (h, &v) in l.head_importance.iter().enumerate() {
            if v > best.2 {
                best = (i, h, v);
            }
        }
    }
    (best.0, best.1)
}

fn print_summary(r: &AttAttrReport) {
    let h = &r.header;
    let labels = h.labels();
    outln!("{}", h.model_description);
    outln!(
        "target: {}   ATTATTR, {} {} points per layer{}",
        h.target_description(),
        r.quadrature,
        r.steps,
        r.tolerance
            .map(|t| format!(" (tolerance {t})"))
            .unwrap_or_default()
    );
    outln!(
        "{:>5}  {:>12}  {:>12}  {:>10}  {:>9}  top head (max Attr)",
        "layer",
        "Σ Attr",
        "F(A)−F(0·A)",
        "delta",
        "rel."
    );
    for l in &r.layers {
        let (th, tv) =
            l.head_importance
                .iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                );
        outln!(
            "{:>5}  {:>12.6}  {:>12.6}  {:>10.2e}  {:>9.2e}  {th} ({tv:.4})",
            l.layer,
            l.sum,
            l.f_input - l.f_start,
            l.delta,
            l.relative_delta
        );
    }
    outln!("strongest connections (head-summed; query ← key):");
    for c in r.top_connections.iter().take(10) {
        outln!(
            "  layer {:>2}  {:>16} ← {:<16} {:+.5}",
            c.layer,
            labels[c.from],
            labels[c.to],
            c.attribution
        );
    }
    if let Some(t) = &r.tree {
        outln!(
            "attribution tree (τ = {}): root {:?}, {} edges",
            t.threshold,
            labels[t.root],
            t.edges.len()
        );
        for e in &t.edges {
            outln!(
                "  layer {:>2}  {:>16} → {:<16} {:.3}",
                e.layer,
                labels[e.from],
                labels[e.to],
                e.weight
            );
        }
    }
}

/// The HTML report: completeness per layer, the layer × head importance grid, one head's
/// attribution beside its attention, the strongest connections and the tree.
fn page(r: &AttAttrReport, (li, head): (usize, usize)) -> String {
    use crate::report::attention_html as ah;
    let h = &r.header;
    let toks = &h.labels();
    let l = &r.layers[li];
    let rows = vec![
        ("model", h.model_description.clone()),
        ("text", h.text.clone()),
        ("target", h.target_description()),
        (
            "method",
            format!(
                "ATTATTR (Hao et al. 2021): Attr = A ⊙ ∫₀¹ ∂F(αA)/∂A dα per layer, {} with {} points",
                r.quadrature, r.steps
            ),
        ),
        (
            "worst relative completeness delta",
            format!("{:.2e}", r.worst_relative_delta),
        ),
    ];
    let mut sections = Vec::new();
    for w in &r.warnings {
        sections.push(format!(
            "<p style=\"color:#b91c1c\"><b>warning:</b> {}</p>",
            w.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    let comp: Vec<(Vec<String>, bool)> = r
        .layers
        .iter()
        .map(|l| {
            (
                vec![
                    l.layer.to_string(),
                    format!("{:.6}", l.sum),
                    format!("{:.6}", l.f_input - l.f_start),
                    format!("{:.2e}", l.delta),
                    format!("{:.2e}", l.relative_delta),
                    l.points_used.to_string(),
                ],
                l.relative_delta > crate::explain::ATTATTR_ROUGH,
            )
        })
        .collect();
    sections.push(attattr_html::table(
        "Completeness per layer: Σ Attr against F(A) − F(0·A)",
        &[
            "layer",
            "Σ Attr",
            "F(A) − F(0·A)",
            "delta",
            "relative",
            "points",
        ],
        &comp,
    ));
    let imp: Vec<f64> = r
        .layers
        .iter()
        .flat_map(|l| l.head_importance.iter().copied())
        .collect();
    sections.push(ah::heatmap(
        "Head importance: max over token pairs of the head's attribution (rows: layers, columns: heads)",
        &r.layers
            .iter()
            .map(|l| format!("layer {}", l.layer))
            .collect::<Vec<_>>(),
        &(0..r.n_heads)
            .map(|h| format!("head {h}"))
            .collect::<Vec<_>>(),
        &imp,
        true,
    ));
    let attr: Vec<f64> = l.attribution[head].concat();
    let att: Vec<f64> = l.attention[head].concat();
    sections.push(format!(
        "<h2>Layer {} head {head}: what mattered beside what was looked at (query ↓, key →)</h2>",
        l.layer
    ));
    sections.push(attattr_html::side_by_side(&[
        attattr_html::compact_heatmap("attribution (what mattered)", toks, &attr, true),
        attattr_html::compact_heatmap("attention (what was looked at)", toks, &att, false),
    ]));
    let conn: Vec<(Vec<String>, bool)> = r
        .top_connections
        .iter()
        .map(|c| {
            (
                vec![
                    c.layer.to_string(),
                    format!("{} ({})", toks[c.from], c.from),
                    format!("{} ({})", toks[c.to], c.to),
                    format!("{:+.5}", c.attribution),
                ],
                false,
            )
        })
        .collect();
    sections.push(attattr_html::table(
        "Strongest connections (attribution summed over heads)",
        &["layer", "query (reads)", "key (is read)", "attribution"],
        &conn,
    ));
    if let Some(tree) = &r.tree {
        sections.push(attattr_html::tree_svg(toks, tree));
    }
    ah::page("gradpath · attention attribution", &rows, &sections)
}
