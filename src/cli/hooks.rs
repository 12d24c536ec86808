//! `gradpath hooks`: every boundary of a model with its shape for a given input.

use super::ig::{encode, DEFAULT_MODEL};
use crate::models::{self, Batch, Hooks};
use crate::{DType, Result, Tape};
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
    let model = models::load(&a.model, DType::F32)?;
    let tok = crate::models::load_tokenizer(&a.model)?;
    let e = encode(&tok, &a.text, None, model.max_tokens(), false)?;
    let tape = Tape::new();
    let _g = tape.no_grad();
    let mut hooks = Hooks::new();
    model.forward(&Batch::repeat(&e.ids, &e.type_ids, 1), &mut hooks)?;
    println!("{}", model.describe());
    println!("input: {} tokens {:?}", e.len(), e.tokens);
    for (name, shape) in hooks.seen() {
        println!("{name:<36} {shape:?}");
    }
    Ok(())
}
