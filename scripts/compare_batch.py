#!/usr/bin/env python3
"""Data-set throughput: `gradpath batch --method ig` against a Captum loop over the same sentences.

Both sides explain, for each sentence, the cosine similarity between its attention-mask
mean-pooled all-MiniLM-L6-v2 embedding and the embedding of a fixed reference text, by token
Integrated Gradients on the word embeddings (baseline: every non-special token replaced by [PAD],
[CLS]/[SEP] kept), Gauss-Legendre with --steps points, the same number of threads.

- gradpath: one `gradpath batch` process over the JSONL file (whole-process wall time: model
  load, every example, the output written line by line with fdatasync).
- Captum: one Python process that loads the model once and loops over the sentences in batches of
  --captum-batch, padded to the longest sentence of the batch with an attention mask, as a user
  would: `LayerIntegratedGradients(f, model.embeddings.word_embeddings).attribute(ids, baselines,
  additional_forward_args=(mask,), n_steps=steps, method="gausslegendre",
  internal_batch_size=...)`. Its wall time is measured the same way (process start to end).
- Agreement: the per-token attributions of both sides on every sentence (max |diff| / max |value|
  over the run), so both computed the same thing.
- Processes: gradpath with 1 process × 1 thread, and 2 processes × 1 thread (`--shard 0/2`,
  `1/2` at once; the wall time of the pair), for the speed-up from 1 to 2 processes.

Run with the reference environment (torch, transformers, captum):

    /work/main/.refenv/bin/python scripts/compare_batch.py --limit 1000

Only the standard library is imported at module level; the Captum worker imports torch.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = "This is a positive review."


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def captum_worker(args):
    import torch
    from captum.attr import LayerIntegratedGradients
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(args.threads)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).eval()
    texts = [json.loads(l) for l in open(args.input) if l.strip()]

    def pooled(ids, mask):
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)

    with torch.no_grad():
        r = tok(REFERENCE, return_tensors="pt")
        ref = pooled(r["input_ids"], r["attention_mask"])[0]

    def f(ids, mask):
        p = pooled(ids, mask)
        return torch.nn.functional.cosine_similarity(p, ref.unsqueeze(0).expand_as(p), dim=-1)

    lig = LayerIntegratedGradients(f, model.embeddings.word_embeddings)
    special = set(tok.all_special_ids)
    out = {}
    t1 = time.time()
    for i in range(0, len(texts), args.captum_batch):
        chunk = texts[i:i + args.captum_batch]
        enc = tok([c["text"] for c in chunk], return_tensors="pt", padding=True)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        base = ids.clone()
        for r_ in range(ids.shape[0]):
            for c_ in range(ids.shape[1]):
                if int(ids[r_, c_]) not in special:
                    base[r_, c_] = tok.pad_token_id
        attr = lig.attribute(ids, baselines=base, additional_forward_args=(mask,),
                             n_steps=args.steps, method="gausslegendre",
                             internal_batch_size=args.steps * ids.shape[0])
        per_tok = attr.sum(-1).detach()
        for r_, c in enumerate(chunk):
            n = int(mask[r_].sum())
            out[c["id"]] = per_tok[r_, :n].tolist()
    t2 = time.time()
    json.dump({"load_s": t1 - t0, "loop_s": t2 - t1, "attributions": out}, open(args.result, "w"))


def run_timed(cmd, env=None):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{p.stderr}")
    return time.time() - t, p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models/all-MiniLM-L6-v2"))
    ap.add_argument("--data", default=os.path.join(ROOT, "data/polarity/test.jsonl"))
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--captum-batch", type=int, default=8)
    ap.add_argument("--gradpath", default=os.path.join(ROOT, "target/release/gradpath"))
    ap.add_argument("--skip-processes", action="store_true", help="skip the 1 vs 2 process runs")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return captum_worker(args)

    tmp = tempfile.mkdtemp(prefix="gradpath-compare-batch-")
    inp = os.path.join(tmp, "in.jsonl")
    with open(args.data) as f, open(inp, "w") as g:
        n = 0
        for line in f:
            if not line.strip():
                continue
            v = json.loads(line)
            g.write(json.dumps({"id": str(v.get("id", n)), "text": v["text"]}) + "\n")
            n += 1
            if n == args.limit:
                break
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; {n} sentences from {args.data}; "
          f"IG, gauss-legendre, {args.steps} steps; {args.threads} threads each side", flush=True)
    gp_common = [args.gradpath, "batch", "--method", "ig", "--model", args.model, "--input", inp,
                 "--similar-to", REFERENCE, "--steps", str(args.steps), "--truncate", "--overwrite"]
    out = os.path.join(tmp, "gp.jsonl")
    gp_s, p = run_timed(gp_common + ["--output", out, "--threads", str(args.threads), "--quiet"])
    gp = {}
    for line in open(out):
        v = json.loads(line)
        gp[v["id"]] = v["attributions"]
    print(f"gradpath batch: {gp_s:.1f} s whole process, {n / gp_s:.2f} examples/s", flush=True)

    res = os.path.join(tmp, "captum.json")
    cp_s, _ = run_timed([sys.executable, __file__, "--worker", "--model", args.model, "--input", inp,
                         "--result", res, "--steps", str(args.steps), "--threads", str(args.threads),
                         "--captum-batch", str(args.captum_batch)],
                        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    cp = json.load(open(res))
    print(f"Captum loop (batches of {args.captum_batch}): {cp_s:.1f} s whole process "
          f"({cp['loop_s']:.1f} s in the loop), {n / cp_s:.2f} examples/s", flush=True)
    worst, scale = 0.0, 0.0
    for k, a in cp["attributions"].items():
        b = gp[k]
        if len(a) != len(b):
            sys.exit(f"error: {k}: {len(a)} tokens in Captum, {len(b)} in gradpath")
        worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
        scale = max(scale, max(abs(x) for x in a))
    print(f"agreement: max |gradpath − Captum| / max |Captum| = {worst / scale:.2e} over {n} sentences")
    print(f"speed-up (examples/s, whole process): {cp_s / gp_s:.2f}×")

    if not args.skip_processes:
        one_s, _ = run_timed(gp_common + ["--output", os.path.join(tmp, "p1.jsonl"), "--threads", "1", "--quiet"])
        t = time.time()
        procs = [subprocess.Popen(gp_common + ["--output", os.path.join(tmp, f"p2-{i}.jsonl"), "--threads", "1",
                                               "--quiet", "--shard", f"{i}/2"]) for i in range(2)]
        for q in procs:
            if q.wait() != 0:
                sys.exit("error: a shard failed")
        two_s = time.time() - t
        print(f"gradpath 1 process × 1 thread: {one_s:.1f} s ({n / one_s:.2f} examples/s); "
              f"2 processes × 1 thread (--shard 0/2, 1/2): {two_s:.1f} s ({n / two_s:.2f} examples/s); "
              f"speed-up {one_s / two_s:.2f}×")


if __name__ == "__main__":
    main()
