#!/usr/bin/env python3
"""ATTATTR speed: gradpath against the authors' per-layer loop in PyTorch, same model, input,
threads and machine, in one sitting (a benchmark, not a test).

    .refenv/bin/python scripts/compare_attattr.py [--threads 2] [--tokens 64] [--steps 20] [--repeats 3]

The model is a bert-base-sized random BertForSequenceClassification (12 layers, 12 heads,
d_model 768, 2 classes; seeded), written once to target/bench-attattr/bert-base-random with
MiniLM's tokenizer (the same 30522-token vocabulary). The text is cut to exactly --tokens tokens.

PyTorch does what the authors' code does (`examples/generate_attrscore.py`, pruning settings): for
each layer l, one batch of m rows alpha_k * A_l (k = 0..m-1) substituted for that layer's attention
probabilities (a forward hook on the attention dropout, identity in eval mode), F = softmax
probability of the predicted class, torch.autograd.grad with respect to the substituted tensor,
Attr = A * mean_k grad. Eager attention, float32, torch.set_num_threads(threads).

gradpath runs `gradpath attattr --layers all --steps m --method riemann-left --threads N` (one
sweep of 12 x m rows); its time is the report's `timing.attribution_s` (tokenisation to the end of
the method; model loading excluded, as for PyTorch). Peak memory: the resident set of each
process at the end (ru_maxrss for PyTorch, /usr/bin/time for gradpath), model included.
The script also checks that both give the same attributions (f32 tolerance)."""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

import torch

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GP = os.path.join(REPO, "target", "release", "gradpath")
MODEL = os.path.join(REPO, "target", "bench-attattr", "bert-base-random")
TEXT = ("The film is a charming, funny and often moving story about two old friends who travel "
        "across the country to find a lost brother, and every scene feels honest, warm and alive; "
        "even the slow middle part keeps its quiet humour, and the ending earns its tears completely.")


def cpu():
    name, flags = "?", set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and name == "?":
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    simd = [f for f in ("avx512f", "avx2", "fma", "avx", "sse4_2") if f in flags]
    return f"{name} ({' '.join(simd)})"


def make_model(tf):
    if os.path.exists(os.path.join(MODEL, "model.safetensors")):
        return
    os.makedirs(MODEL, exist_ok=True)
    torch.manual_seed(0)
    cfg = tf.BertConfig(num_labels=2)  # bert-base sizes
    tf.BertForSequenceClassification(cfg).eval().save_pretrained(MODEL, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        src = os.path.join(REPO, "models", "all-MiniLM-L6-v2", f)
        if os.path.exists(src):
            shutil.copy(src, MODEL)


def torch_attattr(model, ids, m):
    layers = model.bert.encoder.layer
    state = {"l": None, "v": None, "seen": {}}

    def hook(l):
        def h(_mod, _i, out):
            state["seen"][l] = out.detach()
            return state["v"] if state["l"] == l else out
        return h

    handles = [layer.attention.self.dropout.register_forward_hook(hook(l)) for l, layer in enumerate(layers)]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    pred = int(logits[0].argmax())
    A = dict(state["seen"])
    out = []
    for l in range(len(layers)):
        alphas = torch.arange(m, dtype=torch.float32).view(m, 1, 1, 1) / m
        tmp = (alphas * A[l]).requires_grad_(True)
        state["l"], state["v"] = l, tmp
        prob = torch.softmax(model(input_ids=ids.expand(m, -1)).logits, -1)[:, pred]
        (g,) = torch.autograd.grad(prob.sum(), tmp)
        out.append((A[l][0] * g.sum(0) / m).numpy())
        state["l"], state["v"] = None, None
    for h in handles:
        h.remove()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import transformers as tf
    from tokenizers import Tokenizer

    if not os.path.exists(GP):
        sys.exit("error: build gradpath first: cargo build --release")
    make_model(tf)
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    # The longest prefix of whole words that encodes to at most --tokens tokens, then "!" tokens
    # (one each) up to exactly --tokens.
    words, text = TEXT.split(), ""
    for k in range(1, len(words) + 1):
        t = " ".join(words[:k])
        if len(tok.encode(t).ids) > a.tokens:
            break
        text = t
    while len(tok.encode(text).ids) < a.tokens:
        text += " !"
    ids = tok.encode(text).ids
    if len(ids) != a.tokens:
        sys.exit(f"error: could not build a text of exactly {a.tokens} tokens")
    torch.set_num_threads(a.threads)
    model = tf.BertForSequenceClassification.from_pretrained(MODEL, attn_implementation="eager").eval()
    x = torch.tensor([ids])
    torch_attattr(model, x, 2)  # warm-up
    t_torch = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        ref = torch_attattr(model, x, a.steps)
        t_torch.append(time.perf_counter() - t0)
    rss_torch = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t_gp, rss_gp, out = [], 0.0, os.path.join(REPO, "target", "bench-attattr", "gp.json")
    for _ in range(a.repeats):
        p = subprocess.run(["/usr/bin/time", "-f", "%M", GP, "attattr", "--model", MODEL, "--text", text,
                            "--layers", "all", "--steps", str(a.steps), "--method", "riemann-left",
                            "--threads", str(a.threads), "--quiet", "--json", out],
                           capture_output=True, text=True, check=True)
        rss_gp = max(rss_gp, int(p.stderr.strip().splitlines()[-1]) / 1024)
        d = json.load(open(out))
        t_gp.append(d["timing"]["attribution_s"])
    assert len(d["tokens"]) == a.tokens, (len(d["tokens"]), a.tokens)
    worst = 0.0
    for l, r in enumerate(ref):
        got = torch.tensor(d["layers"][l]["attribution"], dtype=torch.float64)
        want = torch.tensor(r, dtype=torch.float64)
        worst = max(worst, float((got - want).abs().max() / want.abs().max()))
    bt, bg = min(t_torch), min(t_gp)
    print(f"CPU: {cpu()}; threads {a.threads}; load average {os.getloadavg()[0]:.2f}")
    print(f"ATTATTR, bert-base-sized random classifier, {a.tokens} tokens, 12 layers x {a.steps} points "
          f"(best of {a.repeats})")
    print(f"| tool | seconds | peak RSS (MiB) |\n|---|---:|---:|")
    print(f"| PyTorch {torch.__version__}, authors' per-layer loop | {bt:.2f} | {rss_torch:.0f} |")
    print(f"| gradpath, one sweep | {bg:.2f} | {rss_gp:.0f} |")
    print(f"speed ratio (PyTorch / gradpath): {bt / bg:.2f}x; all times: torch {t_torch}, gradpath {t_gp}")
    print(f"largest attribution difference (relative to each layer's max): {worst:.2e}")


if __name__ == "__main__":
    main()
