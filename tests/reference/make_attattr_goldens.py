#!/usr/bin/env python3
"""ATTATTR goldens (issue 12): self-attention attribution computed the way the authors' code does
(YRdddream/attattr, `examples/generate_attrscore.py`): for one layer l at a time, the attention
probabilities A of that layer are substituted by alpha * A (a forward hook on the module that
produces them; every other layer runs normally), F is differentiated with respect to the
substituted tensor, and Attr = A * sum_k w_k dF/dP(alpha_k A).

Run from the repository root with the reference environment:

    .refenv/bin/python tests/reference/make_attattr_goldens.py

It reuses the tiny random models of tests/fixtures/models/ (tiny-bert: BERT classifier; tiny-gpt2
and tiny-llama: causal LMs, next-token target at the last position) in float64 with eager
attention (Llama's float32 softmax, RMSNorm and RoPE tables patched to float64 as in
make_decoder_goldens.py), single-threaded, and writes tests/fixtures/attattr_goldens.json:

    {"versions": {...}, "cases": [{"model", "ids", "target": {"type", "class"|"token", "kind"},
      "rule", "steps", "alphas", "weights", "f_input", "patched_at_one",
      "layers": [{"layer", "attention" [h][i][j], "attribution" [h][i][j], "f_start", "sum"}]}]}

`patched_at_one` is F with every layer's pattern substituted by itself (alpha = 1), one layer at a
time; it must equal f_input exactly. Gauss-Legendre nodes come from numpy's leggauss mapped to
[0, 1]; left Riemann is alpha = k/m, k = 0..m-1, weights 1/m (the authors' `scaled_input`).
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import make_decoder_goldens as md  # noqa: E402

MODELS = os.path.join(REPO, "tests", "fixtures", "models")
OUT = os.path.join(REPO, "tests", "fixtures", "attattr_goldens.json")
DT = torch.float64
# Token ids of the input (within every fixture's vocabulary; the BERT one starts with [CLS]=2 and
# ends with [SEP]=3 of its tokenizer, the decoders' are plain ids).
IDS = {
    "tiny-bert": [2, 41, 17, 96, 55, 120, 8, 73, 3],
    "tiny-gpt2": [12, 41, 17, 96, 55, 120, 8, 73],
    "tiny-llama": [1, 41, 17, 96, 55, 120, 8, 73],
}
RUNS = [("riemann-left", 20, "prob"), ("gauss-legendre", 50, "prob"), ("riemann-left", 20, "log-prob"),
        ("gauss-legendre", 8, "logit")]


def rule(name, m):
    if name == "riemann-left":
        return [k / m for k in range(m)], [1.0 / m] * m
    x, w = np.polynomial.legendre.leggauss(m)
    return [0.5 * (1.0 + v) for v in x], [0.5 * v for v in w]


class Substitute:
    """Replaces the attention probabilities of layer `layer` by `value` (None: no-op) and records
    every layer's probabilities."""

    def __init__(self):
        self.layer, self.value, self.seen = None, None, {}

    def __call__(self, l, w):
        self.seen[l] = w.detach().clone()
        if self.layer == l:
            return self.value
        return w


SUB = Substitute()


def install(model, family):
    """Routes each layer's probabilities through SUB: a forward hook on the attention dropout
    module (BERT, GPT-2; identity in eval mode) or a patched eager attention (Llama)."""
    if family == "bert":
        for l, layer in enumerate(model.bert.encoder.layer):
            layer.attention.self.dropout.register_forward_hook(lambda _m, _i, out, l=l: SUB(l, out))
    elif family == "gpt2":
        for l, block in enumerate(model.transformer.h):
            block.attn.attn_dropout.register_forward_hook(lambda _m, _i, out, l=l: SUB(l, out))
    else:
        from transformers.models.llama import modeling_llama

        md.f64_eager_attention()  # RMSNorm in float64

        def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
            k = modeling_llama.repeat_kv(key, module.num_key_value_groups)
            v = modeling_llama.repeat_kv(value, module.num_key_value_groups)
            w = torch.matmul(query, k.transpose(2, 3)) * scaling
            if attention_mask is not None:
                w = w + attention_mask[:, :, :, : k.shape[-2]]
            w = SUB(module.layer_idx, torch.softmax(w, dim=-1))
            return torch.matmul(w, v).transpose(1, 2).contiguous(), w

        modeling_llama.eager_attention_forward = eager
        md.f64_rotary(model)


def authors_tree(att_all, threshold=0.4):
    """The tree of the authors' `examples/attribution_tree.py` (main(), up to the drawing), line for
    line: att_all is [12 layers, n, n] (already summed over heads)."""
    import copy

    proportion_all = copy.deepcopy(att_all)
    for i in range(len(proportion_all)):
        proportion_all[i] /= abs(proportion_all[i][1:, :].max())
    proportion_all *= (proportion_all > threshold).astype(int)
    seq_length = len(proportion_all[0])
    height_list = [0 for i in range(seq_length)]
    fixed_list = [-1 for i in range(seq_length)]
    edges = []
    att_combine_layer = att_all.sum(0) / abs(att_all.sum(0).max())
    att_combine_layer *= (1 - np.identity(len(att_combine_layer))) * (att_combine_layer > 0)
    att_combine_layer[0] *= 0
    arg_res = np.argsort(att_combine_layer.sum(-1))[::-1]
    top_token_index = arg_res[0] if arg_res[0] != 0 else arg_res[1]
    height_list[top_token_index] = 11 / 12
    fixed_list[top_token_index] = 0
    for i in range(seq_length):
        if i != top_token_index and proportion_all[10][top_token_index][i] > threshold:
            fixed_list[i] = 0
            fixed_list[top_token_index] = 1
            edges.append((top_token_index, i))
    for layer_index in range(9, -1, -1):
        for i_token in range(1, seq_length):
            for j_token in range(0, seq_length):
                if proportion_all[layer_index][i_token][j_token] < threshold or fixed_list[i_token] == -1:
                    continue
                if fixed_list[j_token] == 1:
                    continue
                if (i_token, j_token) in edges:
                    continue
                if fixed_list[i_token] == 0 and fixed_list[j_token] == 0:
                    continue
                if fixed_list[i_token] == 1 and fixed_list[j_token] == 0:
                    continue
                if fixed_list[i_token] == 0 and fixed_list[j_token] == -1:
                    fixed_list[i_token] = 1
                    fixed_list[j_token] = 0
                    height_list[j_token] = ((height_list[i_token]) * 12 - 1) / 12
                if fixed_list[i_token] == 1 and fixed_list[j_token] == -1:
                    fixed_list[j_token] = 0
                    height_list[j_token] = min(height_list)
                edges.append((i_token, j_token))
    return int(top_token_index), [[int(i), int(j)] for i, j in edges], [float(h) for h in height_list]


def tree_cases():
    """Random 12-layer head-summed attributions (a few large positive entries per layer, so the
    tree has branches), and the authors' tree of each."""
    rng = np.random.default_rng(20261203)
    cases = []
    for n in (9, 14, 20):
        att = rng.normal(0.0, 0.05, size=(12, n, n))
        for l in range(12):
            for _ in range(n // 2):
                att[l, rng.integers(1, n), rng.integers(0, n)] += rng.uniform(0.2, 1.0)
        root, edges, heights = authors_tree(att.copy())
        cases.append({"attr": att.tolist(), "root": root, "edges": edges, "heights": heights})
        print(f"tree n={n}: root {root}, {len(edges)} edges")
    return cases


def taylor_case(transformers):
    """The Taylor head importance of the authors' prune_head_with_taylor.py on tiny-bert for one
    example: the per-head context vectors (the self-attention output before the output
    projection) and their gradients of the cross-entropy of the gold label, |<grad, ctx>| summed
    over tokens, L2-normalised per layer."""
    model = transformers.BertForSequenceClassification.from_pretrained(
        os.path.join(MODELS, "tiny-bert"), attn_implementation="eager").to(DT).eval()
    from tokenizers import Tokenizer

    text = "the quick brown fox jumps over the lazy dog"
    ids = Tokenizer.from_file(os.path.join(MODELS, "tiny-bert", "tokenizer.json")).encode(text).ids
    label = 2
    ctx = {}

    def keep(l):
        def h(_m, _i, out):
            out[0].retain_grad()
            ctx[l] = out[0]
        return h

    for l, layer in enumerate(model.bert.encoder.layer):
        layer.attention.self.register_forward_hook(keep(l))
    logits = model(input_ids=torch.tensor([ids])).logits
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([label]))
    loss.backward()
    H = model.config.num_attention_heads
    imp = []
    for l in range(model.config.num_hidden_layers):
        c, g = ctx[l][0], ctx[l].grad[0]  # [T, H*dh]
        T = c.shape[0]
        dot = (c.view(T, H, -1) * g.view(T, H, -1)).sum(-1)  # [T, H]
        imp.append(dot.abs().sum(0))
    imp = torch.stack(imp)
    imp = imp / (imp.pow(2).sum(-1, keepdim=True).sqrt() + 1e-20)
    return {"model": "tiny-bert", "text": text, "ids": ids, "label": label, "importance": imp.tolist()}


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import transformers

    doc = {"generator": "tests/reference/make_attattr_goldens.py",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "numpy": np.__version__},
           "cases": []}
    for name, family, cls in [("tiny-bert", "bert", transformers.BertForSequenceClassification),
                              ("tiny-gpt2", "gpt2", transformers.GPT2LMHeadModel),
                              ("tiny-llama", "llama", transformers.LlamaForCausalLM)]:
        model = cls.from_pretrained(os.path.join(MODELS, name), attn_implementation="eager").to(DT).eval()
        install(model, family)
        ids = torch.tensor([IDS[name]])
        n_layers = model.config.num_hidden_layers
        with torch.no_grad():
            SUB.layer = None
            logits = model(input_ids=ids).logits
        if family == "bert":
            target = {"type": "class", "class": 1}
            pick = lambda lg: lg[:, 1]  # noqa: E731
            base = lambda out: out.logits  # noqa: E731
        else:
            token = int(logits[0, -1].argmax())
            target = {"type": "token", "token": token, "position": len(IDS[name]) - 1}
            pick = lambda lg, t=token: lg[:, t]  # noqa: E731
            base = lambda out: out.logits[:, -1]  # noqa: E731

        for rname, m, kind in RUNS:
            fn = {"prob": lambda z: torch.softmax(z, -1), "log-prob": lambda z: torch.log_softmax(z, -1),
                  "logit": lambda z: z}[kind]

            def F(substitute_layer=None, value=None):
                SUB.layer, SUB.value = substitute_layer, value
                try:
                    return pick(fn(base(model(input_ids=ids))))[0]
                finally:
                    SUB.layer, SUB.value = None, None

            with torch.no_grad():
                SUB.seen = {}
                f_input = float(F())
                A = {l: SUB.seen[l] for l in range(n_layers)}
                at_one = [float(F(l, A[l].clone())) for l in range(n_layers)]
            alphas, weights = rule(rname, m)
            case = {"model": name, "ids": IDS[name], "target": dict(target, kind=kind), "rule": rname,
                    "steps": m, "alphas": alphas, "weights": weights, "f_input": f_input,
                    "patched_at_one": at_one, "layers": []}
            for l in range(n_layers):
                acc = torch.zeros_like(A[l])
                for a, w in zip(alphas, weights):
                    tmp = (a * A[l]).clone().requires_grad_(True)
                    (g,) = torch.autograd.grad(F(l, tmp), tmp)
                    acc += w * g
                attr = A[l] * acc
                with torch.no_grad():
                    f_start = float(F(l, torch.zeros_like(A[l])))
                case["layers"].append({"layer": l, "attention": A[l][0].tolist(), "attribution": attr[0].tolist(),
                                       "f_start": f_start, "sum": float(attr.sum())})
            doc["cases"].append(case)
            worst = max(abs(L["sum"] - (f_input - L["f_start"])) / abs(f_input - L["f_start"]) for L in case["layers"])
            print(f"{name} {rname} {m} {kind}: F = {f_input:.6f}, worst relative completeness delta {worst:.2e}, "
                  f"alpha=1 exact: {all(v == f_input for v in at_one)}")
    doc["trees"] = tree_cases()
    doc["taylor"] = taylor_case(transformers)
    with open(OUT, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
