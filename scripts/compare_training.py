#!/usr/bin/env python3
"""Same fine-tuning recipe in gradpath and in PyTorch + transformers, one after the other on the
same machine, with a table of held-out accuracy, out-of-domain accuracy, training time per epoch
and peak memory (issue 16, item 4).

    cargo build --release && bash scripts/fetch-data.sh
    .refenv/bin/python scripts/compare_training.py [--limit-train N] [--epochs 3] [--threads 2] ...

Other data (text pairs included: a `"text_pair"` field is passed as the tokenizer's second text on
both sides), e.g. the depth-0 rules task:

    .refenv/bin/python scripts/compare_training.py --train-file d0-train.jsonl --test-file d0-dev.jsonl \
        --ood-file none --labels false,true --epochs 2 --lr 1e-4 --batch 16 --max-len 96

Recipe (both sides): a fresh classification head on all-MiniLM-L6-v2 (normal(0, 0.02), zero bias;
each side seeds its own generator), AdamW (lr, β = (0.9, 0.999), ε = 1e-8, weight decay 0.01 except
biases and LayerNorm weights), linear warm-up over ceil(0.1 · steps) then linear decay to 0, global
gradient-norm clipping at 1.0, dropout as in config.json, batches of --batch shuffled per epoch and
padded to their longest row, texts truncated at --max-len tokens, float32, --threads CPU threads.
Time per epoch is the training loop only (no evaluation, no checkpoint); peak memory is each
process's maximum resident set size (os.wait4). Load and CPU are printed with the table, since the
machine may be shared.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GP = os.path.join(ROOT, "target/release/gradpath")
LABELS = ["negative", "positive"]  # --labels replaces them


def peak_of(cmd, env=None):
    """Runs cmd, waiting with os.wait4 to read this child's own maximum RSS."""
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        t = time.time()
        p = subprocess.Popen(cmd, stdout=so, stderr=se, text=True, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        secs = time.time() - t
        so.seek(0)
        se.seek(0)
        out, err = so.read(), se.read()
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
    return out, ru.ru_maxrss / 1024.0, secs


def limited(path, n, tmp):
    if not n:
        return path
    dst = os.path.join(tmp, os.path.basename(path).replace(".jsonl", f".{n}.jsonl"))
    rows = [l for l in open(path) if l.strip()]
    # Every k-th line, so both classes are kept (the source files are sorted by label).
    k = max(1, len(rows) // n)
    with open(dst, "w") as f:
        f.writelines(rows[::k][:n])
    return dst


def torch_worker(a):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        a.model, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}
    )

    def load(p):
        rows = [json.loads(l) for l in open(p) if l.strip()]
        xs = [(r["text"], r["text_pair"]) if "text_pair" in r else r["text"] for r in rows]
        return xs, [r["label"] if isinstance(r["label"], int) else LABELS.index(r["label"]) for r in rows]

    def encode(batch):
        if batch and isinstance(batch[0], tuple):
            a_, b_ = [x[0] for x in batch], [x[1] for x in batch]
            return tok(a_, b_, truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")
        return tok(batch, truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")

    xs, ys = load(a.train)
    decay = [n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n]
    named = list(model.named_parameters())
    opt = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if n in decay], "weight_decay": a.weight_decay},
            {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
        ],
        lr=a.lr,
    )
    steps = math.ceil(len(xs) / a.batch) * a.epochs
    sched = get_linear_schedule_with_warmup(opt, math.ceil(steps * a.warmup), steps)
    g = torch.Generator().manual_seed(a.seed)
    epochs = []
    for e in range(a.epochs):
        model.train()
        order = torch.randperm(len(xs), generator=g).tolist()
        t = time.time()
        for i in range(0, len(order), a.batch):
            idx = order[i : i + a.batch]
            enc = encode([xs[j] for j in idx])
            loss = torch.nn.functional.cross_entropy(model(**enc).logits, torch.tensor([ys[j] for j in idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        epochs.append(time.time() - t)
    model.eval()
    acc = {}
    with torch.no_grad():
        for name, p in a.evals:
            ex, ey = load(p)
            right = 0
            for i in range(0, len(ex), a.batch):
                enc = encode(ex[i : i + a.batch])
                right += (model(**enc).logits.argmax(-1) == torch.tensor(ey[i : i + a.batch])).sum().item()
            acc[name] = right / len(ex)
    print(json.dumps({"epoch_seconds": epochs, "accuracy": acc, "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models/all-MiniLM-L6-v2"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--limit-train", type=int, default=0, help="every k-th training line, N in all (0: all)")
    ap.add_argument("--limit-eval", type=int, default=0, help="the same for the test and out-of-domain files")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--train-file", help="training JSONL (default: DATA/polarity/train.jsonl)")
    ap.add_argument("--test-file", help="held-out JSONL (default: DATA/polarity/test.jsonl)")
    ap.add_argument("--ood-file", help="out-of-domain JSONL, or 'none' (default: DATA/uci/all.jsonl)")
    ap.add_argument("--labels", default=",".join(LABELS), help="label names, in class order")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--train", help=argparse.SUPPRESS)
    ap.add_argument("--evals-json", help=argparse.SUPPRESS)
    a = ap.parse_args()
    LABELS[:] = a.labels.split(",")
    if a.torch_worker:
        a.evals = json.loads(a.evals_json)
        return torch_worker(a)

    tmp = tempfile.mkdtemp(prefix="gradpath-compare-")
    train = limited(a.train_file or f"{a.data}/polarity/train.jsonl", a.limit_train, tmp)
    test = limited(a.test_file or f"{a.data}/polarity/test.jsonl", a.limit_eval, tmp)
    ood = None if a.ood_file == "none" else limited(a.ood_file or f"{a.data}/uci/all.jsonl", a.limit_eval, tmp)
    evals = [["test", test]] + ([["ood", ood]] if ood else [])
    n_train = sum(1 for l in open(train) if l.strip())
    common = ["--epochs", str(a.epochs), "--lr", str(a.lr), "--batch", str(a.batch), "--max-len", str(a.max_len),
              "--warmup", str(a.warmup), "--weight-decay", str(a.weight_decay), "--seed", str(a.seed)]
    load_before = os.getloadavg()

    # gradpath: train (dev = the test file, so the last epoch's dev accuracy is the test accuracy; the
    # model is not selected on it), then eval on the out-of-domain file.
    out = os.path.join(tmp, "gradpath-out")
    _, gp_peak, gp_wall = peak_of([GP, "train", "--model", a.model, "--train", train, "--dev", test, "--out", out,
                                   "--labels", ",".join(LABELS), "--threads", str(a.threads), "-q", *common])
    rep = json.load(open(os.path.join(out, "training_report.json")))
    gp = {"epoch_seconds": [h["seconds"] for h in rep["history"]], "accuracy": {"test": rep["history"][-1]["dev"]["accuracy"]}}
    if ood:
        ej = os.path.join(tmp, "ood.json")
        peak_of([GP, "eval", "--model", out, "--data", ood, "--max-len", str(a.max_len), "--json", ej, "--threads", str(a.threads), "-q"])
        gp["accuracy"]["ood"] = json.load(open(ej))["accuracy"]

    tout, pt_peak, pt_wall = peak_of([sys.executable, os.path.abspath(__file__), "--torch-worker", "--model", a.model,
                                      "--train", train, "--evals-json", json.dumps(evals), "--labels", a.labels,
                                      "--threads", str(a.threads), *common])
    pt = json.loads(tout.strip().splitlines()[-1])
    load_after = os.getloadavg()

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    simd = [f for f in flags if f in ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")]
    mean = lambda v: sum(v) / len(v)
    res = {
        "train_examples": n_train, "epochs": a.epochs, "recipe": vars(a) | {"evals": evals},
        "gradpath": gp | {"peak_rss_mib": gp_peak, "wall_seconds": gp_wall},
        "pytorch": pt | {"peak_rss_mib": pt_peak, "wall_seconds": pt_wall},
        "load_before": load_before, "load_after": load_after, "cpu": cpu, "simd_flags": simd, "nproc": os.cpu_count(),
    }
    print(f"CPU: {cpu} ({os.cpu_count()} logical CPUs; {' '.join(simd)}); threads {a.threads}; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"{n_train} training examples, {a.epochs} epoch(s), batch {a.batch}, max-len {a.max_len}, lr {a.lr}")
    print("| | held-out acc | out-of-domain acc | s / epoch | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name, r, peak in (("gradpath", gp, gp_peak), ("PyTorch", pt, pt_peak)):
        ood_acc = f"{100 * r['accuracy']['ood']:.2f} %" if "ood" in r["accuracy"] else "—"
        print(f"| {name} | {100 * r['accuracy']['test']:.2f} % | {ood_acc} | "
              f"{mean(r['epoch_seconds']):.1f} | {peak:.0f} |")
    print(f"time ratio (PyTorch / gradpath per epoch): {mean(pt['epoch_seconds']) / mean(gp['epoch_seconds']):.2f}")
    if a.json:
        json.dump(res, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    main()
