//! Forward and forward+backward of each op family on transformer-sized inputs (GPT-2 small:
//! d_model 768, d_mlp 3072, 12 heads of 64, 128 positions, vocabulary 50257), through the public
//! `Var`/`Tape` API, as attribution runs them.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench --bench ops
//! RAYON_NUM_THREADS=2 cargo bench --bench ops -- softmax      # criterion filter (also filters the lines)
//! GRADPATH_BENCH_EXPLICIT_ONLY=1 cargo bench --bench ops      # only the explicit lines
//! GRADPATH_BENCH_BATCH=8 GRADPATH_BENCH_DTYPE=f64 cargo bench --bench ops   # (defaults: 50, f32)
//! GRADPATH_SIMD=avx-fma cargo bench --bench ops -- gelu   # one SIMD level (ops::simd)
//! ```
//!
//! - `fwd`: the op on constant `Var`s (nothing recorded): the forward kernel alone.
//! - `fwd+bwd`: a fresh tape, the inputs as leaves, the op, then `tape.grad(&[&y], &[seed], wrt)`
//!   with a fixed random seed (cotangent) of y's shape; `wrt` is named per case.
//!
//! Each case prints one explicit line (`ops f32 gelu_erf fwd [50,128,3072]: 12.3 GB/s ...`), timed
//! with `std::time::Instant` independently of criterion (one warm-up call, then the best of at
//! least 3 calls and at least ~1 s), then criterion measures it again with a `Throughput`.
//!
//! Memory-bound families report GB/s of *compulsory* traffic: every full-size tensor counted once
//! per kernel that must touch it — forward: input read + output written; backward: seed and the
//! full-size saved tensors read + each requested full-size gradient written. Small vectors (bias,
//! LayerNorm weight, mean/rstd, masks, cos/sin tables) are ignored, as are write-allocate reads
//! and any extra passes an implementation makes (so a low GB/s flags such extra work). The byte
//! formula is printed per case, with N = elements of the full-size tensor and s = element size.
//! GEMM-bound families (attention, matmul) report GFLOP/s of their GEMM FLOPs only.

use criterion::{black_box, Criterion, SamplingMode, Throughput};
use gradpath::tensor::Float;
use gradpath::{Tape, Tensor, Var};
use std::time::{Duration, Instant};

const T_POS: usize = 128;
const D_MODEL: usize = 768;
const D_MLP: usize = 3072;
const N_HEADS: usize = 12;
const D_HEAD: usize = 64;
const D_VOCAB: usize = 50257;

/// What a case's throughput is counted in.
#[derive(Clone, Copy)]
enum Work {
    Bytes(f64),
    Flops(f64),
}

impl Work {
    fn rate(&self, secs: f64) -> String {
        match *self {
            Work::Bytes(b) => format!("{:.2} GB/s", b / secs / 1e9),
            Work::Flops(f) => format!("{:.1} GFLOP/s", f / secs / 1e9),
        }
    }
    fn amount(&self) -> String {
        match *self {
            Work::Bytes(b) => format!("{:.1} MB moved", b / 1e6),
            Work::Flops(f) => format!("{:.2} GFLOP", f / 1e9),
        }
    }
    fn throughput(&self) -> Throughput {
        match *self {
            Work::Bytes(b) => Throughput::Bytes(b as u64),
            Work::Flops(f) => Throughput::Elements(f as u64),
        }
    }
}

/// One measured function: criterion id, shapes, work and how it is counted.
struct Bench<'a> {
    id: String,
    shapes: String,
    work: Work,
    formula: String,
    f: Box<dyn FnMut() + 'a>,
}

/// SplitMix64: a fast, seeded generator (the inputs are ~100 M numbers; only their values' range
/// matters to the kernels).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn random<T: Float>(rng: &mut Rng, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<T> = (0..n).map(|_| T::from_f64(rng.uniform(lo, hi))).collect();
    Tensor::from_vec(v, shape).unwrap()
}

type OpFn<'a> = dyn Fn(&[Var]) -> gradpath::Result<Var> + 'a;

/// Forward on constants (no tape).
fn forward(inputs: &[&Tensor], f: &OpFn) -> Tensor {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::constant((*t).clone())).collect();
    f(&vars).unwrap().into_value()
}

/// Forward on a fresh tape, then the gradient of `<seed, y>` wrt the inputs whose flag is set.
fn forward_backward(
    inputs: &[&Tensor],
    wrt: &[bool],
    seed: &Tensor,
    f: &OpFn,
) -> Vec<Option<Tensor>> {
    let tape = Tape::new();
    let vars: Vec<Var> = inputs
        .iter()
        .zip(wrt)
        .map(|(t, &w)| {
            if w {
                tape.var((*t).clone())
            } else {
                Var::constant((*t).clone())
            }
        })
        .collect();
    let y = f(&vars).unwrap();
    let wrt_vars: Vec<&Var> = vars
        .iter()
        .zip(wrt)
        .filter(|(_, &w)| w)
        .map(|(v, _)| v)
        .collect();
    let g = tape
        .grad(&[&y], std::slice::from_ref(seed), &wrt_vars)
        .unwrap();
    assert!(
        g.iter().all(|g| g.is_some()),
        "a requested gradient is missing"
    );
    g
}

fn shape_str(s: &[usize]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Adds the `fwd` and `fwd+bwd` benchmarks of one op.
#[allow(clippy::too_many_arguments)]
fn push_pair<'a>(
    out: &mut Vec<Bench<'a>>,
    name: &str,
    shapes: String,
    inputs: Vec<&'a Tensor>,
    wrt: Vec<bool>,
    wrt_names: &str,
    seed: &'a Tensor,
    f: std::rc::Rc<OpFn<'a>>,
    fwd_work: (Work, &str),
    fb_work: (Work, &str),
) {
    let (i1, f1) = (inputs.clone(), f.clone());
    out.push(Bench {
        id: format!("{name}/fwd"),
        shapes: shapes.clone(),
        work: fwd_work.0,
        formula: fwd_work.1.to_string(),
        f: Box::new(move || {
            black_box(forward(&i1, &*f1));
        }),
    });
    out.push(Bench {
        id: format!("{name}/fwd+bwd"),
        shapes: format!("{shapes}, grad wrt {wrt_names}"),
        work: fb_work.0,
        formula: fb_work.1.to_string(),
        f: Box::new(move || {
            black_box(forward_backward(&inputs, &wrt, seed, &*f));
        }),
    });
}

/// The inputs of every case, built once per dtype.
struct Data {
    x_mlp: Tensor,
    seed_mlp: Tensor,
    bias_mlp: Tensor,
    x_res: Tensor,
    seed_res: Tensor,
    /// `x_res`, `seed_res` as `[b·T, d_model]` rows (same buffers).
    x_rows: Tensor,
    seed_rows: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
    scores: Tensor,
    seed_scores: Tensor,
    pad_mask: Tensor,
    causal_mask: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    seed_heads: Tensor,
    cos: Tensor,
    sin: Tensor,
    table: Tensor,
    ids: Vec<usize>,
    w_out: Tensor,
}

impl Data {
    fn new<T: Float>(b: usize, rng: &mut Rng) -> Data {
        let mlp = [b, T_POS, D_MLP];
        let res = [b, T_POS, D_MODEL];
        let sc = [b, N_HEADS, T_POS, T_POS];
        let heads = [b, T_POS, N_HEADS, D_HEAD];
        // Padding mask [b,1,1,key]: item i has its last (i % 32) key positions masked.
        let mut pad = vec![0.0; b * T_POS];
        for i in 0..b {
            for j in T_POS - (i % 32)..T_POS {
                pad[i * T_POS + j] = f64::NEG_INFINITY;
            }
        }
        let mut causal = vec![0.0; T_POS * T_POS];
        for i in 0..T_POS {
            for j in i + 1..T_POS {
                causal[i * T_POS + j] = f64::NEG_INFINITY;
            }
        }
        // HF rotate_half tables for base 10000.
        let (mut cos, mut sin) = (vec![0.0; T_POS * D_HEAD], vec![0.0; T_POS * D_HEAD]);
        for p in 0..T_POS {
            for i in 0..D_HEAD {
                let f = 10000f64.powf(-2.0 * (i % (D_HEAD / 2)) as f64 / D_HEAD as f64);
                cos[p * D_HEAD + i] = (p as f64 * f).cos();
                sin[p * D_HEAD + i] = (p as f64 * f).sin();
            }
        }
        let dt = T::DTYPE;
        let x_res = random::<T>(rng, &res, -3.0, 3.0);
        let seed_res = random::<T>(rng, &res, -1.0, 1.0);
        Data {
            x_rows: x_res.reshape(&[b * T_POS, D_MODEL]).unwrap(),
            seed_rows: seed_res.reshape(&[b * T_POS, D_MODEL]).unwrap(),
            x_res,
            seed_res,
            x_mlp: random::<T>(rng, &mlp, -3.0, 3.0),
            seed_mlp: random::<T>(rng, &mlp, -1.0, 1.0),
            bias_mlp: random::<T>(rng, &[D_MLP], -1.0, 1.0),
            ln_w: random::<T>(rng, &[D_MODEL], 0.5, 1.5),
            ln_b: random::<T>(rng, &[D_MODEL], -0.5, 0.5),
            scores: random::<T>(rng, &sc, -4.0, 4.0),
            seed_scores: random::<T>(rng, &sc, -1.0, 1.0),
            pad_mask: Tensor::from_f64(&pad, &[b, 1, 1, T_POS], dt).unwrap(),
            causal_mask: Tensor::from_f64(&causal, &[1, 1, T_POS, T_POS], dt).unwrap(),
            q: random::<T>(rng, &heads, -1.0, 1.0),
            k: random::<T>(rng, &heads, -1.0, 1.0),
            v: random::<T>(rng, &heads, -1.0, 1.0),
            seed_heads: random::<T>(rng, &heads, -1.0, 1.0),
            cos: Tensor::from_f64(&cos, &[T_POS, D_HEAD], dt).unwrap(),
            sin: Tensor::from_f64(&sin, &[T_POS, D_HEAD], dt).unwrap(),
            table: random::<T>(rng, &[D_VOCAB, D_MODEL], -0.1, 0.1),
            ids: (0..b * T_POS).map(|_| rng.below(D_VOCAB)).collect(),
            w_out: random::<T>(rng, &[D_MODEL, D_MODEL], -0.05, 0.05),
        }
    }
}

fn benches<'a>(d: &'a Data, b: usize, s: f64) -> Vec<Bench<'a>> {
    use std::rc::Rc;
    let mut v = Vec::new();
    let n_mlp = (b * T_POS * D_MLP) as f64;
    let n_res = (b * T_POS * D_MODEL) as f64;
    let n_sc = (b * N_HEADS * T_POS * T_POS) as f64;
    let n_heads = (b * T_POS * N_HEADS * D_HEAD) as f64;
    let mlp = shape_str(&[b, T_POS, D_MLP]);
    let bytes = |k: f64, n: f64| Work::Bytes(k * n * s);

    // Elementwise.
    push_pair(
        &mut v,
        "gelu_erf",
        mlp.clone(),
        vec![&d.x_mlp],
        vec![true],
        "x",
        &d.seed_mlp,
        Rc::new(|x: &[Var]| x[0].gelu_erf()),
        (bytes(2.0, n_mlp), "2N·s"),
        (bytes(5.0, n_mlp), "(2N + 3N)·s"),
    );
    push_pair(
        &mut v,
        "gelu_tanh",
        mlp.clone(),
        vec![&d.x_mlp],
        vec![true],
        "x",
        &d.seed_mlp,
        Rc::new(|x: &[Var]| x[0].gelu_tanh()),
        (bytes(2.0, n_mlp), "2N·s"),
        (bytes(5.0, n_mlp), "(2N + 3N)·s"),
    );
    push_pair(
        &mut v,
        "add_bias",
        format!("{mlp} + [{D_MLP}]"),
        vec![&d.x_mlp, &d.bias_mlp],
        vec![true, true],
        "x and bias",
        &d.seed_mlp,
        Rc::new(|x: &[Var]| x[0].add(&x[1])),
        (bytes(2.0, n_mlp), "2N·s"),
        (
            bytes(3.0, n_mlp),
            "(2N + N: dx is the seed itself, dbias reads it)·s",
        ),
    );

    // LayerNorm.
    let rows = shape_str(&[b * T_POS, D_MODEL]);
    let (x_rows, seed_rows) = (&d.x_rows, &d.seed_rows);
    push_pair(
        &mut v,
        "layernorm",
        rows.clone(),
        vec![x_rows, &d.ln_w, &d.ln_b],
        vec![true, false, false],
        "x",
        seed_rows,
        Rc::new(|x: &[Var]| x[0].layer_norm(&x[1], Some(&x[2]), 1e-5)),
        (bytes(2.0, n_res), "2N·s"),
        (bytes(5.0, n_res), "(2N + 3N)·s"),
    );
    let lnw = Rc::new(|x: &[Var]| x[0].layer_norm(&x[1], Some(&x[2]), 1e-5));
    v.push(Bench {
        id: "layernorm_wb/fwd+bwd".into(),
        shapes: format!("{rows}, grad wrt x, w and b"),
        work: bytes(5.0, n_res),
        formula: "(2N + 3N)·s (dw, db: no full-size output)".into(),
        f: Box::new(move || {
            black_box(forward_backward(
                &[x_rows, &d.ln_w, &d.ln_b],
                &[true, true, true],
                seed_rows,
                &*lnw,
            ));
        }),
    });

    // Softmax with a padding mask.
    push_pair(
        &mut v,
        "softmax_mask",
        format!(
            "{} + mask [{b},1,1,{T_POS}]",
            shape_str(&[b, N_HEADS, T_POS, T_POS])
        ),
        vec![&d.scores, &d.pad_mask],
        vec![true, false],
        "x",
        &d.seed_scores,
        Rc::new(|x: &[Var]| x[0].softmax(Some(x[1].value()))),
        (bytes(2.0, n_sc), "2N·s"),
        (bytes(5.0, n_sc), "(2N + 3N)·s"),
    );

    // Attention: scores GEMM + softmax (causal mask) + apply GEMM.
    let tflops = 2.0 * (b * N_HEADS * T_POS * T_POS * D_HEAD) as f64;
    push_pair(
        &mut v,
        "sdpa",
        format!("q,k,v {} causal", shape_str(&[b, T_POS, N_HEADS, D_HEAD])),
        vec![&d.q, &d.k, &d.v, &d.causal_mask],
        vec![true, true, true, false],
        "q, k, v",
        &d.seed_heads,
        Rc::new(|x: &[Var]| Ok(Var::sdpa(&x[0], &x[1], &x[2], Some(x[3].value()), 0.125)?.z)),
        (Work::Flops(2.0 * tflops), "2 GEMMs of 2·b·h·T²·d"),
        (Work::Flops(6.0 * tflops), "6 GEMMs of 2·b·h·T²·d"),
    );

    // RoPE.
    push_pair(
        &mut v,
        "rope",
        format!(
            "{} cos/sin [{T_POS},{D_HEAD}]",
            shape_str(&[b, T_POS, N_HEADS, D_HEAD])
        ),
        vec![&d.q, &d.cos, &d.sin],
        vec![true, false, false],
        "x",
        &d.seed_heads,
        Rc::new(|x: &[Var]| x[0].rope(x[1].value(), x[2].value())),
        (bytes(2.0, n_heads), "2N·s"),
        (bytes(4.0, n_heads), "(2N + 2N)·s"),
    );

    // Embedding gather (backward: dense [vocab, d_model] table gradient).
    let ids = &d.ids;
    let ids_shape = [b, T_POS];
    let n_tab = (D_VOCAB * D_MODEL) as f64;
    push_pair(
        &mut v,
        "embedding",
        format!("table [{D_VOCAB},{D_MODEL}] ids [{b},{T_POS}]"),
        vec![&d.table],
        vec![true],
        "table",
        &d.seed_res,
        Rc::new(move |x: &[Var]| Var::embedding(&x[0], ids, &ids_shape)),
        (bytes(2.0, n_res), "2N·s (N = b·T·d_model gathered)"),
        (
            Work::Bytes((3.0 * n_res + n_tab) * s),
            "(2N + N + V·d_model dense grad written)·s",
        ),
    );

    // Linear without bias: x·Wᵀ (HF [out, in] weight).
    let mm = 2.0 * (b * T_POS * D_MODEL * D_MODEL) as f64;
    let res = shape_str(&[b, T_POS, D_MODEL]);
    push_pair(
        &mut v,
        "matmul_xWt",
        format!("{res}·[{D_MODEL},{D_MODEL}]ᵀ"),
        vec![&d.x_res, &d.w_out],
        vec![true, false],
        "x",
        &d.seed_res,
        Rc::new(|x: &[Var]| x[0].matmul_t(&x[1], false, true)),
        (Work::Flops(mm), "2·b·T·768·768"),
        (Work::Flops(2.0 * mm), "2 GEMMs"),
    );
    let mmw = Rc::new(|x: &[Var]| x[0].matmul_t(&x[1], false, true));
    let (xr, w) = (&d.x_res, &d.w_out);
    v.push(Bench {
        id: "matmul_xWt_w/fwd+bwd".into(),
        shapes: format!("{res}·[{D_MODEL},{D_MODEL}]ᵀ, grad wrt x and W"),
        work: Work::Flops(3.0 * mm),
        formula: "3 GEMMs".into(),
        f: Box::new(move || {
            black_box(forward_backward(
                &[xr, w],
                &[true, true],
                &d.seed_res,
                &*mmw,
            ));
        }),
    });
    v
}

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

struct Opts {
    timed: bool,
    explicit_only: bool,
    filters: Vec<String>,
    threads: usize,
    batch: usize,
    dtypes: Vec<&'static str>,
}

impl Opts {
    fn from_env() -> Opts {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        // Same rule as criterion: `--bench` without `--test` benchmarks; anything else only tests.
        let timed = has("--bench") && !has("--test") && !has("--list");
        let filters = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        let env = |k: &str| std::env::var(k).ok();
        let explicit_only = env("GRADPATH_BENCH_EXPLICIT_ONLY").is_some_and(|v| v == "1");
        let batch = env("GRADPATH_BENCH_BATCH")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if timed { 50 } else { 2 });
        let dtypes = match env("GRADPATH_BENCH_DTYPE").as_deref() {
            Some("f64") => vec!["f64"],
            Some("both") => vec!["f32", "f64"],
            _ => vec!["f32"],
        };
        Opts {
            timed,
            explicit_only: explicit_only && timed,
            filters,
            threads: rayon::current_num_threads(),
            batch,
            dtypes,
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

fn bench_dtype<T: Float>(c: &mut Criterion, dtype: &str, opts: &Opts, rng: &mut Rng) {
    let data = Data::new::<T>(opts.batch, rng);
    let mut list = benches(&data, opts.batch, std::mem::size_of::<T>() as f64);
    let mut group = c.benchmark_group(format!("ops_{dtype}"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for bench in list.iter_mut() {
        let line_id = format!("ops {dtype} {}", bench.id.replace('/', " "));
        if !opts.selected(&[&line_id, &format!("ops_{dtype}/{}", bench.id)]) {
            continue;
        }
        if opts.timed {
            let (best, median, runs) = time_best(&mut bench.f, 3, Duration::from_secs(1));
            println!(
                "{line_id} {}: {} (best of {runs}: {:.2} ms; median {}; {} = {}; {} threads)",
                bench.shapes,
                bench.work.rate(best),
                best * 1e3,
                bench.work.rate(median),
                bench.formula,
                bench.work.amount(),
                opts.threads
            );
        }
        if !opts.explicit_only {
            group.throughput(bench.work.throughput());
            let f = &mut bench.f;
            group.bench_function(bench.id.as_str(), |bch| bch.iter(&mut *f));
        }
    }
    group.finish();
}

fn main() {
    let opts = Opts::from_env();
    println!(
        "gradpath ops bench: {} rayon threads (RAYON_NUM_THREADS={}); batch b = {}, T = {T_POS}, d_model {D_MODEL}, d_mlp {D_MLP}, {N_HEADS} heads x {D_HEAD}, vocab {D_VOCAB}; dtypes {:?}",
        opts.threads,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        opts.batch,
        opts.dtypes
    );
    {
        use gradpath::ops::simd;
        println!(
            "cpu: {} ({}); elementwise/softmax/norm at {} (GRADPATH_SIMD caps it), gemm kernels {}",
            simd::cpu_model().unwrap_or_else(|| "unknown".into()),
            simd::cpu_features().join(" "),
            simd::level().name(),
            simd::gemm_kernels()
        );
    }
    println!("GB/s = compulsory bytes (each full-size tensor read/written once per kernel; small vectors, write-allocate ignored) / best time; GFLOP/s counts GEMM FLOPs only");
    let mut c = Criterion::default().configure_from_args();
    let mut rng = Rng(0x6f70);
    for dt in opts.dtypes.clone() {
        match dt {
            "f64" => bench_dtype::<f64>(&mut c, "f64", &opts, &mut rng),
            _ => bench_dtype::<f32>(&mut c, "f32", &opts, &mut rng),
        }
    }
    c.final_summary();
}
