//! Writing output files so that a reader never sees half of one: each file is written to a
//! temporary name in its own folder (`.NAME.tmp-PID`), flushed to disk, then renamed over the
//! destination. A failure before the rename removes the temporary file and leaves any previous
//! file at the destination untouched.
//!
//! [`write_all_atomic`] does the same for several files at once, all or nothing as far as the file
//! system allows: every temporary file is written and flushed before the first rename, so a full
//! disk or a bad path leaves none of the destinations changed.
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("gradpath-atomic-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let a = dir.join("a.json");
//! gradpath::io::atomic::write_atomic(&a, b"{}").unwrap();
//! assert_eq!(std::fs::read(&a).unwrap(), b"{}");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// The temporary name `path` is written under before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes and flushes the temporary file of `path`; removes it again on failure.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = temp_path(path);
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match r {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            // The error names the destination: the temporary name means nothing to a user.
            Err(io_err(path, e))
        }
    }
}

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = write_temp(path, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// Writes every `(path, bytes)` atomically, all temporary files first (see the module docs).
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut temps = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        match write_temp(path, bytes) {
            Ok(t) => temps.push(t),
            Err(e) => {
                for t in &temps {
                    let _ = std::fs::remove_file(t);
                }
                return Err(e);
            }
        }
    }
    for (i, ((path, _), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            for t in &temps[i..] {
                let _ = std::fs::remove_file(t);
            }
            return Err(io_err(path, e));
        }
    }
    Ok(())
}

/// `path` with its folder resolved (symbolic links, `..`), for comparing two output paths or an
/// output with an input. The file itself need not exist; its folder must.
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (std::fs::canonicalize(&parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gradpath-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let d = dir("replace");
        let p = d.join("out.json");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn all_or_nothing_when_one_destination_is_bad() {
        let d = dir("all");
        let good = d.join("good.json");
        std::fs::write(&good, "previous").unwrap();
        let bad = d.join("no-such-folder").join("x.html");
        let e = write_all_atomic(&[
            (good.clone(), b"new".to_vec()),
            (bad.clone(), b"x".to_vec()),
        ]);
        assert!(matches!(e, Err(Error::Io { ref path, .. }) if path.contains("no-such-folder")));
        // The good file keeps its previous content and no temporary is left behind.
        assert_eq!(std::fs::read_to_string(&good).unwrap(), "previous");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn resolved_sees_through_dot_dot() {
        let d = dir("resolved");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        assert_eq!(
            resolved(&d.join("sub/../a.json")),
            resolved(&d.join("a.json"))
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
