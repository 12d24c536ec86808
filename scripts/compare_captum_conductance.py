#!/usr/bin/env python3
"""Benchmark: layer conductance of every layer, gradpath (one sweep) vs Captum (one call per layer).

Model: a BertForSequenceClassification with random weights from a config (default bert-base:
12 layers, hidden 768, 12 heads, intermediate 3072, vocab 30522, 2 labels), saved as a Hugging
Face folder with the all-MiniLM-L6-v2 tokenizer (same 30522-token BERT uncased vocabulary). Input:
a sentence of exactly --tokens tokens ([CLS] and [SEP] included). Target: logit of class 1.
Path: word embeddings (Captum: `fwd(E)` replaces `embeddings.word_embeddings`' output by E;
gradpath: `--path-boundary hook_embed`, the default), [PAD] baseline with [CLS]/[SEP] kept.
Conductance at each `encoder.layer[l]`'s output (= gradpath `blocks.{l}.hook_resid_post`),
--steps steps, Gauss–Legendre (Captum's default), float32.

Captum side (a fresh Python process): `LayerConductance(fwd, model.bert.encoder.layer[l])` for
l = 0..L−1, 12 calls, no internal batching (as the BERT tutorial). gradpath side: one
`gradpath conductance` process. Both with the same number of threads. Reported: wall time of the
attribution (each side's own clock), whole-process wall time and peak RSS (/usr/bin/time -v), and
the agreement of the per-token conductance (max |diff| / max |value| over all layers).

    .refenv/bin/python scripts/compare_captum_conductance.py \
        --gradpath target/release/gradpath --threads 16            # bert-base, 128 tokens, 50 steps
    ... --layers 2 --hidden 128 --heads 4 --intermediate 512 --tokens 32 --steps 10   # quick try

The issue's goal: gradpath ≥ 8× faster than the 12 Captum calls and peak memory ≤ 2 GB.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
TOKENIZER = os.path.join(REPO, "models", "all-MiniLM-L6-v2", "tokenizer.json")
WORDS = (
    "the quick brown fox jumps over the lazy dog while a small child reads a book about "
    "rivers mountains and the long history of music in old cities"
).split()


def build_model(args, folder):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(args.seed)
    cfg = transformers.BertConfig(
        vocab_size=30522,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        max_position_embeddings=512,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(cfg).eval()
    model.save_pretrained(folder, safe_serialization=True)
    shutil.copy(TOKENIZER, os.path.join(folder, "tokenizer.json"))


def sentence(tokens):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(TOKENIZER)
    tok.no_padding()
    tok.no_truncation()
    words = []
    i = 0
    while True:
        cand = " ".join(words + [WORDS[i % len(WORDS)]])
        n = len(tok.encode(cand).ids)
        if n > tokens:
            break
        words.append(WORDS[i % len(WORDS)])
        i += 1
        if n == tokens:
            break
    text = " ".join(words)
    assert len(tok.encode(text).ids) == tokens, (len(tok.encode(text).ids), tokens)
    return text


def captum_worker(args):
    """Runs in a fresh process: 12 LayerConductance calls; prints a JSON line."""
    import time

    import torch
    import transformers
    from captum.attr import LayerConductance
    from tokenizers import Tokenizer

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    model = transformers.BertForSequenceClassification.from_pretrained(
        args.folder, attn_implementation="eager"
    ).eval()
    tok = Tokenizer.from_file(os.path.join(args.folder, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    enc = tok.encode(args.text)
    ids = torch.tensor([enc.ids])
    pad = tok.token_to_id("[PAD]")
    base = torch.tensor([[t if s else pad for t, s in zip(enc.ids, enc.special_tokens_mask)]])
    word = model.bert.embeddings.word_embeddings

    def fwd(E):
        h = word.register_forward_hook(lambda _m, _i, _o: E)
        try:
            r = ids.expand(E.shape[0], -1)
            return model(input_ids=r, attention_mask=torch.ones_like(r), token_type_ids=torch.zeros_like(r)).logits
        finally:
            h.remove()

    with torch.no_grad():
        x, xb = word(ids), word(base)
    t0 = time.perf_counter()
    per_layer = []
    for layer in model.bert.encoder.layer:
        lc = LayerConductance(fwd, layer)
        a = lc.attribute(x, baselines=xb, target=1, n_steps=args.steps, method="gausslegendre")
        if isinstance(a, tuple):
            a = a[0]
        per_layer.append(a[0].sum(-1).detach().tolist())
    dt = time.perf_counter() - t0
    print(json.dumps({"attribution_s": dt, "per_token": per_layer}))


def timed(cmd, env=None):
    """(stdout, wall seconds, peak RSS bytes) of `cmd` under /usr/bin/time -v."""
    full = ["/usr/bin/time", "-v"] + cmd
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:3])} … failed:\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) * 1024
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", p.stderr)
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return p.stdout, wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradpath", default=os.path.join(REPO, "target", "release", "gradpath"))
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--intermediate", type=int, default=3072)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-captum", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--text", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        captum_worker(args)
        return
    if not os.path.isfile(TOKENIZER):
        sys.exit(f"error: {TOKENIZER} missing\nhint: run scripts/fetch-models.sh")
    if not os.path.isfile(args.gradpath):
        sys.exit(f"error: {args.gradpath} missing\nhint: cargo build --release")
    # The random model is cached (it is deterministic in the config and seed).
    folder = os.path.join(REPO, "target", "bench-models",
                          f"bert-l{args.layers}-h{args.hidden}-a{args.heads}-i{args.intermediate}-s{args.seed}")
    if not os.path.isfile(os.path.join(folder, "model.safetensors")):
        os.makedirs(folder, exist_ok=True)
        build_model(args, folder)
    with tempfile.TemporaryDirectory(prefix="gradpath-bench-") as tmp:
        text = sentence(args.tokens)
        print(f"model: random BERT, {args.layers} layers, hidden {args.hidden}, {args.heads} heads, "
              f"{args.tokens} tokens, {args.steps} steps, {args.threads} threads")
        out_json = os.path.join(tmp, "gradpath.json")
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        _, g_wall, g_rss = timed(
            [args.gradpath, "conductance", "--model", folder, "--text", text, "--target", "1",
             "--steps", str(args.steps), "--threads", str(args.threads), "-q", "--json", out_json],
            env,
        )
        g = json.load(open(out_json))
        g_s = g["timing"]["attribution_s"]
        print(f"gradpath: attribution {g_s:.2f} s (one sweep of {g['points']} points, batch {g['batch']}), "
              f"process {g_wall:.2f} s, peak RSS {g_rss / 2**30:.2f} GiB")
        if args.skip_captum:
            return
        out, c_wall, c_rss = timed(
            [sys.executable, os.path.abspath(__file__), "--worker", "--folder", folder, "--text", text,
             "--steps", str(args.steps), "--threads", str(args.threads)],
            env,
        )
        c = json.loads(out.strip().splitlines()[-1])
        c_s = c["attribution_s"]
        print(f"captum:   attribution {c_s:.2f} s ({args.layers} LayerConductance calls), "
              f"process {c_wall:.2f} s, peak RSS {c_rss / 2**30:.2f} GiB")
        diff, scale = 0.0, 0.0
        for gl, cl in zip(g["layers"], c["per_token"]):
            for a, b in zip(gl["attributions"], cl):
                diff = max(diff, abs(a - b))
                scale = max(scale, abs(b))
        print(f"speed-up (attribution): {c_s / g_s:.1f}×   (process): {c_wall / g_wall:.1f}×   "
              f"memory gradpath/captum: {g_rss / c_rss:.2f}")
        print(f"agreement of per-token conductance: max |diff| / max |value| = {diff / max(scale, 1e-30):.2e} (float32)")


if __name__ == "__main__":
    main()
