//! Which SIMD level the CPU kernels run at, and the one place that chooses it.
//!
//! The release build targets baseline x86-64 (SSE2, 4 f32 lanes). The row loops of the
//! elementwise, softmax and norm kernels are also compiled for wider registers by running them
//! inside [`run`], which calls them through a `#[target_feature]` function: AVX-512F (16 lanes),
//! AVX2 + FMA or AVX + FMA (8 lanes; the kernels only use float instructions, which AVX has),
//! chosen once at run time. The arithmetic is the same at every level: Rust never contracts
//! `a·b + c` into an FMA, and the reductions use a fixed number of accumulators
//! ([`crate::tensor::sum_lanes`]), so each level gives bit-identical results
//! (`tests::levels_are_bit_identical`).
//!
//! The matrix products are the `gemm` crate's, which picks its own kernels: AVX-512F, "fma"
//! (256-bit FMA), or scalar ([`gemm_kernels`]).
//!
//! `GRADPATH_SIMD=sse2|avx-fma|avx2-fma|avx512` caps the level (never above what the CPU has), to
//! measure each level on one machine; `gradpath info` prints what runs.

use std::sync::OnceLock;

/// A SIMD level of the CPU kernels, from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The baseline build: SSE2 on x86-64, or whatever the target's baseline is elsewhere.
    Baseline,
    /// AVX + FMA (8 f32 lanes): e.g. AMD CPUs and VMs that expose AVX and FMA but not AVX2.
    AvxFma,
    /// AVX2 + FMA (8 f32 lanes).
    Avx2Fma,
    /// AVX-512F (16 f32 lanes).
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 4] = [
        Level::Baseline,
        Level::AvxFma,
        Level::Avx2Fma,
        Level::Avx512,
    ];

    /// The name `GRADPATH_SIMD` takes and `gradpath info` prints.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => {
                if cfg!(target_arch = "x86_64") {
                    "sse2"
                } else {
                    "baseline"
                }
            }
            Level::AvxFma => "avx-fma",
            Level::Avx2Fma => "avx2-fma",
            Level::Avx512 => "avx512",
        }
    }

    /// f32 lanes per register at this level.
    pub fn f32_lanes(self) -> usize {
        match self {
            Level::Baseline => 4,
            Level::AvxFma | Level::Avx2Fma => 8,
            Level::Avx512 => 16,
        }
    }

    fn parse(s: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name() == s || (s == "baseline" && *l == Level::Baseline))
    }
}

/// The widest level this CPU supports (detected once).
pub fn supported() -> Level {
    static BEST: OnceLock<Level> = OnceLock::new();
    *BEST.get_or_init(detect)
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            return Level::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Level::Avx2Fma;
        }
        if has!("avx") && has!("fma") {
            return Level::AvxFma;
        }
    }
    Level::Baseline
}

/// The level the kernels run at: [`supported`], capped by `GRADPATH_SIMD` when it is set to a
/// known level (an unknown value is ignored, and `gradpath info` says so).
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = supported();
        match requested() {
            Some(Ok(want)) => want.min(best),
            _ => best,
        }
    })
}

/// `GRADPATH_SIMD` as given: `None` when unset, `Err(value)` when it names no level.
pub fn requested() -> Option<std::result::Result<Level, String>> {
    let v = std::env::var("GRADPATH_SIMD").ok()?;
    Some(Level::parse(v.trim()).ok_or(v))
}

/// The kernels the `gemm` crate (0.19, built with `x86-v4`) dispatches to on this CPU: it checks
/// `avx512f`, then `fma`, and otherwise runs scalar code (it has no SSE kernel).
pub fn gemm_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            return "avx512f (16 f32 lanes)";
        }
        if has!("fma") {
            return "fma (256-bit, 8 f32 lanes)";
        }
        "scalar (the CPU has no FMA)"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "neon"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// The CPU's model name (`/proc/cpuinfo`), when the system says.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The SIMD features that matter to the kernels, as the CPU reports them (run-time detection).
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let all: [(&'static str, bool); 7] = [
            ("sse2", has!("sse2")),
            ("sse4.2", has!("sse4.2")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
        ];
        out.extend(all.iter().filter(|(_, on)| *on).map(|(n, _)| *n));
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512(body: impl FnOnce()) {
        body()
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2(body: impl FnOnce()) {
        body()
    }

    /// # Safety
    /// The CPU must support AVX and FMA.
    #[target_feature(enable = "avx,fma")]
    pub(super) unsafe fn avx(body: impl FnOnce()) {
        body()
    }
}

/// Runs `body` compiled for [`level`]: the closure inlines into a `#[target_feature]` function
/// and takes its features. Put whole row loops in `body`, not single elements (the call is not
/// free).
#[inline(always)]
pub fn run(body: impl FnOnce()) {
    run_at(level(), body)
}

/// [`run`] at a given level, which must not exceed [`supported`] (a wider one runs at the widest
/// supported level instead).
#[inline(always)]
pub fn run_at(want: Level, body: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        let l = want.min(supported());
        // SAFETY: `l` is at most what the CPU supports (run-time detection).
        unsafe {
            match l {
                Level::Avx512 => return x86::avx512(body),
                Level::Avx2Fma => return x86::avx2(body),
                Level::AvxFma => return x86::avx(body),
                Level::Baseline => {}
            }
        }
    }
    let _ = want;
    body()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{sum_by_lanes, sum_lanes};

    #[test]
    fn names_round_trip() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("baseline"), Some(Level::Baseline));
        assert_eq!(Level::parse("avx3"), None);
    }

    /// Every level the CPU has gives the same bits for an elementwise map and the lane
    /// reductions the softmax and norm rows use.
    #[test]
    fn levels_are_bit_identical() {
        let xs: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let at = |l: Level| {
            let mut out = vec![0f32; xs.len()];
            let mut s = 0f32;
            let mut s2 = 0f32;
            run_at(l, || {
                for (o, &x) in out.iter_mut().zip(&xs) {
                    *o = x * 0.5 * (1.0 + (x * 0.7).tanh()) + x * x * 0.25;
                }
                s = sum_lanes(&out);
                s2 = sum_by_lanes(xs.len(), |j| xs[j] * out[j]);
            });
            (out, s, s2)
        };
        let base = at(Level::Baseline);
        for l in Level::ALL.into_iter().filter(|l| *l <= supported()) {
            let got = at(l);
            assert!(
                got.0
                    .iter()
                    .zip(&base.0)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{l:?}"
            );
            assert_eq!(got.1.to_bits(), base.1.to_bits(), "{l:?}");
            assert_eq!(got.2.to_bits(), base.2.to_bits(), "{l:?}");
        }
    }
}
