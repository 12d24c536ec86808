#!/usr/bin/env python3
"""PyTorch golden for gradpath's training step (tests/train.rs).

Run from the repository root with the reference environment (docs/TESTING.md):

    .refenv/bin/python tests/reference/make_train_goldens.py

For each tiny encoder classifier fixture (tests/fixtures/models/tiny-{bert,roberta,distilbert}) it
loads the model with transformers' `AutoModelForSequenceClassification`, converts it to float64
(exact: the stored weights are float32), puts it in eval mode (dropout off), and runs STEPS
optimizer steps on one fixed padded batch the way transformers' Trainer does:

    loss = cross_entropy(logits, labels)              mean over the batch
    loss.backward()
    norm = clip_grad_norm_(params, MAX_GRAD_NORM)     global 2-norm, then scale
    torch.optim.AdamW.step()                          two groups: decay / no decay (Trainer's rule:
                                                      every name that is not a bias and not in a
                                                      LayerNorm has weight decay WEIGHT_DECAY)
    get_linear_schedule_with_warmup(...).step()       WARMUP warm-up steps of TOTAL

Output: tests/fixtures/train/<model>-steps.safetensors (and, on text pairs,
tests/fixtures/train/<model>-pair-steps.safetensors), float64 except the int64 inputs:

    input_ids, attention_mask (, token_type_ids)    int64 [B, T]
    labels                                          int64 [B]
    loss.<s>, norm.<s>, lr.<s>                      [1] for step s = 1..STEPS (norm before clipping,
                                                    lr the rate the step used)
    grad.<s>.<name>                                 ∂loss/∂p at step s, before clipping
    param.<s>.<name>                                p after step s

Metadata `info` (JSON): versions, hyper-parameters, sentences, labels and the decay group's names.
Deterministic (no randomness is drawn): re-running gives the same bytes.
"""
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup
from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
from transformers.trainer_pt_utils import get_parameter_names

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests/fixtures/models")
OUT = os.path.join(ROOT, "tests/fixtures/train")

MODELS = ["tiny-bert", "tiny-roberta", "tiny-distilbert"]
SENTENCES = ["the movie was great fun", "a dull plot", "not bad at all, really quite good", "awful"]
# Text pairs (gradpath's `text_pair`, the rules task's context and query): tiny-bert, whose
# token type ids then hold 1 for the second segment, so token_type_embeddings row 1 gets a gradient.
PAIR_MODELS = ["tiny-bert"]
PAIRS = [
    ("anne is big. if someone is big then they are green.", "anne is green."),
    ("bob is red.", "anne is red."),
    ("charlie is kind. dave is tall. if someone is tall then they are nice.", "dave is nice."),
    ("erin is cold.", "erin is cold."),
]
LR = 1e-3
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 0.5
WARMUP = 1
TOTAL = 4
STEPS = 3


def run(name, pairs=False):
    d = os.path.join(FIXTURES, name)
    tok = AutoTokenizer.from_pretrained(d)
    if pairs:
        enc = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
        assert enc["token_type_ids"].max() == 1, "the second segment should have type id 1"
    else:
        enc = tok(SENTENCES, padding=True, return_tensors="pt")
    assert enc["attention_mask"].min() == 0, "the batch should exercise padding"
    model = AutoModelForSequenceClassification.from_pretrained(d).double().eval()
    n_labels = model.config.num_labels
    labels = torch.tensor([i % n_labels for i in (1, 0, 1, 0)], dtype=torch.int64)
    decay = [n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n]
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR)
    sched = get_linear_schedule_with_warmup(opt, WARMUP, TOTAL)
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    t = {k: v.contiguous() for k, v in inputs.items()}
    t["labels"] = labels
    for s in range(1, STEPS + 1):
        opt.zero_grad()
        out = model(**inputs)
        loss = torch.nn.functional.cross_entropy(out.logits, labels)
        loss.backward()
        t[f"loss.{s}"] = loss.detach().reshape(1)
        for n, p in named:
            t[f"grad.{s}.{n}"] = p.grad.detach().clone().contiguous()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        t[f"norm.{s}"] = norm.detach().reshape(1).double()
        t[f"lr.{s}"] = torch.tensor([opt.param_groups[0]["lr"]], dtype=torch.float64)
        opt.step()
        sched.step()
        for n, p in named:
            t[f"param.{s}.{n}"] = p.detach().clone().contiguous()
        print(f"{name} step {s}: loss {loss.item():.17g} norm {norm.item():.6g} lr {t[f'lr.{s}'].item():.3g}")
    info = {
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "dtype": "float64",
        "sentences": [list(p) for p in PAIRS] if pairs else SENTENCES,
        "labels": labels.tolist(),
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
        "max_grad_norm": MAX_GRAD_NORM,
        "warmup": WARMUP,
        "total": TOTAL,
        "steps": STEPS,
        "decay": sorted(decay),
        "parameters": [n for n, _ in named],
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}{'-pair' if pairs else ''}-steps.safetensors")
    save_file(t, path, metadata={"info": json.dumps(info, sort_keys=True)})
    print(f"wrote {path}: {len(named)} parameters, ids {enc['input_ids'].tolist()}")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for m in MODELS:
        run(m)
    for m in PAIR_MODELS:
        run(m, pairs=True)


if __name__ == "__main__":
    main()
