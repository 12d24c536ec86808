#!/usr/bin/env python3
"""Benchmark gradpath against Captum on a GPT-2-small-sized decoder (issue 4).

The model: GPT2LMHeadModel with random weights from a config (12 layers, d_model 768, 12 heads,
vocab 50257, 1024 positions; transformers' own initialisation, seeded), saved once under
target/bench-models/gpt2-small-random with a small byte-level BPE tokenizer (ids < 50257; the
weights are random, so the vocabulary only has to produce a 64-token prompt).

Both sides explain the same scalar: the logit of the predicted next token at the last position of a
64-token prompt, token IG on the token-embedding output (`transformer.wte`), baseline = every token
replaced by the EOS id, 50 Gauss–Legendre points, completeness delta computed.

  compute only   Captum `LayerIntegratedGradients(...).attribute(..., return_convergence_delta=True)`
                 in a warm process (best of --runs after a warm-up) vs gradpath's `timing.attribution_s`
                 (best of --runs; it includes gradpath's forward that finds the predicted token).
                 Two Captum variants: the plain forward (logits at all 64 positions, what a user
                 writes first) and `logits_to_keep=1` (only the last position unembedded, the
                 strongest Captum setup we know).
  whole process  wall time of the `gradpath ig` command vs a fresh Python process that imports
                 torch/transformers/captum, loads the model and attributes once (plain forward).
  peak memory    peak RSS of those two processes.

Run (reference env, offline):

    .refenv/bin/python scripts/compare_captum_decoder.py
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "target", "bench-models", "gpt2-small-random")
CORPUS = (
    "the old harbor town woke slowly and the fishing boats came back with the morning tide "
    "children ran along the wall while their parents carried baskets of bread and fruit to the market "
    "a small dog followed the baker hoping for something to fall from his cart near the church"
)
EOS = 0


def build_model():
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers.models import BPE

    if os.path.exists(os.path.join(MODEL_DIR, "model.safetensors")):
        return
    os.makedirs(MODEL_DIR, exist_ok=True)
    tok = Tokenizer(BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([CORPUS] * 8, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.save(os.path.join(MODEL_DIR, "tokenizer.json"))
    torch.manual_seed(0)
    cfg = tf.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257,
                        bos_token_id=EOS, eos_token_id=EOS)
    tf.GPT2LMHeadModel(cfg).eval().save_pretrained(MODEL_DIR, safe_serialization=True)


def prompt(n_tokens):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(MODEL_DIR, "tokenizer.json"))
    words = CORPUS.split()
    text, i = "", 0
    while True:
        cand = (text + " " + words[i % len(words)]).strip()
        if len(tok.encode(cand).ids) > n_tokens:
            break
        text, i = cand, i + 1
    # pad with single-character words until exactly n_tokens
    while len(tok.encode(text).ids) < n_tokens:
        text += " a"
    assert len(tok.encode(text).ids) == n_tokens, len(tok.encode(text).ids)
    return text, tok.encode(text).ids


class Captum:
    def __init__(self, threads, keep_last):
        import torch
        import transformers as tf

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = tf.GPT2LMHeadModel.from_pretrained(MODEL_DIR).eval()
        self.keep_last = keep_last

    def f(self, ids):
        kw = {"logits_to_keep": 1} if self.keep_last else {}
        return self.model(input_ids=ids, **kw).logits[:, -1, :]

    def attribute(self, ids, steps):
        from captum.attr import LayerIntegratedGradients

        x = self.torch.tensor([ids])
        base = self.torch.full_like(x, EOS)
        with self.torch.no_grad():
            target = int(self.f(x)[0].argmax())
        lig = LayerIntegratedGradients(self.f, self.model.transformer.wte)
        attr, delta = lig.attribute(inputs=x, baselines=base, target=target, n_steps=steps,
                                    method="gausslegendre", return_convergence_delta=True)
        return attr.sum(-1)[0].tolist(), float(delta), target


def worker(a):
    """Fresh process: import, load, attribute once (the whole-process measurement)."""
    _, ids = prompt(a.tokens)
    c = Captum(a.threads, keep_last=False)
    c.attribute(ids, a.steps)


def measured(cmd, env):
    """Wall time and peak RSS of one run, in a fresh wrapper process (ru_maxrss of its child)."""
    code = ("import resource,subprocess,sys,time,json;t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);w=time.perf_counter()-t;"
            "sys.stderr.write(r.stderr) if r.returncode else None;"
            "print(json.dumps([r.returncode,w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024]))")
    p = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True)
    rc, wall, rss = json.loads(p.stdout.strip().splitlines()[-1])
    if rc != 0:
        raise SystemExit(f"command failed ({rc}): {' '.join(cmd)}\n{p.stderr}")
    return wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gradpath", default=os.path.join(ROOT, "target", "release", "gradpath"))
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    build_model()
    text, ids = prompt(a.tokens)
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "ig.json")
    gp_cmd = [a.gradpath, "ig", "--model", MODEL_DIR, "--text", text, "--steps", str(a.steps),
              "--baseline", "eos", "--json", out, "--quiet", "--threads", str(a.threads)]

    gp_compute, gp_wall, gp_rss = [], [], []
    for _ in range(a.runs):
        w, rss = measured(gp_cmd, env)
        j = json.load(open(out))
        gp_compute.append(j["timing"]["attribution_s"])
        gp_wall.append(w)
        gp_rss.append(rss)
    gp_attr = j["attributions"]

    res = {}
    for keep_last in (False, True):
        c = Captum(a.threads, keep_last)
        c.attribute(ids, a.steps)  # warm-up
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            attr, delta, target = c.attribute(ids, a.steps)
            times.append(time.perf_counter() - t)
        m = max(abs(v) for v in attr)
        agree = max(abs(x - y) for x, y in zip(attr, gp_attr)) / m
        res[keep_last] = (min(times), delta, target, agree)
        del c

    py_cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--tokens", str(a.tokens), "--steps",
              str(a.steps), "--threads", str(a.threads)]
    py_wall, py_rss = [], []
    for _ in range(a.runs):
        w, rss = measured(py_cmd, env)
        py_wall.append(w)
        py_rss.append(rss)

    print(f"GPT-2-small-sized random model, {a.tokens}-token prompt, IG {a.steps} Gauss–Legendre points, "
          f"{a.threads} threads, best of {a.runs}; load average {os.getloadavg()[0]:.2f}")
    print(f"gradpath: target token {j['target']['token']}, relative delta {j['relative_delta']:.2e}")
    print("| measure | gradpath | Captum | ratio |")
    print("|---|---:|---:|---:|")
    for keep_last, name in ((False, "plain forward"), (True, "logits_to_keep=1")):
        t, delta, target, agree = res[keep_last]
        print(f"| compute only, Captum {name} | {min(gp_compute) * 1e3:.0f} ms | {t * 1e3:.0f} ms | "
              f"{t / min(gp_compute):.2f}× (attributions agree to {agree:.1e} rel.) |")
    print(f"| whole process | {min(gp_wall) * 1e3:.0f} ms | {min(py_wall) * 1e3:.0f} ms | "
          f"{min(py_wall) / min(gp_wall):.2f}× |")
    print(f"| peak RSS | {min(gp_rss):.0f} MiB | {min(py_rss):.0f} MiB | {min(gp_rss) / min(py_rss):.2f} |")


if __name__ == "__main__":
    main()
