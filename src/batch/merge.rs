//! Shard outputs → one output: every id exactly once, in input order.

use super::input::read_examples;
use super::output::scan;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The merged lines and what is wrong with them.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// One JSON line per id (the first one found), in input order (without an input: by input
    /// line number, then id).
    pub lines: Vec<String>,
    /// Ids of the input that no shard output holds, in input order.
    pub missing: Vec<String>,
    /// Ids found more than once (across files or within one).
    pub duplicated: Vec<String>,
    /// Ids that are not in the input.
    pub unexpected: Vec<String>,
    /// Files that end in a torn line (a killed shard not resumed), with the bytes ignored.
    pub torn: Vec<(PathBuf, u64)>,
    /// Lines read per file.
    pub per_file: Vec<(PathBuf, usize)>,
}

impl Merged {
    /// Every id of the input (or every id found, without an input) exactly once.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.unexpected.is_empty()
    }

    /// [`Error::Incomplete`] when not complete.
    pub fn check(&self) -> Result<()> {
        if self.is_complete() {
            return Ok(());
        }
        Err(Error::Incomplete {
            missing: self.missing.clone(),
            duplicated: self.duplicated.clone(),
            unexpected: self.unexpected.clone(),
        })
    }

    /// The merged JSONL text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Reads the shard outputs (complete lines; a torn last line is ignored and reported) and, when
/// `input` is given, checks them against its ids (bad input lines included: an id whose
/// example was skipped is missing). Lines written with different options (`config`) are an
/// error.
pub fn merge(shards: &[PathBuf], input: Option<&Path>) -> Result<Merged> {
    let mut m = Merged::default();
    let mut found: HashMap<String, (usize, Option<usize>, String)> = HashMap::new();
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut config: Option<(String, PathBuf)> = None;
    let mut seq = 0usize;
    for p in shards {
        if !p.exists() {
            return Err(Error::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such shard output"),
            });
        }
        let s = scan(p)?;
        if s.torn_bytes > 0 {
            m.torn.push((p.clone(), s.torn_bytes));
        }
        m.per_file.push((p.clone(), s.records.len()));
        for r in s.records {
            let v: serde_json::Value =
                serde_json::from_str(&r.json).map_err(|e| Error::Internal(e.to_string()))?;
            let c = super::output::fingerprint(&v).unwrap_or("none").to_string();
            match &config {
                None => config = Some((c, p.clone())),
                Some((c0, p0)) if *c0 != c => {
                    return Err(Error::Mismatch {
                        what: "shard outputs".into(),
                        detail: format!(
                        "{} (id {:?}) was written with other options than {} (config {c} vs {c0})",
                        p.display(),
                        r.id,
                        p0.display()
                    ),
                    })
                }
                Some(_) => {}
            }
            let n = count.entry(r.id.clone()).or_insert(0);
            *n += 1;
            if *n == 2 {
                m.duplicated.push(r.id.clone());
            }
            found.entry(r.id).or_insert((seq, r.line, r.json));
            seq += 1;
        }
    }
    match input {
        Some(inp) => {
            let mut known = std::collections::HashSet::new();
            for l in read_examples(inp)? {
                let id = match l {
                    Ok(e) => e.id,
                    Err(b) => b.id,
                };
                if !known.insert(id.clone()) {
                    continue; // a repeated id in the input: one example
                }
                match found.remove(&id) {
                    Some((_, _, json)) => m.lines.push(json),
                    None => m.missing.push(id),
                }
            }
            let mut rest: Vec<_> = found.into_iter().collect();
            rest.sort_by_key(|(_, (seq, _, _))| *seq);
            m.unexpected = rest
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| !known.contains(id))
                .collect();
        }
        None => {
            let mut all: Vec<_> = found.into_iter().collect();
            all.sort_by(|a, b| {
                (a.1 .1.unwrap_or(usize::MAX), &a.0).cmp(&(b.1 .1.unwrap_or(usize::MAX), &b.0))
            });
            m.lines = all.into_iter().map(|(_, (_, _, json))| json).collect();
        }
    }
    Ok(m)
}
