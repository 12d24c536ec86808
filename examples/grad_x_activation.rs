//! A new attribution method written only against the public probe API: gradient × activation
//! at the output of every block (`blocks.{l}.hook_resid_post`), per token, from ONE forward and
//! ONE backward — the probe captures every layer's value and gradient in the same pass.
//!
//! `cargo run --release --example grad_x_activation [MODEL_DIR] [TEXT]`
//! (default: the tiny BERT classifier fixture; any classifier or decoder works).

use gradpath::attribution::probe::{self, Capture, Objective, Request, Rows, Subject};
use gradpath::attribution::{Target, TargetKind};
use gradpath::models::{self, HookName, Site};
use gradpath::DType;

fn main() -> gradpath::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or("tests/fixtures/models/tiny-bert".into());
    let text = args.next().unwrap_or("the movie was great".into());
    let model = models::load(dir.as_ref(), DType::F64)?;
    let enc = models::load_tokenizer(dir.as_ref())?.encode(&text, None)?;
    let subject = Subject::new(model.as_ref(), &enc.ids, &enc.type_ids);
    let kind = TargetKind::Logit;
    let target = match model.is_decoder() {
        // The logit of token 0 after the last position (any token will do for the illustration).
        true => Target::Token {
            position: enc.ids.len() - 1,
            token: 0,
            kind,
        },
        false => Target::Class {
            class: model.labels().len().max(1) - 1,
            kind,
        },
    };

    // One row (the plain input); every block's output captured with its gradient.
    let mut req = Request::new(Rows::Count(1), Objective::Target(&target));
    for l in 0..model.n_layers() {
        req = req.capture(Capture::both(HookName::block(l, Site::ResidPost)));
    }
    let d = model.d_model();
    let mut table: Vec<Vec<f64>> = Vec::new();
    let f = probe::run(&subject, &req, &mut |_, _| {}, &mut |chunk| {
        for (y, g) in chunk.values.iter().zip(&chunk.grads) {
            let (y, g) = (
                y.as_ref().unwrap().to_vec_f64()?,
                g.as_ref().unwrap().to_vec_f64()?,
            );
            // Σ_d y ⊙ ∂F/∂y, per token.
            let dot = |(y, g): (&[f64], &[f64])| y.iter().zip(g).map(|(y, g)| y * g).sum();
            table.push(y.chunks(d).zip(g.chunks(d)).map(dot).collect());
        }
        Ok(())
    })?;

    println!(
        "gradient × activation per block output; F = {:.6}; {}",
        f[0],
        model.describe()
    );
    print!("{:>6}", "layer");
    enc.tokens
        .iter()
        .for_each(|t| print!(" {:>9}", t.chars().take(9).collect::<String>()));
    println!();
    for (l, row) in table.iter().enumerate() {
        print!("{l:>6}");
        row.iter().for_each(|v| print!(" {v:>9.4}"));
        println!();
    }
    assert_eq!(table.len(), model.n_layers());
    assert!(table.iter().flatten().all(|v| v.is_finite()));
    assert!(
        table.iter().all(|r| r.iter().any(|v| *v != 0.0)),
        "every layer carries gradient"
    );
    Ok(())
}
