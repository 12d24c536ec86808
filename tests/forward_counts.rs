//! Every method's forwards go through the probe, which counts them: layer IG and conductance run
//! exactly the forwards their path points and endpoints need (no shape or name probing: boundary
//! names and shapes come from the static registry).

use gradpath::attribution::probe::forward_count;
use gradpath::attribution::{
    integrated_gradients, layer_conductance, layer_integrated_gradients, PathProblem, Target,
    TargetKind,
};
use gradpath::integrate::Rule;
use gradpath::models::{self, Model};
use gradpath::{DType, Tensor};
use std::path::Path;

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (f0, r0) = forward_count();
    let out = f();
    let (f1, r1) = forward_count();
    (out, f1 - f0, r1 - r0)
}

const IDS: [usize; 5] = [2, 11, 25, 7, 3];
const TYPES: [usize; 5] = [0; 5];

/// The tiny BERT classifier, the word embeddings of `IDS` and of a [PAD] baseline.
fn tiny_bert() -> (Box<dyn Model>, Tensor, Tensor) {
    let m = models::load(Path::new("tests/fixtures/models/tiny-bert"), DType::F64).unwrap();
    let x = m.word_embeddings(&IDS).unwrap();
    let pad = m.word_embeddings(&[0; 5]).unwrap();
    (m, x, pad)
}

fn problem<'a>(m: &'a dyn Model, x: &'a Tensor, b: &'a Tensor, t: &'a Target) -> PathProblem<'a> {
    PathProblem {
        model: m,
        ids: &IDS,
        type_ids: &TYPES,
        boundary: "hook_embed",
        input: x,
        baseline: b,
        target: t,
    }
}

#[test]
fn layer_methods_run_only_the_forwards_they_need() {
    let (m, x, pad) = tiny_bert();
    let target = Target::Class {
        class: 1,
        kind: TargetKind::Logit,
    };
    let p = problem(m.as_ref(), &x, &pad, &target);
    for (steps, batch) in [(8usize, 8usize), (8, 3), (7, 4), (20, 50)] {
        let (al, w) = Rule::GaussLegendre.nodes_weights(steps).unwrap();
        let chunks = steps.div_ceil(batch);

        // Layer IG: one forward for the layer's path ends (and F there), then the path chunks
        // (the start probe rides along in them).
        let (r, forwards, rows) = counted(|| {
            layer_integrated_gradients(
                &p,
                "blocks.1.hook_resid_mid",
                &al,
                &w,
                batch,
                &mut |_, _| {},
            )
        });
        let r = r.unwrap();
        assert_eq!(
            forwards,
            1 + chunks,
            "layer IG, {steps} steps, batch {batch}"
        );
        assert_eq!(rows, 2 + steps + 1, "layer IG rows");
        assert!(r.layers[0].relative_delta.unwrap() < 1e-3);

        // Token IG: one forward for F(x), F(x′), then the path chunks.
        let (_, forwards, _) =
            counted(|| integrated_gradients(&p, &al, &w, batch, &mut |_, _| {}).unwrap());
        assert_eq!(forwards, 1 + chunks, "token IG");

        // Conductance of every layer: F at the ends, then one sweep of the n + 1 points.
        let names: Vec<String> = (0..m.n_layers())
            .map(|l| format!("blocks.{l}.hook_resid_post"))
            .collect();
        let alphas: Vec<f64> = (0..=steps).map(|k| k as f64 / steps as f64).collect();
        let (r, forwards, rows) =
            counted(|| layer_conductance(&p, &names, &alphas, batch, &mut |_, _| {}).unwrap());
        assert_eq!(forwards, 1 + (steps + 1).div_ceil(batch), "conductance");
        assert_eq!(rows, 2 + steps + 1, "conductance rows");
        assert_eq!(r.layers.len(), m.n_layers());
    }
}

#[test]
fn unknown_names_fail_before_any_forward() {
    let (m, x, pad) = tiny_bert();
    let target = Target::Class {
        class: 0,
        kind: TargetKind::Prob,
    };
    let p = problem(m.as_ref(), &x, &pad, &target);
    let (al, w) = Rule::GaussLegendre.nodes_weights(4).unwrap();
    let (r, forwards, _) = counted(|| {
        layer_integrated_gradients(&p, "blocks.9.hook_resid_post", &al, &w, 4, &mut |_, _| {})
    });
    let e = r.unwrap_err();
    assert!(matches!(e, gradpath::Error::UnknownBoundary { .. }), "{e}");
    assert!(e.to_string().contains("blocks.1.hook_resid_post"), "{e}");
    assert_eq!(forwards, 0);
    let names = vec!["blocks.0.hook_nope".to_string()];
    let (r, forwards, _) =
        counted(|| layer_conductance(&p, &names, &[0.0, 0.5, 1.0], 4, &mut |_, _| {}));
    assert!(r.is_err());
    assert_eq!(forwards, 0);
}
