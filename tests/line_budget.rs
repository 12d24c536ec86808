//! The size budgets of the style guide (`STYLE.md`, "Budgets, checked in CI"), so that a file
//! that outgrows its budget is split when it does, not stops later:
//!
//! - each model file (everything under `src/models/`) under 600 lines (candle's `bert.rs` 625,
//!   `llama.rs` 534);
//! - each file of an op family (`src/ops/<family>/…`) under 400 lines;
//! - the tape and backward core (`src/autodiff/{tape,op,backward}.rs`) under 800 lines together
//!   (candle's `backprop.rs` 809).

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn lines(p: &Path) -> usize {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .count()
}

/// The files of `files` longer than `max` lines, as "path: N lines".
fn over(files: &[PathBuf], max: usize) -> Vec<String> {
    files
        .iter()
        .filter(|p| lines(p) > max)
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap_or(p);
            format!("{}: {} lines", rel.display(), lines(p))
        })
        .collect()
}

#[test]
fn model_files_stay_under_600_lines() {
    let files = rust_files(&root().join("src/models"));
    assert!(files.len() >= 10, "found only {} model files", files.len());
    let big = over(&files, 600);
    assert!(
        big.is_empty(),
        "over the 600-line budget of a model file (STYLE.md); split by concern: {big:?}"
    );
}

#[test]
fn op_family_files_stay_under_400_lines() {
    // The family folders only: `ops/gemm.rs` and `ops/simd.rs` are shared machinery.
    let mut files = Vec::new();
    for e in fs::read_dir(root().join("src/ops")).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(rust_files(&p));
        }
    }
    assert!(files.len() >= 15, "found only {} op files", files.len());
    let big = over(&files, 400);
    assert!(
        big.is_empty(),
        "over the 400-line budget of an op family file (STYLE.md): {big:?}"
    );
}

#[test]
fn tape_and_backward_core_stay_under_800_lines() {
    let core: usize = ["tape.rs", "op.rs", "backward.rs"]
        .iter()
        .map(|f| lines(&root().join("src/autodiff").join(f)))
        .sum();
    assert!(
        core <= 800,
        "src/autodiff/{{tape,op,backward}}.rs have {core} lines together, over STYLE.md's 800"
    );
}
