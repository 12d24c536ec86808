//! GEMM throughput through gradpath's one safe wrapper (`gradpath::ops::gemm`), f32 and f64, on
//! the shapes a GPT-2-small-sized transformer runs with 50 × 128 = 6400 token rows.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench gemm
//! RAYON_NUM_THREADS=2 cargo bench --bench gemm
//! RAYON_NUM_THREADS=2 cargo bench --bench gemm -- f32          # criterion filter (also filters the lines)
//! GRADPATH_BENCH_EXPLICIT_ONLY=1 cargo bench --bench gemm      # only the explicit GFLOP/s lines
//! ```
//!
//! Each case prints one explicit line, `gemm f32 6400x768x768: 105.3 GFLOP/s (...)`, timed with
//! `std::time::Instant` independently of criterion (one warm-up call, then the best of at least 3
//! calls and at least ~1 s); then criterion measures it again with `Throughput::Elements(flops)`,
//! so its `thrpt` column reads in GFLOP/s as "Gelem/s". FLOPs are `2·batch·m·k·n`.
//! Shapes are written `m x k x n` (C[m,n] = A[m,k] · B[k,n]).
//!
//! GEMM is parallel over rayon's global pool, sized by `RAYON_NUM_THREADS` (printed at the top).

use criterion::{black_box, Criterion, SamplingMode, Throughput};
use gradpath::ops::gemm::{gemm, gemm_batched, Mat, Overlap};
use gradpath::tensor::Float;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// How the operands of one case are laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// C = A·B, all row-major.
    Plain,
    /// C = A·Wᵀ with W stored `[n, k]` (a Linear layer with an HF `[out, in]` weight).
    TransB,
    /// C = Aᵀ·B with A stored `[k, m]` (the weight gradient `xᵀ·dy` of a Linear layer).
    TransA,
    /// `batch` independent contiguous row-major products.
    Batched { batch: usize },
    /// `batch = b·h` products `Q_h · K_hᵀ` read in place from `[b, pos, h, d_head]` buffers
    /// (the layout of `ops::attention::scores`): strided rows, transposed K.
    AttnStrided { b: usize, h: usize },
}

struct Case {
    /// Criterion id (short, file-name safe) and the explicit line's label.
    name: String,
    /// What the case is, printed after the number.
    what: &'static str,
    m: usize,
    k: usize,
    n: usize,
    layout: Layout,
}

impl Case {
    fn batch(&self) -> usize {
        match self.layout {
            Layout::Batched { batch } => batch,
            Layout::AttnStrided { b, h } => b * h,
            _ => 1,
        }
    }
    fn flops(&self) -> f64 {
        2.0 * (self.batch() * self.m * self.k * self.n) as f64
    }
}

fn cases() -> Vec<Case> {
    let c = |name: &str, what, m, k, n, layout| Case {
        name: name.to_string(),
        what,
        m,
        k,
        n,
        layout,
    };
    vec![
        c(
            "6400x768x768",
            "A·B row-major (attention out-proj)",
            6400,
            768,
            768,
            Layout::Plain,
        ),
        c(
            "6400x768x3072",
            "A·B row-major (MLP up)",
            6400,
            768,
            3072,
            Layout::Plain,
        ),
        c(
            "6400x3072x768",
            "A·B row-major (MLP down)",
            6400,
            3072,
            768,
            Layout::Plain,
        ),
        c(
            "6400x768x768_xWt",
            "x·Wᵀ, W stored [768,768] (Linear, HF weight)",
            6400,
            768,
            768,
            Layout::TransB,
        ),
        c(
            "6400x768x3072_xWt",
            "x·Wᵀ, W stored [3072,768] (Linear, HF weight)",
            6400,
            768,
            3072,
            Layout::TransB,
        ),
        c(
            "768x6400x768_xTdy",
            "xᵀ·dy, x stored [6400,768] (Linear weight grad)",
            768,
            6400,
            768,
            Layout::TransA,
        ),
        // MiniLM fine-tuning, batch 32 × 64 tokens = 2048 rows (compare_training.py): the
        // weight gradients dyᵀ·x (m = out features, k = rows, n = in features).
        c(
            "384x2048x384_xTdy",
            "dyᵀ·x, MiniLM 32 × 64 tokens (q/k/v/o weight grad)",
            384,
            2048,
            384,
            Layout::TransA,
        ),
        c(
            "1536x2048x384_xTdy",
            "dyᵀ·x, MiniLM 32 × 64 tokens (MLP up weight grad)",
            1536,
            2048,
            384,
            Layout::TransA,
        ),
        c(
            "384x2048x1536_xTdy",
            "dyᵀ·x, MiniLM 32 × 64 tokens (MLP down weight grad)",
            384,
            2048,
            1536,
            Layout::TransA,
        ),
        c(
            "2048x384x1536_xWt",
            "x·Wᵀ, MiniLM 32 × 64 tokens (MLP up)",
            2048,
            384,
            1536,
            Layout::TransB,
        ),
        // MiniLM (hidden 384, MLP 1536), 50 path points × 32 tokens: the compare_captum.py case.
        c(
            "1600x384x384_xWt",
            "x·Wᵀ, MiniLM 50 points × 32 tokens (q/k/v/o projection)",
            1600,
            384,
            384,
            Layout::TransB,
        ),
        c(
            "1600x384x1536_xWt",
            "x·Wᵀ, MiniLM 50 points × 32 tokens (MLP up)",
            1600,
            384,
            1536,
            Layout::TransB,
        ),
        c(
            "1600x1536x384_xWt",
            "x·Wᵀ, MiniLM 50 points × 32 tokens (MLP down)",
            1600,
            1536,
            384,
            Layout::TransB,
        ),
        c(
            "1600x384x384",
            "dy·W, MiniLM 50 points × 32 tokens (input gradient of a projection)",
            1600,
            384,
            384,
            Layout::Plain,
        ),
        c(
            "1600x1536x384",
            "dy·W, MiniLM 50 points × 32 tokens (input gradient of MLP up)",
            1600,
            1536,
            384,
            Layout::Plain,
        ),
        // q, k and v as one product (weights side by side): what fusing them would run instead
        // of three 1600x384x384 products forward and three input gradients plus two sums back.
        c(
            "1600x384x1152",
            "x·W, MiniLM 50 points × 32 tokens (q/k/v as one product)",
            1600,
            384,
            1152,
            Layout::Plain,
        ),
        c(
            "1600x1152x384",
            "dy·W, MiniLM 50 points × 32 tokens (input gradient of q/k/v as one product)",
            1600,
            1152,
            384,
            Layout::Plain,
        ),
        // One chunk of 4 path points × 128 tokens (bert-base conductance, default batch).
        c(
            "512x768x768_xWt",
            "x·Wᵀ, 4 points × 128 tokens (q/k/v/o projection)",
            512,
            768,
            768,
            Layout::TransB,
        ),
        c(
            "512x768x3072_xWt",
            "x·Wᵀ, 4 points × 128 tokens (MLP up)",
            512,
            768,
            3072,
            Layout::TransB,
        ),
        c(
            "512x3072x768_xWt",
            "x·Wᵀ, 4 points × 128 tokens (MLP down)",
            512,
            3072,
            768,
            Layout::TransB,
        ),
        c(
            "512x768x768",
            "dy·W, 4 points × 128 tokens (input gradient of a projection)",
            512,
            768,
            768,
            Layout::Plain,
        ),
        c(
            "512x3072x768",
            "dy·W, 4 points × 128 tokens (input gradient of MLP up)",
            512,
            3072,
            768,
            Layout::Plain,
        ),
        c(
            "128x768x768_xWt",
            "one path point × 128 tokens",
            128,
            768,
            768,
            Layout::TransB,
        ),
        c(
            "128x768x768",
            "one path point × 128 tokens",
            128,
            768,
            768,
            Layout::Plain,
        ),
        c(
            "128x768x3072_xWt",
            "one path point × 128 tokens",
            128,
            768,
            3072,
            Layout::TransB,
        ),
        c(
            "128x768x3072",
            "one path point × 128 tokens",
            128,
            768,
            3072,
            Layout::Plain,
        ),
        c(
            "128x3072x768_xWt",
            "one path point × 128 tokens",
            128,
            3072,
            768,
            Layout::TransB,
        ),
        c(
            "128x3072x768",
            "one path point × 128 tokens",
            128,
            3072,
            768,
            Layout::Plain,
        ),
        c(
            "600x128x64x128_batched",
            "600 contiguous 128x64 · 64x128 products",
            128,
            64,
            128,
            Layout::Batched { batch: 600 },
        ),
        c(
            "600x128x64x128_qkT",
            "50·12 heads Q·Kᵀ read in place from [50,128,12,64] (attention scores layout)",
            128,
            64,
            128,
            Layout::AttnStrided { b: 50, h: 12 },
        ),
        // MiniLM at 128 tokens: 13 path points × 12 heads of width 32 (compare_captum.py's batch).
        c(
            "156x128x32x128_qkT",
            "13·12 heads Q·Kᵀ read in place from [13,128,12,32] (MiniLM scores, 128 tokens)",
            128,
            32,
            128,
            Layout::AttnStrided { b: 13, h: 12 },
        ),
    ]
}

fn random<T: Float>(rng: &mut StdRng, len: usize) -> Vec<T> {
    (0..len)
        .map(|_| T::from_f64(rng.gen_range(-1.0..1.0)))
        .collect()
}

/// Operand buffers of one case, and the call that runs it.
struct Prepared<T> {
    dst: Vec<T>,
    a: Vec<T>,
    b: Vec<T>,
    m: usize,
    k: usize,
    n: usize,
    layout: Layout,
}

impl<T: Float> Prepared<T> {
    fn new(case: &Case, rng: &mut StdRng) -> Self {
        let (m, k, n, batch) = (case.m, case.k, case.n, case.batch());
        Prepared {
            dst: vec![T::zero(); batch * m * n],
            a: random(rng, batch * m * k),
            b: random(rng, batch * k * n),
            m,
            k,
            n,
            layout: case.layout,
        }
    }

    fn run(&mut self) {
        let (m, k, n) = (self.m, self.k, self.n);
        let one = T::one();
        let r = match self.layout {
            Layout::Plain => gemm(
                &mut self.dst,
                Mat::row_major(m, n),
                &self.a,
                Mat::row_major(m, k),
                &self.b,
                Mat::row_major(k, n),
                false,
                one,
            ),
            Layout::TransB => gemm(
                &mut self.dst,
                Mat::row_major(m, n),
                &self.a,
                Mat::row_major(m, k),
                &self.b,
                Mat::row_major(n, k).t(),
                false,
                one,
            ),
            Layout::TransA => gemm(
                &mut self.dst,
                Mat::row_major(m, n),
                &self.a,
                Mat::row_major(k, m).t(),
                &self.b,
                Mat::row_major(k, n),
                false,
                one,
            ),
            Layout::Batched { batch } => gemm_batched(
                batch,
                &mut self.dst,
                Mat::row_major(m, n),
                &self.a,
                Mat::row_major(m, k),
                &self.b,
                Mat::row_major(k, n),
                |i| [i * m * n, i * m * k, i * k * n],
                Overlap::Disjoint,
                false,
                one,
            ),
            Layout::AttnStrided { b: _, h } => {
                // q: [b, m(pos), h, k(d_head)], key: [b, n(pos), h, k(d_head)], scores [b, h, m, n].
                let qm = Mat::strided(m, k, h * k);
                let km = Mat::strided(n, k, h * k);
                gemm_batched(
                    self.dst.len() / (m * n),
                    &mut self.dst,
                    Mat::row_major(m, n),
                    &self.a,
                    qm,
                    &self.b,
                    km.t(),
                    |i| {
                        let (bi, hi) = (i / h, i % h);
                        [i * m * n, bi * m * h * k + hi * k, bi * n * h * k + hi * k]
                    },
                    Overlap::Disjoint,
                    false,
                    one,
                )
            }
        };
        r.expect("gemm failed");
        black_box(&self.dst);
    }
}

/// Best and median seconds of one call: one warm-up call, then at least `min_runs` calls and at
/// least `min_total` of wall time (at most 50 calls).
fn time_best(mut f: impl FnMut(), min_runs: usize, min_total: Duration) -> (f64, f64, usize) {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs || (start.elapsed() < min_total && times.len() < 50) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[0], times[times.len() / 2], times.len())
}

fn bench_dtype<T: Float>(c: &mut Criterion, dtype: &str, opts: &Opts, rng: &mut StdRng) {
    let mut group = c.benchmark_group(format!("gemm_{dtype}"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in cases() {
        let id = format!("gemm {dtype} {}", case.name);
        if !opts.selected(&[&id, &format!("gemm_{dtype}/{}", case.name)]) {
            continue;
        }
        let mut p = Prepared::<T>::new(&case, rng);
        let flops = case.flops();
        if opts.timed {
            let (best, median, runs) = time_best(|| p.run(), 3, Duration::from_secs(1));
            println!(
                "{id}: {:.1} GFLOP/s (best of {runs}: {:.2} ms; median {:.1} GFLOP/s; {:.2} GFLOP per call; {} threads; {})",
                flops / best / 1e9,
                best * 1e3,
                flops / median / 1e9,
                flops / 1e9,
                opts.threads,
                case.what
            );
        }
        if !opts.explicit_only {
            group.throughput(Throughput::Elements(flops as u64));
            group.bench_function(case.name.as_str(), |bch| bch.iter(|| p.run()));
        }
    }
    group.finish();
}

struct Opts {
    /// Benchmark mode (`cargo bench`), as opposed to test mode (`cargo test --benches`).
    timed: bool,
    explicit_only: bool,
    filters: Vec<String>,
    threads: usize,
}

impl Opts {
    fn from_env() -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        // Same rule as criterion: `--bench` without `--test` benchmarks; anything else only tests.
        let timed = has("--bench") && !has("--test") && !has("--list");
        // Positional arguments are criterion's name filters (substring match here).
        let filters = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        let explicit_only = std::env::var("GRADPATH_BENCH_EXPLICIT_ONLY").is_ok_and(|v| v == "1");
        Opts {
            timed,
            explicit_only: explicit_only && timed,
            filters,
            threads: rayon::current_num_threads(),
        }
    }
    fn selected(&self, ids: &[&str]) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| ids.iter().any(|id| id.contains(f.as_str())))
    }
}

fn main() {
    let opts = Opts::from_env();
    println!(
        "gradpath gemm bench: {} rayon threads (RAYON_NUM_THREADS={}); shapes m x k x n, FLOPs = 2*batch*m*k*n",
        opts.threads,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    let mut c = Criterion::default().configure_from_args();
    let mut rng = StdRng::seed_from_u64(0x6e6d);
    bench_dtype::<f32>(&mut c, "f32", &opts, &mut rng);
    bench_dtype::<f64>(&mut c, "f64", &opts, &mut rng);
    c.final_summary();
}
