//! The [SEP] conductance curve across the layers of all-MiniLM-L6-v2 (the Captum BERT tutorial's
//! `summarize_attributions` of `LayerConductance`), every layer from one sweep of path points.
//!
//! `cargo run --release --example sep_conductance [MODEL_DIR]`.

use gradpath::explain::{ConductanceOptions, Explainer, Input, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/all-MiniLM-L6-v2").to_string()
    });
    if !std::path::Path::new(&dir).join("config.json").exists() {
        eprintln!("sep_conductance: no model at {dir}; run `bash scripts/fetch-models.sh` first");
        std::process::exit(2);
    }

    let ex = Explainer::load(&dir, Options::default())?;
    let input = Input::text("A man is playing a guitar on stage.")
        .similar_to("Someone performs music for an audience.");
    let options = ConductanceOptions {
        token: Some("[SEP]".into()),
        ..ConductanceOptions::default()
    };
    let r = ex.conductance(&input, &options)?;

    let curve = r.token.as_ref().ok_or("no token curve")?;
    println!(
        "{} layers, {} path points in one sweep; token {} `{}`",
        r.layers.len(),
        r.points,
        curve.index,
        curve.token
    );
    println!("layer   score      score / ‖layer‖   relative δ");
    for (i, l) in r.layer_indices.iter().enumerate() {
        println!(
            "{l:>5}   {:+.5}   {:+.4}           {:.2e}",
            curve.values[i],
            curve.normalised[i],
            r.layers[i].relative_delta.unwrap_or(f64::NAN)
        );
    }
    assert_eq!(r.layers.len(), ex.model().n_layers(), "one entry per layer");
    assert!(curve.normalised.iter().all(|v| v.abs() <= 1.0 + 1e-12));
    Ok(())
}
