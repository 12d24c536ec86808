//! Everything the command line writes, kept honest:
//!
//! - **Output files** are staged in memory ([`stage`]) and written only when the command has
//!   succeeded ([`commit`]), all together through [`crate::io::atomic::write_all_atomic`]: a run
//!   that fails writes nothing, a run that succeeds writes everything, and an interrupted write
//!   leaves the previous file in place. An output may not name an input of the run ([`protect`]:
//!   the model's folder or file, data files) nor the same file as another output.
//! - **Standard output** goes through [`print()`] (the `outln!`/`out!` macros): a closed pipe
//!   (`gradpath ig ... | head -1`) silences the rest of the printing instead of panicking, and the
//!   run goes on to write its files; any other write error (a full disk) is reported once the
//!   files are written ([`finish`]).
//! - **Reports** are checked before they are staged ([`check_report`]): a NaN or infinite number
//!   anywhere in a report is an error naming where it sits (unless `--allow-nan`), and an
//!   adaptive rule that stopped short of `--tolerance` prints a warning (an error with `--strict`,
//!   after the files are written).

use crate::io::atomic::{resolved, write_all_atomic};
use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct State {
    staged: Vec<(PathBuf, Vec<u8>)>,
    inputs: Vec<PathBuf>,
    stdout_closed: bool,
    stdout_error: Option<std::io::Error>,
    pending: Option<Error>,
}

static STATE: Mutex<State> = Mutex::new(State {
    staged: Vec::new(),
    inputs: Vec::new(),
    stdout_closed: false,
    stdout_error: None,
    pending: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks `path` (a file, or a folder and everything in it) as an input of this run: no output
/// may be written onto it.
pub fn protect(path: &Path) {
    let r = resolved(path);
    let mut s = state();
    if !s.inputs.contains(&r) {
        s.inputs.push(r);
    }
}

/// Stages `bytes` for `path`, to be written by [`commit`]. Errors (before any computation is
/// lost to a bad path, as early as the command stages): the path is an input of the run, was
/// already staged by this run, is a folder, or its folder does not exist.
pub fn stage(path: &Path, bytes: Vec<u8>) -> Result<()> {
    let bad = |detail: &str| Error::OutputPath {
        path: path.display().to_string(),
        detail: detail.into(),
    };
    if path.is_dir() {
        return Err(bad("is a folder; give a file name"));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(bad("its folder does not exist; create it first"));
        }
    }
    let r = resolved(path);
    let mut s = state();
    if s.staged.iter().any(|(p, _)| resolved(p) == r) {
        return Err(bad(
            "is named by two outputs of this run (e.g. --json and --html); give each its own file",
        ));
    }
    if s.inputs.iter().any(|i| r == *i || r.starts_with(i)) {
        return Err(bad(
            "is an input of this run (the model's folder or file, or a data file); writing there would destroy it",
        ));
    }
    s.staged.push((path.to_path_buf(), bytes));
    Ok(())
}

/// Errors when `path` is an input of this run ([`protect`]): for outputs a command writes itself
/// (the append-only JSONL of `gradpath batch`).
pub fn ensure_not_input(path: &Path) -> Result<()> {
    let r = resolved(path);
    if state().inputs.iter().any(|i| r == *i || r.starts_with(i)) {
        return Err(Error::OutputPath {
            path: path.display().to_string(),
            detail: "is an input of this run (the model's folder or file, or a data file); writing there would destroy it".into(),
        });
    }
    Ok(())
}

/// Writes every staged file (all temporary files first, then the renames) and forgets them.
pub fn commit() -> Result<()> {
    let files = std::mem::take(&mut state().staged);
    write_all_atomic(&files)
}

/// Forgets the staged files without writing them (the command failed).
pub fn discard() {
    state().staged.clear();
}

/// Prints to standard output; see the module docs for what a closed or full stdout does.
pub fn print(args: std::fmt::Arguments<'_>) {
    let mut s = state();
    if s.stdout_closed {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        s.stdout_closed = true;
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            s.stdout_error = Some(e);
        }
    }
}

/// Flushes standard output and returns the first error the command deferred: a failed stdout
/// (other than a closed pipe), or `--strict`'s unmet tolerance.
pub fn finish() -> Result<()> {
    let mut s = state();
    if !s.stdout_closed {
        if let Err(e) = std::io::stdout().lock().flush() {
            s.stdout_closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                s.stdout_error = Some(e);
            }
        }
    }
    if let Some(e) = s.stdout_error.take() {
        return Err(Error::Io {
            path: "standard output".into(),
            source: e,
        });
    }
    match s.pending.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub use crate::report::check::{scan, Findings};

/// Checks a report before it is printed or staged (see the module docs): a non-finite number is
/// an error (a warning with `allow_nan`); an unmet tolerance is a warning, and with `strict` the
/// run's exit status is non-zero after its files are written.
pub fn check_report<T: serde::Serialize>(report: &T, allow_nan: bool, strict: bool) -> Result<()> {
    let f = scan(report)?;
    if let Some((place, value)) = f.non_finite {
        if !allow_nan {
            return Err(Error::NonFinite { place, value });
        }
        eprintln!("warning: the result is not finite: {value} at {place} (written because of --allow-nan)");
    }
    if !f.unconverged.is_empty() {
        let msg = format!(
            "a tolerance was not reached within its point budget (--tolerance/--max-points; converge: --reference-tolerance/--reference-max-points); JSON: `converged` is false at {}; these are the last refinement's numbers",
            f.unconverged.join(", ")
        );
        eprintln!("warning: {msg}");
        if strict {
            state().pending = Some(Error::NotConverged(msg));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Layer {
        attributions: Vec<f64>,
        converged: bool,
    }

    #[derive(serde::Serialize)]
    struct Report {
        delta: Option<f64>,
        layers: Vec<Layer>,
    }

    #[test]
    fn scan_names_the_first_non_finite_number_and_every_unconverged_object() {
        let r = Report {
            delta: None,
            layers: vec![
                Layer {
                    attributions: vec![1.0, 2.0],
                    converged: true,
                },
                Layer {
                    attributions: vec![0.5, f64::NAN, f64::INFINITY],
                    converged: false,
                },
            ],
        };
        let f = scan(&r).unwrap();
        assert_eq!(
            f.non_finite,
            Some(("/layers/1/attributions/1".to_string(), "NaN".to_string()))
        );
        assert_eq!(f.unconverged, vec!["/layers/1".to_string()]);
        let ok = Report {
            delta: Some(1e-3),
            layers: vec![],
        };
        assert_eq!(scan(&ok).unwrap(), Findings::default());
    }
}
