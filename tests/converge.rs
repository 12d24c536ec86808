//! The quadrature lab (`Explainer::converge`, `gradpath converge`) on the tiny random models in
//! f64: each rule integrates exactly as `ig` does at the same rule and count; algebraic rules
//! show their order; nested rules reuse their points; the adaptive reference is converged and
//! complete; on a zero baseline into RMSNorm only tanh–sinh (nodes crowding at α = 0)
//! converges, and the completeness delta can look small while the attributions are wrong.

use gradpath::attribution::converge::ConvergeConfig;
use gradpath::attribution::Baseline;
use gradpath::explain::{
    ConvergeOptions, ConvergeReport, Explainer, IgOptions, Input, Options, PathOptions, Quadrature,
};
use gradpath::integrate::Rule;
use gradpath::DType;
use std::path::PathBuf;

const TEXT: &str = "The quick brown fox jumps over the lazy dog.";

fn explainer(name: &str) -> Explainer {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name);
    Explainer::load(
        d,
        Options {
            dtype: DType::F64,
            ..Options::default()
        },
    )
    .unwrap()
}

fn run(
    ex: &Explainer,
    input: &Input,
    baseline: Baseline,
    rules: &[Rule],
    points: &[usize],
) -> ConvergeReport {
    ex.converge(
        input,
        &ConvergeOptions {
            baseline,
            config: ConvergeConfig::new(rules.to_vec(), points.to_vec()),
        },
    )
    .unwrap()
}

#[test]
fn rules_match_ig_show_their_order_and_nest() {
    let ex = explainer("tiny-bert");
    let input = Input::text(TEXT).class("1");
    let rules = [
        Rule::GaussLegendre,
        Rule::RiemannLeft,
        Rule::RiemannTrapezoid,
        Rule::ClenshawCurtis,
        Rule::TanhSinh,
    ];
    let counts = [5, 9, 17, 33, 65];
    let r = run(&ex, &input, Baseline::Pad, &rules, &counts);
    assert!(r.reference.converged, "{:?}", r.reference);
    assert!(
        r.reference.relative_delta < 1e-12,
        "{}",
        r.reference.relative_delta
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // Every (rule, count) is what `ig` gives with that rule and count.
    for rc in &r.rules {
        for run in [&rc.runs[0], rc.runs.last().unwrap()] {
            let o = IgOptions {
                path: PathOptions {
                    baseline: Baseline::Pad,
                    quadrature: Quadrature {
                        rule: rc.rule,
                        steps: run.requested,
                    },
                },
                adaptive: None,
            };
            let ig = ex.ig(&input, &o).unwrap();
            for (a, b) in run.attributions.iter().zip(&ig.attributions) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1e-3),
                    "{} at {}: {a} vs {b}",
                    rc.rule,
                    run.requested
                );
            }
            // Both deltas are differences of nearly equal sums: equal up to rounding (≤ 1e-13).
            let d = (run.relative_delta - ig.relative_delta).abs();
            assert!(
                d <= 1e-9 * ig.relative_delta + 1e-13,
                "{}: {} vs {}",
                rc.rule,
                run.relative_delta,
                ig.relative_delta
            );
        }
    }
    let by = |rule: Rule| r.rules.iter().find(|x| x.rule == rule).unwrap();
    // Algebraic orders: 1 for the left sum, 2 for the trapezoid.
    let left = by(Rule::RiemannLeft).order.unwrap();
    let trap = by(Rule::RiemannTrapezoid).order.unwrap();
    assert!((0.85..1.15).contains(&left), "left order {left}");
    assert!((1.8..2.2).contains(&trap), "trapezoid order {trap}");
    // Spectral rules reach the reference's accuracy.
    assert!(by(Rule::GaussLegendre).runs[3].attribution_error < 1e-10);
    assert!(by(Rule::ClenshawCurtis).runs[4].attribution_error < 1e-10);
    // Nested rules at 5, 9, 17, 33, 65 (n → 2n − 1) reuse every point: refining costs the last
    // rule's points only. Gauss–Legendre pays for each count.
    for rule in [Rule::RiemannTrapezoid, Rule::ClenshawCurtis, Rule::TanhSinh] {
        let last = by(rule).runs.last().unwrap();
        assert_eq!(last.passes_refining, 65, "{rule}");
    }
    // (odd Gauss–Legendre rules share only their middle node, α = ½).
    assert_eq!(
        by(Rule::GaussLegendre).runs[4].passes_refining,
        5 + 9 + 17 + 33 + 65 - 4
    );
    // Shared nodes are evaluated once: fewer distinct passes than the rules' own sums.
    let own: usize = r
        .rules
        .iter()
        .map(|x| x.runs.last().unwrap().passes_refining)
        .sum();
    assert!(
        r.total_passes < own + r.reference.points,
        "{} vs {}",
        r.total_passes,
        own + r.reference.points
    );
    // The successive estimate at a count is the error of the count before, roughly: for the
    // trapezoid it is within a factor 3 of the previous count's true error.
    let t = &by(Rule::RiemannTrapezoid).runs;
    for k in 2..t.len() {
        let est = t[k].successive_estimate.unwrap();
        let truth = t[k - 1].attribution_error;
        assert!(
            est > truth / 3.0 && est < truth * 3.0,
            "count {}: {est} vs {truth}",
            t[k].requested
        );
    }
}

#[test]
fn zero_baseline_into_rmsnorm_needs_tanh_sinh() {
    let ex = explainer("tiny-llama");
    let input = Input::text(TEXT);
    let r = run(
        &ex,
        &input,
        Baseline::Zero,
        &[Rule::GaussLegendre, Rule::TanhSinh],
        &[64, 256, 512],
    );
    assert!(r.reference.converged, "{:?}", r.reference);
    assert!(r.reference.relative_delta < 1e-10);
    let gl = &r.rules[0].runs;
    let ts = &r.rules[1].runs;
    // Gauss–Legendre never resolves the jump at α ≈ 0: 30 % error at 512 points ...
    assert!(gl[2].attribution_error > 0.1, "{}", gl[2].attribution_error);
    // ... while tanh–sinh converges double-exponentially.
    assert!(
        ts[2].attribution_error < 1e-5,
        "{}",
        ts[2].attribution_error
    );
    assert!(ts[2].attribution_error < ts[1].attribution_error * 1e-1);
    // Completeness can look fine while the attributions are far off (cancellation).
    assert!(gl
        .iter()
        .any(|x| x.relative_delta < 0.25 * x.attribution_error));
}

#[test]
fn cli_writes_json_and_html_and_refuses_bad_lists() {
    let gp = env!("CARGO_BIN_EXE_gradpath");
    let dir = std::env::temp_dir().join(format!("gradpath-converge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert");
    let data = dir.join("in.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"the film was good.\"}\n{\"text\": \"a dull, bad film.\"}\n",
    )
    .unwrap();
    let (json, html) = (dir.join("c.json"), dir.join("c.html"));
    let o = std::process::Command::new(gp)
        .args(["converge", "--model"])
        .arg(&model)
        .args(["--data"])
        .arg(&data)
        .args([
            "--rules",
            "gauss-legendre,riemann-left",
            "--points",
            "4,8",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["examples"].as_array().unwrap().len(), 2);
    assert_eq!(v["summary"]["texts"], 2);
    assert_eq!(v["summary"]["rules"][1]["rule"], "riemann-left");
    assert_eq!(v["examples"][0]["dtype"], "f64");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("riemann-left"));
    for bad in [["--rules", "simpson"], ["--points", "0,8"]] {
        let o = std::process::Command::new(gp)
            .args(["converge", "--model"])
            .arg(&model)
            .args(["--text", TEXT])
            .args(bad)
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.lines().count() <= 3 && !err.contains("panicked"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
