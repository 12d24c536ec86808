#!/usr/bin/env python3
"""Checks that a folder written by `gradpath train` loads in transformers and predicts what
gradpath predicts.

    gradpath eval --model OUT --data DATA.jsonl --json EVAL.json [--max-len L]
    .refenv/bin/python tests/reference/check_hf_load.py OUT DATA.jsonl EVAL.json [L]

It loads OUT with AutoTokenizer and AutoModelForSequenceClassification (float32, eval mode),
checks config.json's architectures / id2label / label2id, encodes DATA with truncation at L tokens
(default 64, gradpath's default), and compares the mean cross-entropy and the accuracy with
gradpath's EVAL.json: accuracy and confusion matrix equal, loss within 1e-5 (float32 arithmetic on
both sides, different operation orders). Exit code 0 and one `ok` line when everything agrees.
"""
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main():
    out, data, ev = sys.argv[1:4]
    max_len = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    cfg = json.load(open(f"{out}/config.json"))
    assert cfg["architectures"][0].endswith("ForSequenceClassification"), cfg["architectures"]
    labels = [cfg["id2label"][str(i)] for i in range(len(cfg["id2label"]))]
    assert all(cfg["label2id"][l] == i for i, l in enumerate(labels))
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
    rows = [json.loads(l) for l in open(data) if l.strip()]

    def label(v):
        if isinstance(v, int):
            return v
        return labels.index(v) if v in labels else int(v)

    y = torch.tensor([label(r["label"]) for r in rows])
    preds, losses = [], []
    with torch.no_grad():
        for i in range(0, len(rows), 32):
            chunk = rows[i : i + 32]
            pairs = [r.get("text_pair") for r in chunk]
            enc = tok(
                [r["text"] for r in chunk],
                pairs if any(p is not None for p in pairs) else None,
                truncation=True,
                max_length=max_len,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits
            preds.append(logits.argmax(-1))
            losses.append(torch.nn.functional.cross_entropy(logits, y[i : i + 32], reduction="sum"))
    pred = torch.cat(preds)
    loss = (sum(losses) / len(rows)).item()
    acc = (pred == y).double().mean().item()
    k = len(labels)
    conf = [[int(((y == a) & (pred == b)).sum()) for b in range(k)] for a in range(k)]
    g = json.load(open(ev))
    assert conf == g["confusion"], (conf, g["confusion"])
    assert abs(acc - g["accuracy"]) < 1e-12, (acc, g["accuracy"])
    assert abs(loss - g["loss"]) <= 1e-5, (loss, g["loss"])
    print(f"ok: {out} loads in transformers ({cfg['architectures'][0]}, {k} classes); "
          f"accuracy {acc:.4f} = gradpath's, loss {loss:.8f} vs gradpath {g['loss']:.8f}")


if __name__ == "__main__":
    main()
