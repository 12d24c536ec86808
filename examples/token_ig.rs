//! Token Integrated Gradients on all-MiniLM-L6-v2: which tokens make two sentences similar, and
//! the completeness check Σ attributions = F(x) − F(x′) + δ.
//!
//! `cargo run --release --example token_ig [MODEL_DIR]` (default: models/all-MiniLM-L6-v2, fetched
//! by scripts/fetch-models.sh).

use gradpath::explain::{Explainer, IgOptions, Input, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/all-MiniLM-L6-v2").to_string()
    });
    if !std::path::Path::new(&dir).join("config.json").exists() {
        eprintln!("token_ig: no model at {dir}; run `bash scripts/fetch-models.sh` first");
        std::process::exit(2);
    }

    let ex = Explainer::load(&dir, Options::default())?;
    let input = Input::text("A man is playing a guitar on stage.")
        .similar_to("Someone performs music for an audience.");
    let r = ex.ig(&input, &IgOptions::default())?;

    println!("{}", r.header.model_description);
    println!("target: {}", r.header.target_description());
    for (token, score) in r.header.tokens.iter().zip(&r.attributions) {
        println!("{token:>12} {score:+.5}");
    }
    let sum: f64 = r.attributions.iter().sum();
    println!(
        "Σ attributions = {sum:.6}   F(x) − F(x′) = {:.6}   δ = {:+.2e}   relative δ = {:.2e}",
        r.f_input - r.f_baseline,
        r.delta,
        r.relative_delta
    );
    assert!(
        r.relative_delta < 1e-3,
        "completeness: relative delta {} is not small",
        r.relative_delta
    );
    Ok(())
}
