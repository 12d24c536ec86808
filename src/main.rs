//! The `gradpath` binary: parse arguments, run, print errors as `error: <cause>` and `hint: <what
//! to do>`, exit non-zero on failure. Built with the `cli` feature (on by default).

use clap::Parser;
use gradpath::cli::{hint, message, run, Cli};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {}", message(&e));
        eprintln!("hint: {}", hint(&e));
        std::process::exit(1);
    }
}
