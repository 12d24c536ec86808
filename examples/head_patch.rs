//! A custom patch experiment on all-MiniLM-L6-v2: remove one attention head at a time and measure
//! how the target (the cosine similarity of two sentences) changes. A head is removed twice, by
//! `Hooks::mask_heads` and by patching its rows of `blocks.{l}.attn.hook_pattern` with zeros; the
//! two must agree.
//!
//! `cargo run --release --example head_patch [MODEL_DIR]`.

use gradpath::attribution::{Baseline, Target};
use gradpath::explain::{Explainer, Input, Options};
use gradpath::models::{Batch, Hooks};
use gradpath::{Tape, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/all-MiniLM-L6-v2").to_string()
    });
    if !std::path::Path::new(&dir).join("config.json").exists() {
        eprintln!("head_patch: no model at {dir}; run `bash scripts/fetch-models.sh` first");
        std::process::exit(2);
    }

    let ex = Explainer::load(&dir, Options::default())?;
    let input = Input::text("A man is playing a guitar on stage.")
        .similar_to("Someone performs music for an audience.");
    let p = ex.prepare(&input, &Baseline::Pad, true)?;
    let target = p.target()?;
    let batch = Batch::repeat(&p.encoded.ids, &p.encoded.type_ids, 1);
    // F after one forward with `hooks`.
    let f = |hooks: Hooks| -> gradpath::Result<f64> {
        let tape = Tape::new();
        let _g = tape.no_grad();
        let mut hooks = hooks;
        let out = ex.model().forward(&batch, &mut hooks)?;
        Ok(target.eval(&out)?.value().to_vec_f64()?[0])
    };
    let f0 = f(Hooks::new())?;
    let (n_layers, n_heads, n) = (ex.model().n_layers(), ex.model().n_heads(), p.encoded.len());
    println!("F = {f0:.6} ({})", describe(target));
    println!("ΔF when one head is removed (rows: layers, columns: heads)");
    let mut worst = (0, 0, 0.0f64);
    for l in 0..n_layers {
        print!("L{l:<3}");
        for h in 0..n_heads {
            let mut factors = vec![1.0; n_heads];
            factors[h] = 0.0;
            let masked = f(Hooks::new().mask_heads(l, factors))?;
            // The same experiment as a patch of the pattern: keep every head but h, patch in 0.
            let mut keep = vec![1.0; n_heads * n * n];
            keep[h * n * n..(h + 1) * n * n].fill(0.0);
            let dtype = ex.model().dtype();
            let shape = [1, n_heads, n, n];
            let patched = f(Hooks::new().patch(
                &format!("blocks.{l}.attn.hook_pattern"),
                Tensor::from_f64(&keep, &shape, dtype)?,
                Tensor::zeros(&shape, dtype),
            ))?;
            assert!(
                (masked - patched).abs() < 1e-5,
                "layer {l} head {h}: mask {masked} vs patch {patched}"
            );
            let d = masked - f0;
            if d.abs() > worst.2.abs() {
                worst = (l, h, d);
            }
            print!(" {d:+.4}");
        }
        println!();
    }
    println!(
        "largest change: layer {} head {}: ΔF = {:+.5}",
        worst.0, worst.1, worst.2
    );
    Ok(())
}

fn describe(t: &Target) -> &'static str {
    match t {
        Target::Similarity { .. } => "cosine similarity",
        Target::Class { .. } => "class",
        Target::Token { .. } => "next token",
        Target::Sum { .. } => "answer (sum of next-token terms)",
    }
}
