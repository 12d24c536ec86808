//! The `gradpath` binary: parse arguments, run, print errors as `error: <cause>` and `hint: <what
//! to do>`, exit non-zero on failure.

use clap::Parser;
use gradpath::cli::{hint, run, Cli};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        eprintln!("hint: {}", hint(&e));
        std::process::exit(1);
    }
}
