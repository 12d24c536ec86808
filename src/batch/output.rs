//! The output of a batch run: JSON Lines, one line per example, appended as each example
//! finishes.
//!
//! **Durability.** Each line is written by one `write` call on a file opened for appending
//! (`O_APPEND`), the JSON text and its newline together, then flushed and, unless turned off,
//! `fdatasync`ed. A process killed with `kill -9` therefore leaves complete lines followed by at
//! most one *torn* line: the bytes of an unfinished write, without a newline. On resume the file
//! is scanned ([`scan`]); the torn tail (a last line without a newline, or one that is not a JSON
//! object with an `id`) is cut off (`set_len` to the end of the last complete line) and its
//! example is run again. A bad line anywhere else is not a torn write, and is an error rather
//! than silently dropped.

use crate::{Error, Result};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// One complete line of an output file.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    /// The input line number, when the line has one.
    pub line: Option<usize>,
    /// The report's `method`, when the line has one.
    pub method: Option<String>,
    /// The line's JSON text (without its newline).
    pub json: String,
}

/// An output file as found: its complete lines and the torn tail, if any.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub records: Vec<Record>,
    /// Bytes up to the end of the last complete line.
    pub good_len: u64,
    /// Bytes after that (a write cut short); 0 when the file ends cleanly.
    pub torn_bytes: u64,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// The options fingerprint of an output line: `batch_config` (LIG lines, whose report has a
/// `config` object of its own) or `config`.
pub fn fingerprint(v: &Value) -> Option<&str> {
    v.get("batch_config")
        .and_then(Value::as_str)
        .or_else(|| v.get("config").and_then(Value::as_str))
}

fn record(text: &str) -> Option<Record> {
    let v: Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    let id = match o.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(Record {
        id,
        line: o.get("line").and_then(Value::as_u64).map(|l| l as usize),
        method: o.get("method").and_then(Value::as_str).map(str::to_string),
        json: text.to_string(),
    })
}

/// Reads an output file. A missing file is an empty scan. Every line must be a JSON object with
/// an `id`, except the last one, which is reported as torn when it is not, or when it has no
/// newline.
pub fn scan(path: &Path) -> Result<Scan> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Scan::default()),
        Err(e) => return Err(io(path, e)),
    };
    let mut r = std::io::BufReader::new(f);
    let mut out = Scan::default();
    let mut buf = Vec::new();
    let mut pending_bad: Option<usize> = None;
    let mut n = 0;
    loop {
        buf.clear();
        let got = r.read_until(b'\n', &mut buf).map_err(|e| io(path, e))?;
        if got == 0 {
            break;
        }
        n += 1;
        if let Some(bad) = pending_bad {
            // A bad line followed by more lines: not the torn end of a killed write.
            return Err(Error::Checkpoint {
                path: path.display().to_string(),
                detail: format!(
                    "line {bad} is not a JSON object with an \"id\", and it is not the last line (a damaged file, or not a gradpath batch output)"
                ),
            });
        }
        let complete = buf.last() == Some(&b'\n');
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if !complete {
            out.torn_bytes = got as u64;
            break;
        }
        if text.trim().is_empty() {
            out.good_len += got as u64;
            continue;
        }
        match record(text) {
            Some(rec) => {
                out.records.push(rec);
                out.good_len += got as u64;
            }
            None => {
                pending_bad = Some(n);
                out.torn_bytes = got as u64;
            }
        }
    }
    Ok(out)
}

/// An output file open for appending.
pub struct Appender {
    file: std::fs::File,
    path: PathBuf,
    sync: bool,
}

impl Appender {
    /// Opens `path` for a run. Without `resume`, an existing non-empty file is
    /// [`Error::OutputExists`] unless `overwrite` (then it is emptied). With `resume`, the file
    /// (created when missing) is scanned, its torn tail cut off, and its complete lines returned.
    /// `sync`: `fdatasync` after every line (survives power loss, not only `kill -9`).
    pub fn open(
        path: &Path,
        resume: bool,
        overwrite: bool,
        sync: bool,
    ) -> Result<(Appender, Scan)> {
        let mut s = Scan::default();
        if resume {
            s = scan(path)?;
            if s.torn_bytes > 0 {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io(path, e))?;
                f.set_len(s.good_len).map_err(|e| io(path, e))?;
                f.sync_all().map_err(|e| io(path, e))?;
            }
        } else {
            let exists = std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
            if exists && !overwrite {
                return Err(Error::OutputExists {
                    path: path.display().to_string(),
                });
            }
            std::fs::File::create(path).map_err(|e| io(path, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        Ok((
            Appender {
                file,
                path: path.to_path_buf(),
                sync,
            },
            s,
        ))
    }

    /// Appends `v` as one line: one `write` of the JSON text and its newline, then a flush (and
    /// `fdatasync` when asked).
    pub fn append(&mut self, v: &Value) -> Result<()> {
        let mut line = serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| io(&self.path, e))?;
        if self.sync {
            self.file.sync_data().map_err(|e| io(&self.path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("gradpath-out-{}-{name}", std::process::id()))
    }

    #[test]
    fn torn_tail_is_cut_and_bad_middle_is_an_error() {
        let p = tmp("torn.jsonl");
        std::fs::write(&p, "{\"id\":\"a\",\"line\":1}\n{\"id\":\"b\",\"li").unwrap();
        let (mut a, s) = Appender::open(&p, true, false, false).unwrap();
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.torn_bytes, 13);
        a.append(&serde_json::json!({"id": "b", "line": 2}))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"id\":\"a\",\"line\":1}\n{\"id\":\"b\",\"line\":2}\n"
        );
        // A complete last line that is not a record is torn too.
        std::fs::write(&p, "{\"id\":\"a\"}\nnot json\n").unwrap();
        let s = scan(&p).unwrap();
        assert_eq!((s.records.len(), s.torn_bytes), (1, 9));
        // Anywhere else it is an error.
        std::fs::write(&p, "{\"id\":\"a\"}\nnot json\n{\"id\":\"b\"}\n").unwrap();
        assert!(matches!(scan(&p), Err(Error::Checkpoint { .. })));
        // Without resume, an existing output is refused unless overwritten.
        assert!(matches!(
            Appender::open(&p, false, false, false),
            Err(Error::OutputExists { .. })
        ));
        Appender::open(&p, false, true, false).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "");
        let _ = std::fs::remove_file(&p);
    }
}
