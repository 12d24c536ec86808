//! `gradpath hooks`: every boundary of a model with its shape for a given input.

use super::args::DEFAULT_MODEL;
use crate::explain::{Explainer, Options};
use crate::models::Hooks;
use crate::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct HooksArgs {
    /// Hugging Face model folder.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Input whose shapes are shown.
    #[arg(long, default_value = "Hello world")]
    pub text: String,
}

pub fn run(a: &HooksArgs) -> Result<()> {
    let ex = Explainer::load(&a.model, Options::default())?;
    let e = ex.encode(&a.text, false)?;
    // Capturing every boundary makes the forward compute each at its full shape.
    let mut hooks = Hooks::new().capture_all();
    ex.model().forward(
        &crate::models::Batch::repeat(&e.ids, &e.type_ids, 1),
        &mut hooks,
    )?;
    outln!("{}", ex.model().describe());
    outln!("input: {} tokens {:?}", e.len(), e.tokens);
    for (name, shape) in hooks.seen() {
        outln!("{name:<36} {shape:?}");
    }
    Ok(())
}
