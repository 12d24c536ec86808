//! The quadrature lab from the library: how fast does each rule's token IG converge on a text,
//! and what would a user's error estimate have said? Runs `Explainer::converge` with three rules
//! on nested point counts (n → 2n − 1), then prints, per rule, the attribution error against the
//! adaptive reference next to the successive estimate a user has without one.
//!
//! `cargo run --release --example quadrature_lab [MODEL_DIR] [TEXT]`
//! (default: the tiny BERT classifier fixture; for MiniLM add a similarity target in the code).

use gradpath::attribution::converge::ConvergeConfig;
use gradpath::explain::{ConvergeOptions, Explainer, Input, Options};
use gradpath::integrate::Rule;
use gradpath::DType;

fn main() -> gradpath::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or("tests/fixtures/models/tiny-bert".into());
    let text = args.next().unwrap_or("the movie was great".into());
    let ex = Explainer::load(
        &dir,
        Options {
            dtype: DType::F64,
            ..Options::default()
        },
    )?;
    let opts = ConvergeOptions {
        config: ConvergeConfig::new(
            vec![Rule::GaussLegendre, Rule::ClenshawCurtis, Rule::TanhSinh],
            vec![5, 9, 17, 33],
        ),
        ..ConvergeOptions::default()
    };
    let r = ex.converge(&Input::text(text), &opts)?;
    println!(
        "reference: {} points, error estimate {:.1e}, completeness {:.1e}",
        r.reference.points, r.reference.error_estimate, r.reference.relative_delta
    );
    for rule in &r.rules {
        for run in &rule.runs {
            println!(
                "{:<16} {:>3} points ({:>3} passes refining)  error {:.2e}  successive estimate {}",
                rule.rule.name(),
                run.points,
                run.passes_refining,
                run.attribution_error,
                run.successive_estimate
                    .map_or("–".to_string(), |e| format!("{e:.2e}"))
            );
        }
    }
    Ok(())
}
