//! Command-line interface: argument parsing and printing only (no numerics here).
//! Errors are printed by `main` as one line of cause and one line of hint.

use crate::autodiff::OpKind;
use crate::{Error, Result};
use clap::{Parser, Subcommand};

/// gradpath: explain transformer predictions with gradients computed on its own tape.
#[derive(Parser, Debug)]
#[command(name = "gradpath", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the differentiable op catalogue (every op has a forward, a backward and an f64
    /// finite-difference check).
    Ops,
    /// Print build facts: version, enabled features, CPU threads, GEMM backend.
    Info,
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ops => {
            println!("{} differentiable ops:", OpKind::ALL.len());
            for k in OpKind::ALL {
                println!("  {}", k.name());
            }
            Ok(())
        }
        Command::Info => {
            println!("gradpath {}", env!("CARGO_PKG_VERSION"));
            println!("cuda feature: {}", if cfg!(feature = "cuda") { "on" } else { "off (Device::Cuda returns a clear error)" });
            println!("cpu threads (rayon): {}", rayon::current_num_threads());
            println!("gemm: gemm 0.19 (pure Rust, x86-v4 kernels when the CPU has AVX-512)");
            Ok(())
        }
    }
}

/// A one-line suggestion of what to do about `e`.
pub fn hint(e: &Error) -> String {
    match e {
        Error::NotCompiledWithCuda(_) => "rebuild with `cargo build --release --features cuda` on a machine with CUDA, or use --device cpu".into(),
        Error::Shape { .. } | Error::DType { .. } => "this is a bug in the caller or the model definition; please report it with the command you ran".into(),
        Error::Io { .. } => "check that the path exists and is readable".into(),
        _ => "run with --help to see the expected arguments".into(),
    }
}
