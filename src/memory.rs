//! The memory budget: requests whose size grows with a user's count (noise samples, sensitivity
//! draws, attention maps) are checked against it before anything is allocated, and a request that
//! cannot fit is an [`Error::TooLarge`] saying how large it would be and what to change.
//!
//! The budget is half of the machine's physical memory (Linux `/proc/meminfo`; 8 GiB where that
//! cannot be read) unless set with [`set_budget`] (the CLI's `--memory`) or the environment
//! variable `GRADPATH_MEMORY` (bytes, or a number with a `K`/`M`/`G`/`T` suffix, powers of 1024).
//!
//! ```
//! use gradpath::memory;
//! assert_eq!(memory::parse_size("512M").unwrap(), 512 << 20);
//! assert!(memory::check("noise samples", u64::MAX, "use fewer --samples").is_err());
//! ```

use crate::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

static BUDGET: AtomicU64 = AtomicU64::new(0);

/// Parses `1073741824`, `512M`, `2G`, `1.5G` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let bad = || Error::BadValue {
        name: "memory",
        detail: format!("`{s}` is not a size (examples: 4G, 512M, 1073741824)"),
    };
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let x: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(x.is_finite() && x > 0.0) || x * mult as f64 >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok((x * mult as f64) as u64)
}

fn physical_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Sets the budget in bytes (0: back to the default).
pub fn set_budget(bytes: u64) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// The budget in bytes (see the module docs).
pub fn budget() -> u64 {
    let b = BUDGET.load(Ordering::Relaxed);
    if b > 0 {
        return b;
    }
    if let Some(b) = std::env::var("GRADPATH_MEMORY")
        .ok()
        .and_then(|v| parse_size(&v).ok())
    {
        return b;
    }
    physical_memory().map_or(8 << 30, |m| m / 2)
}

/// A size for messages: `3.2 GiB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 40) as f64 * 1024.0 {
        format!("{:.3e} bytes", b)
    } else if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

/// Errors with [`Error::TooLarge`] when `bytes` (of `what`) exceed the budget; `hint` says what
/// to change.
pub fn check(what: &str, bytes: u64, hint: &str) -> Result<()> {
    let budget = budget();
    if bytes > budget {
        return Err(Error::TooLarge {
            what: what.into(),
            size: human(bytes),
            budget: human(budget),
            hint: hint.into(),
        });
    }
    Ok(())
}

/// `a · b · c ...` in bytes, saturating (sizes derived from user counts never overflow).
pub fn product(factors: &[usize]) -> u64 {
    factors
        .iter()
        .fold(1u64, |a, &f| a.saturating_mul(f as u64))
}
