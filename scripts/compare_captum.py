#!/usr/bin/env python3
"""Benchmark gradpath against Captum on a real sentence-embedding model.

Both sides explain the same scalar: the cosine similarity between the attention-mask mean-pooled
embedding of TEXT and the (fixed) mean-pooled embedding of a reference text, with token Integrated
Gradients on the output of `embeddings.word_embeddings` (baseline: every non-special token replaced
by [PAD], [CLS]/[SEP] kept, position and token-type embeddings untouched). On the Captum side that
is `LayerIntegratedGradients(forward_fn, model.embeddings.word_embeddings)` with baselines = the
pad ids; on the gradpath side `gradpath ig --similar-to ...`.

Four comparisons, per text length (in tokens, [CLS]/[SEP] included):

  1. compute only   Captum `.attribute(...)` wall time in this process (median of N after a warm-up)
                    vs gradpath's own `timing.attribution_s`, two ways: the first call of a fresh
                    process (median of N processes), and warm, as Captum is measured (one process
                    with `--repeat N+1`, the first run dropped, median of the rest). Also the
                    agreement of the per-token attributions (max |diff| / max |value|).
  2. whole process  wall time of the `gradpath ig ...` command a user types (median of N) vs a fresh
                    Python process that imports torch + transformers + captum, loads the model and
                    attributes (median of N).
  3. peak memory    peak RSS of each of those processes (/usr/bin/time -v, or getrusage in a fresh
                    wrapper process when /usr/bin/time is missing).
  4. time to        gradpath `--tolerance 1e-4` (compute time, points used; first call and warm) vs Captum's compute time
     accuracy       at the smallest of 50/100/200/400 steps whose relative completeness delta
                    |Σattr − (F(x) − F(x′))| / |F(x) − F(x′)| is ≤ 1e-4.

Ratios are Captum/gradpath for time (higher is better for gradpath) and gradpath/Captum for memory
(lower is better for gradpath).

Run with the reference environment (torch, captum, transformers 4.x), offline:

    HF_HUB_OFFLINE=1 .refenv/bin/python scripts/compare_captum.py

Only the standard library is imported at module level so that the whole-process worker
(`--worker`) measures the real import cost of torch/transformers/captum.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import statistics
import time


def median(xs):
    return statistics.median(list(xs))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Deterministic source of words for the benchmark texts (only words that are one WordPiece token
# are kept; punctuation is attached to the previous word and is its own token).
PARAGRAPH = (
    "the old harbor town woke slowly, and the fishing boats came back with the morning tide. "
    "children ran along the wall while their parents carried baskets of bread and fruit to the "
    "market. a small dog followed the baker, hoping for something to fall from his cart. near the "
    "church the teachers opened the school doors, and the first lesson of the day was about the "
    "history of the sea, the ships that had left and the people who never came home. later the "
    "wind changed, clouds covered the hills, and the rain began to fall on the quiet streets."
)
REFERENCE_TEXT = "A small fishing village by the sea in the rain."


def build_text(tokenizer, n_tokens):
    """A deterministic text of exactly n_tokens tokens, [CLS] and [SEP] included."""
    if n_tokens < 3:
        raise SystemExit("--lengths: a text needs at least 3 tokens ([CLS] word [SEP])")
    pieces = re.findall(r"[a-z]+|[.,]", PARAGRAPH)
    pieces = [p for p in pieces if len(tokenizer(p, add_special_tokens=False)["input_ids"]) == 1]
    words = []
    for i in range(n_tokens - 2):
        w = pieces[i % len(pieces)]
        if i == n_tokens - 3 and w in ",.":  # do not end on a comma; any single token will do
            w = "end"
        words.append(w)
    text = ""
    for w in words:
        text += w if (w in ",." or not text) else " " + w
    text = text[0].upper() + text[1:]
    n = len(tokenizer(text)["input_ids"])
    if n != n_tokens:
        raise SystemExit(f"internal error: built a text of {n} tokens, wanted {n_tokens}")
    return text


# --------------------------------------------------------------------------------------------
# Captum side (imports torch lazily)
# --------------------------------------------------------------------------------------------

class CaptumSide:
    def __init__(self, model_dir, threads, attn):
        import torch
        torch.set_num_threads(threads)
        import transformers
        from transformers import AutoTokenizer, BertModel
        from captum.attr import LayerIntegratedGradients
        transformers.logging.set_verbosity_error()
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = BertModel.from_pretrained(model_dir, local_files_only=True, attn_implementation=attn)
        self.model.eval()
        for p in self.model.parameters():  # only gradients w.r.t. the embeddings are needed
            p.requires_grad_(False)
        self.lig_cls = LayerIntegratedGradients
        self.ref = None

    def _pooled(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=self.torch.zeros_like(input_ids)).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def setup(self, text, reference):
        torch = self.torch
        enc = self.tok(text, return_tensors="pt")
        self.ids = enc["input_ids"]
        self.mask = enc["attention_mask"]
        special = torch.tensor(self.tok.get_special_tokens_mask(self.ids[0].tolist(), already_has_special_tokens=True),
                               dtype=torch.bool).unsqueeze(0)
        self.base = torch.where(special, self.ids, torch.full_like(self.ids, self.tok.pad_token_id))
        renc = self.tok(reference, return_tensors="pt")
        with torch.no_grad():
            self.ref = self._pooled(renc["input_ids"], renc["attention_mask"]).detach()
        self.lig = self.lig_cls(self.forward_fn, self.model.embeddings.word_embeddings)
        return len(self.ids[0])

    def forward_fn(self, input_ids, attention_mask):
        pooled = self._pooled(input_ids, attention_mask)
        return self.torch.nn.functional.cosine_similarity(pooled, self.ref.expand_as(pooled), dim=-1)

    def attribute(self, steps, batch, delta=False):
        """Returns (seconds, per-token attributions, delta or None, F(x) - F(x'))."""
        t0 = time.perf_counter()
        r = self.lig.attribute(self.ids, baselines=self.base, additional_forward_args=(self.mask,),
                               n_steps=steps, method="gausslegendre", internal_batch_size=batch,
                               return_convergence_delta=delta)
        dt = time.perf_counter() - t0
        attr, d = (r if delta else (r, None))
        per_token = attr.sum(-1)[0].detach().double().tolist()
        return dt, per_token, (None if d is None else float(d.item()))

    def delta_f(self):
        with self.torch.no_grad():
            fx = self.forward_fn(self.ids, self.mask).item()
            fb = self.forward_fn(self.base, self.mask).item()
        return fx - fb


def worker_main(a):
    """Whole-process Python run: import, load, attribute, print a JSON line."""
    t0 = time.perf_counter()
    side = CaptumSide(a.model, a.threads, a.attn)
    t1 = time.perf_counter()
    side.setup(a.text, a.similar_to)
    _, per_token, d = side.attribute(a.steps, a.captum_batch or a.steps, delta=False)
    t2 = time.perf_counter()
    print(json.dumps({"import_load_s": t1 - t0, "attribute_s": t2 - t1, "attributions": per_token}))


# --------------------------------------------------------------------------------------------
# Process running and measurement
# --------------------------------------------------------------------------------------------

HAVE_GNU_TIME = os.path.exists("/usr/bin/time")

_RUSAGE_WRAPPER = (
    "import resource,subprocess,sys,time\n"
    "t=time.perf_counter();p=subprocess.run(sys.argv[1:]);w=time.perf_counter()-t\n"
    "r=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.write('\\nMaximum resident set size (kbytes): %d\\nWRAPPER_WALL %f\\n'%(r.ru_maxrss,w))\n"
    "sys.exit(p.returncode)\n"
)


def run_measured(cmd, env):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout)."""
    if HAVE_GNU_TIME:
        full = ["/usr/bin/time", "-v"] + cmd
    else:
        full = [sys.executable, "-c", _RUSAGE_WRAPPER] + cmd
    t0 = time.perf_counter()
    p = subprocess.run(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) / 1024.0 if m else float("nan")
    return wall, rss, p.stdout


def gradpath_cmd(a, text, json_path, extra):
    method = "gauss-legendre"
    if "--method" in extra:  # the time-to-accuracy run names its own rule
        i = extra.index("--method")
        method = extra[i + 1]
        extra = extra[:i] + extra[i + 2:]
    cmd = [a.gradpath, "ig", "--model", a.model, "--text", text, "--similar-to", a.similar_to,
           "--steps", str(a.steps), "--method", method, "--dtype", "f32",
           "--threads", str(a.threads), "--json", json_path, "-q"]
    if a.gradpath_batch:
        cmd += ["--batch", str(a.gradpath_batch)]
    return cmd + extra


def run_gradpath(a, text, env, extra=()):
    fd, path = tempfile.mkstemp(suffix=".json", prefix="gradpath-bench-")
    os.close(fd)
    try:
        wall, rss, _ = run_measured(gradpath_cmd(a, text, path, list(extra)), env)
        with open(path) as f:
            j = json.load(f)
    finally:
        os.unlink(path)
    return wall, rss, j


def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def bench_length(a, side, n_tokens, env_gp, env_py, rows, notes):
    reps = a.runs
    text = build_text(side.tok, n_tokens)
    n = side.setup(text, a.similar_to)
    assert n == n_tokens
    print(f"\n=== {n_tokens} tokens (load average at start: {loadavg()}) ===", flush=True)
    print(f"text: {text[:100]}{'...' if len(text) > 100 else ''}")
    dF = side.delta_f()
    cb = a.captum_batch or a.steps

    # ---- 1. compute only -------------------------------------------------------------------
    # gradpath first (a separate process per run), then Captum in this process.
    run_gradpath(a, text, env_gp)  # warm-up (page cache)
    gp_runs = [run_gradpath(a, text, env_gp) for _ in range(reps)]
    gp_compute = median(r[2]["timing"]["attribution_s"] for r in gp_runs)
    gp_wall = median(r[0] for r in gp_runs)
    gp_rss = max(r[1] for r in gp_runs)
    gp_json = gp_runs[0][2]
    gp_attr = gp_json["attributions"]
    gp_batch = gp_json.get("batch")
    # The same, warm: one process running the attribution reps + 1 times (`--repeat`), the first
    # run dropped, as Captum's side is timed after a warm-up call in its process.
    warm_json = run_gradpath(a, text, env_gp, ["--repeat", str(reps + 1)])[2]
    gp_warm = median(warm_json["repeat_attribution_s"][1:])

    time.sleep(0.5)
    side.attribute(a.steps, cb)  # warm-up
    cap_times = []
    for _ in range(reps):
        dt, cap_attr, _ = side.attribute(a.steps, cb)
        cap_times.append(dt)
    cap_compute = median(cap_times)
    _, cap_attr_d, cap_delta = side.attribute(a.steps, cb, delta=True)
    cap_rel = abs(cap_delta) / abs(dF) if dF else float("nan")
    maxabs = max(abs(v) for v in cap_attr) or 1.0
    maxdiff = max(abs(x - y) for x, y in zip(cap_attr, gp_attr))
    agree = maxdiff / maxabs
    print(f"[compute] gradpath {fmt_s(gp_compute)} (batch {gp_batch}; warm {fmt_s(gp_warm)}), captum {fmt_s(cap_compute)} "
          f"(internal_batch_size {cb}); agreement max|diff|/max|attr| = {agree:.2e}; "
          f"rel. delta gradpath {gp_json['relative_delta']:.2e}, captum {cap_rel:.2e}; "
          f"F(x)-F(x') gradpath {gp_json['f_input'] - gp_json['f_baseline']:.6f}, captum {dF:.6f}", flush=True)
    if agree > a.agree_tol:
        notes.append(f"{n_tokens} tokens: attributions disagree: max|diff|/max|attr| = {agree:.2e} > {a.agree_tol:g}")

    # ---- 2 + 3. whole process and peak memory --------------------------------------------
    worker = [sys.executable, os.path.abspath(__file__), "--worker", "--model", a.model, "--text", text,
              "--similar-to", a.similar_to, "--steps", str(a.steps), "--threads", str(a.threads),
              "--attn", a.attn]
    if a.captum_batch:
        worker += ["--captum-batch", str(a.captum_batch)]
    py_runs = []
    for _ in range(reps):
        wall, rss, out = run_measured(worker, env_py)
        py_runs.append((wall, rss, json.loads(out.strip().splitlines()[-1])))
    py_wall = median(r[0] for r in py_runs)
    py_rss = max(r[1] for r in py_runs)
    py_imp = median(r[2]["import_load_s"] for r in py_runs)
    print(f"[process] gradpath {fmt_s(gp_wall)} (peak RSS {gp_rss:.0f} MiB), python+captum {fmt_s(py_wall)} "
          f"(import+load {fmt_s(py_imp)}, peak RSS {py_rss:.0f} MiB)", flush=True)

    # ---- 4. time to accuracy -------------------------------------------------------------
    tta = []  # per gradpath rule: (rule, median compute time, points, rel. delta, converged)
    for rule in a.tta_rule:
        # "panels": Gauss–Kronrod panels bisected where the integrand bends (--adaptive panels)
        tta_args = (["--tolerance", str(a.tolerance), "--method", "gauss-legendre", "--adaptive", "panels"]
                    if rule == "panels" else ["--tolerance", str(a.tolerance), "--method", rule])
        runs_ = [run_gradpath(a, text, env_gp, tta_args) for _ in range(reps)]
        rel_ = runs_[0][2]["relative_delta"]
        warm_ = run_gradpath(a, text, env_gp, tta_args + ["--repeat", str(reps + 1)])[2]
        tta.append((rule, median(r[2]["timing"]["attribution_s"] for r in runs_), runs_[0][2]["points_used"],
                    rel_, runs_[0][2].get("refinement", {}).get("converged", rel_ <= a.tolerance),
                    median(warm_["repeat_attribution_s"][1:])))
    time.sleep(0.5)
    cap_n, cap_tta, cap_tta_rel, tried = None, None, None, []
    for steps in a.tta_steps:
        b = min(steps, cb)
        _, _, d = side.attribute(steps, b, delta=True)  # also the warm-up for this n
        rel = abs(d) / abs(dF)
        tried.append((steps, rel))
        last_b = b
        if rel <= a.tolerance:
            cap_n, cap_tta_rel = steps, rel
            cap_tta = median(side.attribute(steps, b, delta=True)[0] for _ in range(reps))
            break
    tried_s = ", ".join(f"n={s}: {r:.1e}" for s, r in tried)
    if cap_n is None:
        # no n reached the tolerance; the time at the largest n is a lower bound for Captum.
        nmax = a.tta_steps[-1]
        cap_tta = median(side.attribute(nmax, last_b, delta=True)[0] for _ in range(reps))
        notes.append(f"{n_tokens} tokens: Captum reached no relative delta ≤ {a.tolerance:g} at "
                     f"{'/'.join(map(str, a.tta_steps))} steps ({tried_s}); its time at {nmax} steps is a lower bound")
    for rule, gp_tta, gp_pts, gp_tta_rel, gp_conv, gp_tta_warm in tta:
        print(f"[accuracy] gradpath --tolerance {a.tolerance:g} --method {rule}: {fmt_s(gp_tta)} (warm {fmt_s(gp_tta_warm)}), {gp_pts} points, "
              f"rel. delta {gp_tta_rel:.1e}{'' if gp_conv else ' (NOT converged)'}; captum: {tried_s} -> "
              f"{'n=%d' % cap_n if cap_n else 'none'} {fmt_s(cap_tta)}", flush=True)
        if not gp_conv:
            notes.append(f"{n_tokens} tokens: gradpath --tolerance {a.tolerance:g} --method {rule} did not converge "
                         f"(rel. delta {gp_tta_rel:.1e} after {gp_pts} points)")

    la_end = loadavg()
    print(f"(load average at end: {la_end})", flush=True)
    rows.append(dict(
        n=n_tokens,
        gp_compute=gp_compute, gp_warm=gp_warm, cap_compute=cap_compute, agree=agree,
        gp_wall=gp_wall, py_wall=py_wall, gp_rss=gp_rss, py_rss=py_rss,
        tta=tta, cap_tta=cap_tta, cap_n=cap_n, tta_max=a.tta_steps[-1],
        load_end=la_end,
    ))


def print_table(rows, a):
    print("\n## Results (time ratios: Captum / gradpath, higher is better for gradpath; "
          "memory ratio: gradpath / Captum, lower is better)\n")
    hdr = ("| tokens | measure | gradpath | Captum | ratio |")
    print(hdr)
    print("|---:|---|---:|---:|---:|")
    for r in rows:
        n = r["n"]
        print(f"| {n} | compute only, {a.steps} GL steps (gradpath: first call in a fresh process) | "
              f"{fmt_s(r['gp_compute'])} | {fmt_s(r['cap_compute'])} | {r['cap_compute'] / r['gp_compute']:.2f}× |")
        print(f"| {n} | compute only, {a.steps} GL steps (both warm: later calls in one process) | "
              f"{fmt_s(r['gp_warm'])} | {fmt_s(r['cap_compute'])} | {r['cap_compute'] / r['gp_warm']:.2f}× |")
        print(f"| {n} | whole process, {a.steps} GL steps | {fmt_s(r['gp_wall'])} | {fmt_s(r['py_wall'])} | "
              f"{r['py_wall'] / r['gp_wall']:.2f}× |")
        print(f"| {n} | peak RSS | {r['gp_rss']:.0f} MiB | {r['py_rss']:.0f} MiB | {r['gp_rss'] / r['py_rss']:.2f} |")
        cap_lbl = (f"{fmt_s(r['cap_tta'])} (n={r['cap_n']})" if r["cap_n"]
                   else f"> {fmt_s(r['cap_tta'])} (none ≤ {a.tolerance:g} up to n={r['tta_max']})")
        for rule, gp_tta, gp_pts, _, _, gp_tta_warm in r["tta"]:
            for how, t in (("first call", gp_tta), ("warm", gp_tta_warm)):
                print(f"| {n} | time to rel. delta ≤ {a.tolerance:g}, gradpath {rule} ({how}) | {fmt_s(t)} ({gp_pts} points) | "
                      f"{cap_lbl} | {'' if r['cap_n'] else '> '}{r['cap_tta'] / t:.2f}× |")
        print(f"| {n} | attribution agreement (max abs diff / max abs) | | | {r['agree']:.1e} |")


def main():
    ap = argparse.ArgumentParser(
        description="Compare gradpath with Captum LayerIntegratedGradients on a real BERT sentence-embedding model "
                    "(compute time, whole-process time, peak memory, time to accuracy).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"),
                    help="local Hugging Face model folder (BertModel + tokenizer); loaded offline")
    ap.add_argument("--gradpath", default=os.path.join(ROOT, "target", "release", "gradpath"),
                    help="gradpath binary (cargo build --release)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[32, 128],
                    help="text lengths in tokens, [CLS]/[SEP] included")
    ap.add_argument("--similar-to", default=REFERENCE_TEXT, help="reference text of the cosine-similarity target")
    ap.add_argument("--steps", type=int, default=50, help="Gauss-Legendre points for the compute/process comparisons")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for both sides (torch.set_num_threads, gradpath --threads, RAYON_NUM_THREADS, OMP_NUM_THREADS)")
    ap.add_argument("--captum-batch", type=int, default=None,
                    help="Captum internal_batch_size (default: all --steps in one batch; "
                         "for the time-to-accuracy runs, chunks of this size)")
    ap.add_argument("--gradpath-batch", type=int, default=None, help="gradpath --batch (default: gradpath's own choice)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions per measurement (the median time is reported)")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="relative-delta target of the time-to-accuracy comparison")
    ap.add_argument("--tta-rule", nargs="+", default=["gauss-legendre", "clenshaw-curtis", "panels"],
                    help="gradpath --method of the time-to-accuracy runs, one run each (clenshaw-curtis refines by "
                         "nesting, reusing every point; 'panels' is --method gauss-legendre --adaptive panels: "
                         "Gauss–Kronrod panels, bisected where the integrand bends)")
    ap.add_argument("--tta-steps", type=int, nargs="+", default=[50, 100, 200, 400],
                    help="Captum step counts tried (in order) for the time-to-accuracy comparison")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers attention implementation")
    ap.add_argument("--agree-tol", type=float, default=1e-3,
                    help="flag attribution disagreement above this (max abs diff / max abs value)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 repetition, 16 tokens, 8 steps, time to accuracy tried at 8/16 steps")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--text", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        return worker_main(a)

    if a.quick:
        a.runs, a.lengths, a.steps, a.tta_steps = 1, [16], 8, [8, 16]
    a.model = os.path.abspath(a.model)
    if not os.path.exists(os.path.join(a.model, "model.safetensors")):
        raise SystemExit(f"no model at {a.model} (run scripts/fetch-models.sh)")
    if not os.access(a.gradpath, os.X_OK):
        raise SystemExit(f"no gradpath binary at {a.gradpath} (run cargo build --release)")

    # Work on a private copy of the binary so that a concurrent `cargo build` cannot swap it mid-run.
    src_bin = a.gradpath
    bin_dir = tempfile.mkdtemp(prefix="gradpath-bench-bin-")
    a.gradpath = os.path.join(bin_dir, "gradpath")
    shutil.copy2(src_bin, a.gradpath)
    bin_mtime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(src_bin)))

    threads = str(a.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    env_gp = dict(os.environ, RAYON_NUM_THREADS=threads)
    env_py = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)

    side = CaptumSide(a.model, a.threads, a.attn)
    import torch
    import captum
    import transformers
    gp_version = subprocess.run([a.gradpath, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    print("# gradpath vs Captum")
    print(f"machine: nproc {os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), CPU {cpu}, {platform.platform()}")
    print(f"python {platform.python_version()}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"captum {captum.__version__}, transformers {transformers.__version__}, "
          f"attention {side.model.config._attn_implementation}")
    print(f"gradpath: {gp_version} ({src_bin}, built {bin_mtime})")
    print(f"model: {a.model}")
    print(f"settings: lengths {a.lengths}, {a.steps} Gauss-Legendre steps, threads {a.threads}, runs {a.runs} "
          f"(median of), Captum internal_batch_size {a.captum_batch or 'all steps'}, "
          f"gradpath --batch {a.gradpath_batch or 'default'}, tolerance {a.tolerance:g}, "
          f"/usr/bin/time {'yes' if HAVE_GNU_TIME else 'no (getrusage wrapper)'}")
    print(f"reference text: {a.similar_to!r}")
    print(f"load average at start: {loadavg()}", flush=True)

    rows, notes = [], []
    try:
        for n in a.lengths:
            bench_length(a, side, n, env_gp, env_py, rows, notes)
    finally:
        shutil.rmtree(bin_dir, ignore_errors=True)
    print_table(rows, a)
    print(f"\nload average at end: {loadavg()}")
    if notes:
        print("\nnotes:")
        for s in notes:
            print(f"- {s}")


if __name__ == "__main__":
    main()
