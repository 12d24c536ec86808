//! A new attribution method written only against the public probe API: gradient × activation
//! at the output of every block (`blocks.{l}.hook_resid_post`), per token, from ONE forward and
//! ONE backward — the probe captures every layer's value and gradient in the same pass.
//!
//! Run: `cargo run --release --example grad_x_activation [MODEL_DIR] [TEXT]`
//! (default: the tiny BERT classifier fixture and a short sentence).

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
    let tok = models::load_tokenizer(dir.as_ref())?;
    let enc = tok.encode(&text, None)?;
    let subject = Subject::new(model.as_ref(), &enc.ids, &enc.type_ids);

    // The explained scalar: the last class's logit for a classifier, the next token's logit for
    // a decoder (its predicted token is not needed for this illustration: token 0).
    let target = if model.is_decoder() {
        Target::Token {
            position: enc.ids.len() - 1,
            token: 0,
            kind: TargetKind::Logit,
        }
    } else {
        let n = model.labels().len().max(1);
        Target::Class {
            class: n - 1,
            kind: TargetKind::Logit,
        }
    };

    // One row (the plain input), every layer's output captured with its gradient.
    let layers: Vec<HookName> = (0..model.n_layers())
        .map(|l| HookName::block(l, Site::ResidPost))
        .collect();
    let mut req = Request::new(Rows::Count(1), Objective::Target(&target));
    for &at in &layers {
        req = req.capture(Capture::both(at));
    }
    let mut table: Vec<Vec<f64>> = Vec::new();
    let f = probe::run(&subject, &req, &mut |_, _| {}, &mut |chunk| {
        for (y, g) in chunk.values.iter().zip(&chunk.grads) {
            let (y, g) = (
                y.as_ref().unwrap().to_vec_f64()?,
                g.as_ref().unwrap().to_vec_f64()?,
            );
            let d = model.d_model();
            // Σ_d y ⊙ ∂F/∂y per token.
            let per_token = y
                .chunks(d)
                .zip(g.chunks(d))
                .map(|(y, g)| y.iter().zip(g).map(|(y, g)| y * g).sum())
                .collect();
            table.push(per_token);
        }
        Ok(())
    })?;

    println!(
        "gradient × activation at every block output; F = {:.6} ({})",
        f[0],
        model.describe()
    );
    print!("{:>8}", "layer");
    for t in &enc.tokens {
        print!(" {:>10}", t.chars().take(10).collect::<String>());
    }
    println!();
    for (l, row) in table.iter().enumerate() {
        print!("{:>8}", l);
        for v in row {
            print!(" {v:>10.4}");
        }
        println!();
    }
    assert_eq!(table.len(), model.n_layers());
    assert!(table.iter().flatten().all(|v| v.is_finite()));
    assert!(
        table.iter().all(|row| row.iter().any(|v| *v != 0.0)),
        "every layer carries gradient"
    );
    Ok(())
}
