//! Shards: which examples one process of a job array runs.
//!
//! An example belongs to shard `fnv1a64(id) mod N`, where `fnv1a64` is the 64-bit FNV-1a hash of
//! the id's UTF-8 bytes (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`). The
//! assignment depends only on the id and N: not on the order of the lines, the machine or the
//! run, so a killed shard that is resumed, or rerun elsewhere, runs the same examples.
//!
//! Where the shard comes from ([`Shard::resolve`]), first match wins:
//! 1. an explicit `I/N` ([`Shard::parse`]; the CLI's `--shard`);
//! 2. Slurm job arrays: `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` (0 when unset) of
//!    `SLURM_ARRAY_TASK_COUNT` (the array must be contiguous: `--array=0-{N-1}` or `1-N`);
//! 3. Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of N, where N (the Job's `completions`,
//!    which Kubernetes does not put in the environment) is given by the caller (the CLI's
//!    `--num-shards`) or by `GRADPATH_NUM_SHARDS`;
//! 4. otherwise the whole input (shard 0/1).

use crate::{Error, Result};

/// The 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where a shard came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSource {
    Given,
    Slurm,
    Kubernetes,
    Whole,
}

impl ShardSource {
    pub fn name(self) -> &'static str {
        match self {
            ShardSource::Given => "given",
            ShardSource::Slurm => "Slurm array task",
            ShardSource::Kubernetes => "Kubernetes completion index",
            ShardSource::Whole => "whole input",
        }
    }
}

fn bad(detail: String) -> Error {
    Error::BadValue {
        name: "shard",
        detail,
    }
}

impl Shard {
    /// Shard `index` of `count`, checked (`count` ≥ 1, `index` < `count`).
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 {
            return Err(bad("the number of shards must be at least 1".into()));
        }
        if index >= count {
            return Err(bad(format!(
                "shard {index} does not exist: shards are numbered 0..{} of {count}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`, e.g. `2/4` (shards are numbered from 0).
    pub fn parse(s: &str) -> Result<Shard> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad(format!("`{s}` is not I/N (e.g. 0/4)")))?;
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("`{s}` is not I/N with whole numbers (e.g. 0/4)")))
        };
        Shard::new(num(i)?, num(n)?)
    }

    /// The shard of this process: `given`, else the scheduler's environment as read by `var`
    /// (see the module documentation), else the whole input. `num_shards` is the count for a
    /// Kubernetes completion index.
    pub fn resolve(
        given: Option<Shard>,
        num_shards: Option<usize>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(Shard, ShardSource)> {
        if let Some(s) = given {
            return Ok((s, ShardSource::Given));
        }
        let number = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| bad(format!("{name}={v:?} is not a whole number"))),
            }
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                bad("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into())
            })?;
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or_else(|| {
                bad(format!(
                    "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                ))
            })?;
            return Ok((Shard::new(index, count)?, ShardSource::Slurm));
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = match num_shards {
                Some(n) => n,
                None => number("GRADPATH_NUM_SHARDS")?.ok_or_else(|| {
                    bad("JOB_COMPLETION_INDEX is set but the number of shards (the Job's completions) is not given".into())
                })?,
            };
            return Ok((Shard::new(index, count)?, ShardSource::Kubernetes));
        }
        if let Some(n) = num_shards {
            if n != 1 {
                return Err(bad(format!(
                    "{n} shards were asked for, but no shard index is given or found in the environment (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX)"
                )));
            }
        }
        Ok((Shard::default(), ShardSource::Whole))
    }

    /// [`Shard::resolve`] on the process environment.
    pub fn from_env(
        given: Option<Shard>,
        num_shards: Option<usize>,
    ) -> Result<(Shard, ShardSource)> {
        Shard::resolve(given, num_shards, |k| std::env::var(k).ok())
    }

    /// The shard that owns `id`.
    pub fn of(id: &str, count: usize) -> usize {
        (fnv1a64(id.as_bytes()) % count.max(1) as u64) as usize
    }

    /// Whether this shard owns `id`.
    pub fn owns(&self, id: &str) -> bool {
        Shard::of(id, self.count) == self.index
    }

    /// `template` with every `{shard}` replaced by the shard index (one output file per shard
    /// from one command line, e.g. `out/part-{shard}.jsonl`).
    pub fn path(&self, template: &std::path::Path) -> std::path::PathBuf {
        let s = template.to_string_lossy();
        if s.contains("{shard}") {
            std::path::PathBuf::from(s.replace("{shard}", &self.index.to_string()))
        } else {
            template.to_path_buf()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_values() {
        // The FNV reference test vectors (Fowler, Noll, Vo).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn parse_and_resolve() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        assert!(Shard::parse("4/4").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("x").is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let (s, src) = Shard::resolve(
            None,
            None,
            env(&[
                ("SLURM_ARRAY_TASK_ID", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
            ]),
        )
        .unwrap();
        assert_eq!((s, src), (Shard { index: 2, count: 4 }, ShardSource::Slurm));
        let (s, src) = Shard::resolve(
            None,
            None,
            env(&[("JOB_COMPLETION_INDEX", "1"), ("GRADPATH_NUM_SHARDS", "3")]),
        )
        .unwrap();
        assert_eq!(
            (s, src),
            (Shard { index: 1, count: 3 }, ShardSource::Kubernetes)
        );
        let (s, _) = Shard::resolve(None, Some(5), env(&[("JOB_COMPLETION_INDEX", "4")])).unwrap();
        assert_eq!(s, Shard { index: 4, count: 5 });
        assert!(Shard::resolve(None, None, env(&[("JOB_COMPLETION_INDEX", "1")])).is_err());
        assert!(Shard::resolve(None, None, env(&[("SLURM_ARRAY_TASK_ID", "1")])).is_err());
        // An explicit shard wins over the environment.
        let (s, src) = Shard::resolve(
            Some(Shard { index: 0, count: 2 }),
            None,
            env(&[("JOB_COMPLETION_INDEX", "1"), ("GRADPATH_NUM_SHARDS", "3")]),
        )
        .unwrap();
        assert_eq!((s, src), (Shard { index: 0, count: 2 }, ShardSource::Given));
        let (s, src) = Shard::resolve(None, None, env(&[])).unwrap();
        assert_eq!((s, src), (Shard::default(), ShardSource::Whole));
    }

    #[test]
    fn every_id_has_one_shard() {
        let ids: Vec<String> = (0..400).map(|i| format!("ex-{i}")).collect();
        let mut per = [0usize; 4];
        for id in &ids {
            let owners: Vec<usize> = (0..4)
                .filter(|&i| Shard { index: i, count: 4 }.owns(id))
                .collect();
            assert_eq!(owners.len(), 1);
            per[owners[0]] += 1;
        }
        // 400 ids over 4 shards: none is empty or holds most of them.
        assert!(per.iter().all(|&n| (50..=150).contains(&n)), "{per:?}");
    }
}
