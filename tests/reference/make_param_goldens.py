#!/usr/bin/env python3
"""PyTorch golden for gradpath's parameter gradients (tests/params.rs).

Run from the repository root with the reference environment (docs/TESTING.md):

    .refenv/bin/python tests/reference/make_param_goldens.py

It loads the tiny BERT classifier fixture (tests/fixtures/models/tiny-bert, float32 weights) as
`BertForSequenceClassification`, converts it to float64 (exact), puts it in eval mode (no dropout),
and computes the mean cross-entropy of a fixed batch of two sentences (padded to one length, fixed
labels) and its gradient with respect to every parameter (`model.named_parameters()`).

Output: tests/fixtures/params/tiny-bert-grads.safetensors, float64 except the int64 inputs:

    input_ids, token_type_ids, attention_mask   int64 [2, T]   (the tokenizer's ids, padded with [PAD])
    labels                                      int64 [2]
    loss                                        [1]
    logits                                      [2, 3]
    grad.<parameter name>                       the parameter's shape (HF names, e.g.
                                                grad.bert.encoder.layer.0.attention.self.query.weight)

Metadata (`info`, JSON): torch and transformers versions, the sentences and labels. Deterministic: re-running gives the same bytes.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertForSequenceClassification, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "tests/fixtures/models/tiny-bert")
OUT = os.path.join(ROOT, "tests/fixtures/params/tiny-bert-grads.safetensors")

SENTENCES = ["the movie was great fun", "a dull plot"]
LABELS = [2, 0]


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(MODEL, "tokenizer.json"),
        pad_token="[PAD]",
    )
    enc = tok(SENTENCES, padding=True, return_tensors="pt")
    assert enc["attention_mask"].min() == 0, "the batch should exercise padding"
    model = BertForSequenceClassification.from_pretrained(MODEL).double().eval()
    labels = torch.tensor(LABELS, dtype=torch.int64)
    out = model(
        input_ids=enc["input_ids"],
        token_type_ids=enc["token_type_ids"],
        attention_mask=enc["attention_mask"],
    )
    loss = torch.nn.functional.cross_entropy(out.logits, labels)
    model.zero_grad()
    loss.backward()
    t = {
        "input_ids": enc["input_ids"].contiguous(),
        "token_type_ids": enc["token_type_ids"].contiguous(),
        "attention_mask": enc["attention_mask"].contiguous(),
        "labels": labels,
        "loss": loss.detach().reshape(1),
        "logits": out.logits.detach().contiguous(),
    }
    for name, p in model.named_parameters():
        if p.grad is None:
            sys.exit(f"{name} got no gradient")
        t["grad." + name] = p.grad.detach().contiguous()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(
        t,
        OUT,
        # One key: safetensors writes a metadata dict in hash order, which is not reproducible.
        metadata={
            "info": json.dumps(
                {
                    "torch_version": torch.__version__,
                    "transformers_version": transformers.__version__,
                    "dtype": "float64",
                    "sentences": SENTENCES,
                    "labels": LABELS,
                },
                sort_keys=True,
            )
        },
    )
    n = sum(1 for k in t if k.startswith("grad."))
    print(f"wrote {OUT}: loss {loss.item():.17g}, {n} parameter gradients, ids {enc['input_ids'].tolist()}")


if __name__ == "__main__":
    main()
