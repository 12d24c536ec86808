//! The `gradpath` binary: parse arguments, run, print errors as `error: <cause>` and `hint: <what
//! to do>`, exit non-zero on failure. Built with the `cli` feature (on by default).
//! With `GRADPATH_COUNT_FORWARDS` set, prints the number of model forwards (and rows) it ran.

use clap::Parser;
use gradpath::cli::{hint, message, run, Cli};

fn main() {
    let cli = Cli::parse();
    let result = run(cli);
    if std::env::var_os("GRADPATH_COUNT_FORWARDS").is_some() {
        let (forwards, rows) = gradpath::attribution::probe::forward_count();
        eprintln!("forwards: {forwards} ({rows} rows)");
    }
    if let Err(e) = result {
        eprintln!("error: {}", message(&e));
        eprintln!("hint: {}", hint(&e));
        std::process::exit(1);
    }
}
