#!/usr/bin/env python3
"""Benchmark (not a test): the LIG package against `gradpath lig` on the same CPU and threads.

    bash scripts/setup-refenv.sh   # pins layer-wise-integrated-gradients
    cargo build --release
    .refenv/bin/python scripts/compare_lig.py [--model models/all-MiniLM-L6-v2 | --bert-base]
        [--tokens 41] [--steps 32] [--threads 2] [--only z2z,z2u] [--z2u-layer 0]

Cases (issue 11, item 8):
  z2z  the layer map of every layer, every target (package: explain(granularity="layer"),
       baseline zero; gradpath: --granularity layer --baseline-layer zero, --method
       captum-trapezoid, the package's rule and number of points).
  z2u  the attention map of every head of one layer for every target (package:
       explain(granularity="att"), baseline zero; gradpath: --granularity att).

Each measurement runs in its own process; wall time and peak RSS (the package: that process's
`ru_maxrss`, model and imports included; gradpath: the binary's, as the only child of that
process) are printed as a table. `--bert-base` writes a randomly initialised bert-base-sized BertModel (12 layers, d 768,
12 heads, seed 0) with MiniLM's tokenizer (the same uncased WordPiece vocabulary) to a temporary
folder. The text is the first `--tokens` tokens (special tokens included) of a fixed English
passage. The package imports `lightning` only for annotations; a stub module stands in for it.
Print `uptime` and the CPU model next to the numbers you report.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

PASSAGE = (
    "The film follows a young engineer who leaves her small coastal town to work on a bridge "
    "across a wide river, and over one long winter she learns that the people who doubted "
    "her were not entirely wrong about the cost of ambition, the weight of promises and the "
    "quiet kindness of strangers who ask for nothing in return."
)
GP = os.environ.get("GRADPATH", "target/release/gradpath")


def text_of(model, n):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    words = PASSAGE.split()
    for k in range(1, len(words) + 1):
        t = " ".join(words[:k])
        if len(tok(t)["input_ids"]) >= n:
            return t, len(tok(t)["input_ids"])
    raise SystemExit("passage too short for --tokens")


def one(case, who, model, text, steps, threads, layer):
    """Runs one measurement in this process (the parent records its peak RSS)."""
    if who == "gradpath":
        out = tempfile.mktemp(suffix=".json")
        args = [GP, "lig", "--model", model, "--text", text, "--steps", str(steps),
                "--method", "captum-trapezoid", "--threads", str(threads), "--quiet", "--json", out]
        if case == "z2z":
            args += ["--granularity", "layer", "--baseline-layer", "zero"]
        else:
            args += ["--granularity", "att", "--baseline-att", "zero", "--layers", str(layer)]
        t = time.time()
        subprocess.run(args, check=True)
        secs = time.time() - t
        return secs, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    import types

    import torch

    stub = types.ModuleType("lightning")
    stub.LightningModule = torch.nn.Module
    sys.modules.setdefault("lightning", stub)
    torch.set_num_threads(threads)
    import lig

    t = time.time()
    if case == "z2z":
        lig.explain(text, model=model, num_steps=steps, granularity="layer",
                    baseline_layer="zero", device="cpu")
    else:
        lig.explain(text, model=model, num_steps=steps, granularity="att",
                    baseline_att="zero", layers=[layer], device="cpu")
    return time.time() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_bert_base(dst):
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                     num_attention_heads=12, intermediate_size=3072)
    BertModel(cfg).save_pretrained(dst, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        src = os.path.join("models/all-MiniLM-L6-v2", f)
        if os.path.exists(src):
            shutil.copy(src, dst)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--bert-base", action="store_true")
    ap.add_argument("--tokens", type=int, default=41)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="z2z,z2u")
    ap.add_argument("--z2u-layer", type=int, default=0)
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # internal: case who
    ap.add_argument("--text", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        s, mib = one(a.one[0], a.one[1], a.model, a.text, a.steps, a.threads, a.z2u_layer)
        print(json.dumps({"seconds": s, "peak_mib": mib}))
        return
    model = a.model
    if a.bert_base:
        model = tempfile.mkdtemp(prefix="bert-base-random-")
        make_bert_base(model)
    text, n = text_of(model, a.tokens)
    print(f"model {model}, {n} tokens, {a.steps} points, {a.threads} threads")
    rows = []
    for case in a.only.split(","):
        res = {}
        for who in ("package", "gradpath"):
            cmd = [sys.executable, __file__, "--one", case, who, "--model", model, "--text", text,
                   "--steps", str(a.steps), "--threads", str(a.threads), "--z2u-layer", str(a.z2u_layer)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(p.stderr[-2000:])
                raise SystemExit(f"{case} {who} failed")
            r = json.loads(p.stdout.strip().splitlines()[-1])
            res[who] = (r["seconds"], r["peak_mib"])
        rows.append((case, res))
    print("| case | package s | gradpath s | speed-up | package peak MiB | gradpath peak MiB |")
    print("|---|---|---|---|---|---|")
    for case, r in rows:
        (ps, pm), (gs, gm) = r["package"], r["gradpath"]
        print(f"| {case} | {ps:.1f} | {gs:.1f} | {ps / gs:.1f}x | {pm:.0f} | {gm:.0f} |")


if __name__ == "__main__":
    main()
