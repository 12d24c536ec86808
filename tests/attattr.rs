//! ATTATTR (issue 12) against the hand-written PyTorch reference of
//! `tests/reference/make_attattr_goldens.py` (one layer's attention probabilities substituted by
//! α·A through a forward hook, as the authors' code does) on the tiny BERT, GPT-2 and Llama
//! fixtures in f64, plus the properties the method must have: α = 1 reproduces the plain forward
//! bit for bit, completeness per layer, causal zeros, one sweep for all layers, adaptive
//! refinement, f32 against the f64 reference, and the attribution tree of the authors' code.

use gradpath::attribution::attattr::{
    attention_attribution, attention_attribution_adaptive, attribution_tree, AttAttr,
    AttAttrProblem,
};
use gradpath::attribution::probe::{self, Chunking};
use gradpath::attribution::{Target, TargetKind};
use gradpath::integrate::Rule;
use gradpath::models::{self, Model};
use gradpath::DType;
use serde_json::Value;

fn goldens() -> Value {
    let s = std::fs::read_to_string("tests/fixtures/attattr_goldens.json")
        .expect("tests/fixtures/attattr_goldens.json (make_attattr_goldens.py)");
    serde_json::from_str(&s).unwrap()
}

fn model(name: &str, dtype: DType) -> Box<dyn Model> {
    models::load(
        std::path::Path::new(&format!("tests/fixtures/models/{name}")),
        dtype,
    )
    .unwrap()
}

fn target(c: &Value) -> Target {
    let t = &c["target"];
    let kind = TargetKind::parse(t["kind"].as_str().unwrap()).unwrap();
    match t["type"].as_str().unwrap() {
        "class" => Target::Class {
            class: t["class"].as_u64().unwrap() as usize,
            kind,
        },
        _ => Target::Token {
            position: t["position"].as_u64().unwrap() as usize,
            token: t["token"].as_u64().unwrap() as usize,
            kind,
        },
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => panic!("not a number array"),
    }
}

fn ids(c: &Value) -> Vec<usize> {
    c["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// max |a − b| / max |b|.
fn rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn run(
    m: &dyn Model,
    ids: &[usize],
    t: &Target,
    layers: &[usize],
    alphas: &[f64],
    weights: &[f64],
    chunking: Chunking,
) -> AttAttr {
    let type_ids = vec![0; ids.len()];
    let p = AttAttrProblem {
        model: m,
        ids,
        type_ids: &type_ids,
        target: t,
        layers,
        chunking,
    };
    attention_attribution(&p, alphas, weights, &mut |_, _| {}).unwrap()
}

#[test]
fn matches_the_pytorch_reference_in_f64() {
    let g = goldens();
    let mut worst = 0.0f64;
    for c in g["cases"].as_array().unwrap() {
        let name = c["model"].as_str().unwrap();
        let m = model(name, DType::F64);
        let rule = Rule::parse(c["rule"].as_str().unwrap()).unwrap();
        let n = c["steps"].as_u64().unwrap() as usize;
        let (alphas, weights) = rule.nodes_weights(n).unwrap();
        // Our nodes are the reference's (k/m; numpy's leggauss, whose outermost weights are off
        // by up to 1e-12 relative, tests/integrate.rs).
        assert!(rel(&alphas, &flat(&c["alphas"])) < 1e-14);
        assert!(rel(&weights, &flat(&c["weights"])) < 1e-12);
        let layers: Vec<usize> = (0..m.n_layers()).collect();
        let t = target(c);
        let r = run(
            m.as_ref(),
            &ids(c),
            &t,
            &layers,
            &alphas,
            &weights,
            Chunking::Rows(7),
        );
        let what = format!("{name} {} {n} {}", rule.name(), c["target"]["kind"]);
        let f_in = c["f_input"].as_f64().unwrap();
        assert!(
            (r.f_input - f_in).abs() <= 1e-12 * f_in.abs(),
            "{what}: F {} vs {f_in}",
            r.f_input
        );
        for (got, want) in r.layers.iter().zip(c["layers"].as_array().unwrap()) {
            let e_att = rel(&got.attention, &flat(&want["attention"]));
            let e_attr = rel(&got.attribution, &flat(&want["attribution"]));
            let fs = want["f_start"].as_f64().unwrap();
            let sum = want["sum"].as_f64().unwrap();
            assert!(
                e_att < 1e-12,
                "{what} layer {}: attention {e_att:e}",
                got.layer
            );
            assert!(
                e_attr < 1e-9,
                "{what} layer {}: attribution {e_attr:e}",
                got.layer
            );
            assert!((got.f_start - fs).abs() <= 1e-12 * fs.abs().max(1e-3));
            assert!((got.sum - sum).abs() <= 1e-9 * sum.abs().max(1e-6));
            worst = worst.max(e_attr);
        }
    }
    eprintln!("worst relative attribution error over all cases and layers: {worst:.2e}");
}

#[test]
fn alpha_one_is_the_plain_forward_bit_for_bit() {
    let g = goldens();
    for c in g["cases"].as_array().unwrap().iter().step_by(4) {
        for dtype in [DType::F64, DType::F32] {
            let m = model(c["model"].as_str().unwrap(), dtype);
            let layers: Vec<usize> = (0..m.n_layers()).collect();
            let r = run(
                m.as_ref(),
                &ids(c),
                &target(c),
                &layers,
                &[1.0],
                &[1.0],
                Chunking::Rows(1),
            );
            // The plain forward of one row (the sweep ran one row per forward too: a batch of
            // another size may round differently in the GEMMs).
            let (ids, t) = (ids(c), target(c));
            let type_ids = vec![0; ids.len()];
            let s = probe::Subject::new(m.as_ref(), &ids, &type_ids);
            let plain = probe::values(
                &s,
                probe::Rows::Count(1),
                probe::Objective::Target(&t),
                Chunking::Rows(1),
            )
            .unwrap();
            for l in &r.layers {
                assert_eq!(l.path_f, plain, "layer {} ({dtype})", l.layer);
            }
        }
        // The reference says the same of PyTorch.
        let f = c["f_input"].as_f64().unwrap();
        assert!(flat(&c["patched_at_one"]).iter().all(|&v| v == f));
    }
}

#[test]
fn completeness_per_layer_and_its_error_shrinking() {
    let m = model("tiny-bert", DType::F64);
    let ids = [2, 41, 17, 96, 55, 120, 8, 73, 3];
    let t = Target::Class {
        class: 1,
        kind: TargetKind::Prob,
    };
    let layers = [0, 1];
    let deltas = |rule: Rule, n: usize| -> Vec<f64> {
        let (a, w) = rule.nodes_weights(n).unwrap();
        run(m.as_ref(), &ids, &t, &layers, &a, &w, Chunking::default())
            .layers
            .iter()
            .map(|l| l.relative_delta)
            .collect()
    };
    // Left Riemann: four times the points cut the error at least as O(1/m) does (here faster:
    // the integrand has nearly equal ends, so the O(1/m²) term leads).
    let (d20, d80) = (deltas(Rule::RiemannLeft, 20), deltas(Rule::RiemannLeft, 80));
    for (a, b) in d20.iter().zip(&d80) {
        assert!(
            *a > 1e-6 && *b < 0.3 * a,
            "riemann-left 20 → 80: {a:e} → {b:e}"
        );
    }
    // Gauss–Legendre 50 is exact to rounding on this smooth path.
    for d in deltas(Rule::GaussLegendre, 50) {
        assert!(d < 1e-12, "gauss-legendre 50: {d:e}");
    }
}

#[test]
fn decoders_attribute_nothing_above_the_causal_diagonal() {
    for name in ["tiny-gpt2", "tiny-llama"] {
        let m = model(name, DType::F64);
        let ids = [12, 41, 17, 96, 55];
        let t = Target::Token {
            position: 4,
            token: 7,
            kind: TargetKind::LogProb,
        };
        let (a, w) = Rule::GaussLegendre.nodes_weights(16).unwrap();
        let r = run(m.as_ref(), &ids, &t, &[0, 1], &a, &w, Chunking::default());
        let n = ids.len();
        for l in &r.layers {
            assert_eq!(l.head_importance.len(), m.n_heads());
            for h in 0..m.n_heads() {
                let attr = l.head(h, n);
                assert!(attr.iter().any(|v| *v != 0.0));
                for i in 0..n {
                    for j in i + 1..n {
                        assert_eq!(attr[i * n + j], 0.0, "{name} layer {} head {h}", l.layer);
                    }
                }
            }
        }
    }
}

#[test]
fn all_layers_run_in_one_sweep() {
    let m = model("tiny-bert", DType::F64);
    let ids = [2, 41, 17, 96, 55, 3];
    let t = Target::Class {
        class: 0,
        kind: TargetKind::Prob,
    };
    let (a, w) = Rule::RiemannLeft.nodes_weights(20).unwrap();
    let (f0, r0) = probe::forward_count();
    // 2 layers × 20 points = 40 rows in batches of 16: 3 forwards, plus one single-row forward
    // per path end (the plain input, and each layer's zero pattern).
    let both = run(m.as_ref(), &ids, &t, &[0, 1], &a, &w, Chunking::Rows(16));
    let (f1, r1) = probe::forward_count();
    assert_eq!((f1 - f0, r1 - r0), (3 + 3, 40 + 3));
    // Mixed batches give what one layer at a time gives.
    for (i, l) in [0, 1].into_iter().enumerate() {
        let one = run(m.as_ref(), &ids, &t, &[l], &a, &w, Chunking::Rows(20));
        assert!(rel(&both.layers[i].attribution, &one.layers[0].attribution) < 1e-12);
        assert_eq!(both.layers[i].layer, l);
    }
}

#[test]
fn adaptive_refinement_meets_the_tolerance_per_layer() {
    // ΔF is small here (1e-5: an unlikely token), and trapezoids converge as O(1/n²): 1e-4 takes
    // 129 points on layer 0.
    let m = model("tiny-gpt2", DType::F64);
    let ids = [12, 41, 17, 96, 55, 120];
    let t = Target::Token {
        position: 5,
        token: 3,
        kind: TargetKind::Prob,
    };
    let type_ids = vec![0; ids.len()];
    let layers = [0, 1];
    let p = AttAttrProblem {
        model: m.as_ref(),
        ids: &ids,
        type_ids: &type_ids,
        target: &t,
        layers: &layers,
        chunking: Chunking::default(),
    };
    let r =
        attention_attribution_adaptive(&p, Rule::RiemannTrapezoid, 3, 1e-4, 2000, &mut |_, _| {})
            .unwrap();
    for l in &r.layers {
        let rf = l.refinement.as_ref().unwrap();
        assert!(rf.converged, "layer {}: {:e}", l.layer, rf.delta);
        assert!(
            l.relative_delta <= 1e-4,
            "layer {}: {:e}",
            l.layer,
            l.relative_delta
        );
        // Nested trapezoids reuse every point.
        assert_eq!(l.points_used, rf.points_used);
    }
}

#[test]
fn f32_agrees_with_the_f64_reference() {
    let g = goldens();
    let c = &g["cases"][1]; // tiny-bert, Gauss–Legendre 50, prob
    let m = model(c["model"].as_str().unwrap(), DType::F32);
    let (a, w) = Rule::GaussLegendre.nodes_weights(50).unwrap();
    let layers: Vec<usize> = (0..m.n_layers()).collect();
    let r = run(
        m.as_ref(),
        &ids(c),
        &target(c),
        &layers,
        &a,
        &w,
        Chunking::default(),
    );
    for (got, want) in r.layers.iter().zip(c["layers"].as_array().unwrap()) {
        let e = rel(&got.attribution, &flat(&want["attribution"]));
        assert!(e < 1e-4, "layer {}: {e:e}", got.layer);
    }
}

#[test]
fn the_tree_is_the_authors_tree() {
    let g = goldens();
    for c in g["trees"].as_array().unwrap() {
        let att = c["attr"].as_array().unwrap();
        let n = att[0].as_array().unwrap().len();
        let per_layer: Vec<Vec<f64>> = att.iter().map(flat).collect();
        let t = attribution_tree(&per_layer, n, 0.4).unwrap();
        assert_eq!(t.root as u64, c["root"].as_u64().unwrap());
        let edges: Vec<[usize; 2]> = t.edges.iter().map(|e| [e.from, e.to]).collect();
        let want: Vec<[usize; 2]> = c["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                [
                    e[0].as_u64().unwrap() as usize,
                    e[1].as_u64().unwrap() as usize,
                ]
            })
            .collect();
        assert_eq!(edges, want);
        assert!(!edges.is_empty());
        let heights = flat(&c["heights"]);
        for node in &t.nodes {
            assert!((node.height - heights[node.token]).abs() < 1e-15);
        }
        // Every edge's weight is a normalised attribution above the threshold.
        assert!(t.edges.iter().all(|e| e.weight > 0.4));
    }
    // Too few layers is an error, not a panic.
    assert!(attribution_tree(&[vec![0.0; 4]], 2, 0.4).is_err());
}

#[test]
fn bad_layers_are_errors() {
    let m = model("tiny-bert", DType::F64);
    let ids = [2, 41, 3];
    let t = Target::Class {
        class: 0,
        kind: TargetKind::Prob,
    };
    let type_ids = [0; 3];
    for layers in [&[5usize][..], &[0, 0][..], &[][..]] {
        let p = AttAttrProblem {
            model: m.as_ref(),
            ids: &ids,
            type_ids: &type_ids,
            target: &t,
            layers,
            chunking: Chunking::default(),
        };
        assert!(attention_attribution(&p, &[0.5], &[1.0], &mut |_, _| {}).is_err());
    }
}

#[test]
fn taylor_head_importance_matches_the_authors_formula() {
    use gradpath::explain::{AttAttrOptions, Explainer, HeadCriterion, Options};
    use gradpath::train::data::Example;
    let g = goldens();
    let c = &g["taylor"];
    let ex = Explainer::load(
        "tests/fixtures/models/tiny-bert",
        Options {
            dtype: DType::F64,
            ..Options::default()
        },
    )
    .unwrap();
    let e = Example {
        id: "0".into(),
        text: c["text"].as_str().unwrap().into(),
        text_pair: None,
        label: c["label"].as_u64().unwrap() as usize,
        depth: None,
    };
    assert_eq!(
        ex.encode(&e.text, false).unwrap().ids,
        ids(c),
        "the tokenizers agree"
    );
    let s = ex
        .head_importance(
            &[e],
            HeadCriterion::Taylor,
            &AttAttrOptions::default(),
            0,
            &mut |_, _| {},
        )
        .unwrap();
    let got = s.importance.concat();
    let e = rel(&got, &flat(&c["importance"]));
    assert!(e < 1e-12, "taylor: {e:e}");
}
