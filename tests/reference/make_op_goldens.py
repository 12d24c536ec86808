#!/usr/bin/env python3
"""PyTorch reference values for gradpath's transformer ops (forward and gradients).

Writes ONE golden file, ``tests/fixtures/ops_torch.json``, read by ``tests/ops_torch_parity.rs``.

Run from the repository root with the reference environment (torch 2.5.1, numpy):

    .refenv/bin/python tests/reference/make_op_goldens.py

Everything is computed in float64 on CPU with a fixed seed, so the output is reproducible.

File layout
-----------
    {
      "meta":  {"torch_version", "numpy_version", "seed", "dtype", "encoding", ...},
      "cases": {
        "<case>": {
          "op":      "<gradpath op the case exercises>",
          "params":  {name: float},          # scalars (eps, scale, theta, ...)
          "inputs":  {name: tensor},         # differentiable inputs (leaves on the tape)
          "consts":  {name: tensor},         # constant tensors (masks, cos/sin tables)
          "outputs": {name: tensor},         # forward values
          "seeds":   {name: tensor},         # upstream cotangent for some of the outputs
          "grads":   {name: tensor}          # d<sum_o <seed_o, output_o>>/d<input>, one per input
        }
      }
    }

A tensor is ``{"shape": [...], "data": [flat row-major floats]}``.

Non-finite values: JSON has no literal for them, so any non-finite element of ``data`` is written
as a string, ``"-inf"``, ``"inf"`` or ``"nan"`` (finite values are plain JSON numbers, written with
Python's shortest round-trip repr). Masks use both conventions found in practice: ``-inf`` (the
padding masks, encoded as ``"-inf"``) and ``torch.finfo(torch.float64).min`` like Hugging Face
(the causal masks, a finite number). No row is masked everywhere.

Gradients are taken with ``torch.autograd.grad(outputs, inputs, seeds)`` where each seed is a random
(standard normal) cotangent of the output's shape, also stored.
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611
DT = torch.float64

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.normpath(os.path.join(HERE, "..", "fixtures", "ops_torch.json"))

torch.manual_seed(SEED)
torch.set_default_dtype(DT)


def randn(*shape, scale=1.0, shift=0.0):
    return torch.randn(*shape, dtype=DT) * scale + shift


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def enc_float(v):
    v = float(v)
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return "nan"
    return "inf" if v > 0 else "-inf"


def enc(t):
    t = t.detach().to(torch.float64).contiguous()
    return {"shape": list(t.shape), "data": [enc_float(v) for v in t.reshape(-1).tolist()]}


def make_case(op, inputs, consts, params, forward, seeded):
    """Runs ``forward(**inputs, **consts, **params)`` -> dict of outputs; seeds the outputs named in
    ``seeded`` with random cotangents and differentiates wrt every input."""
    leaves = {k: leaf(v) for k, v in inputs.items()}
    outs = forward(**leaves, **consts, **params)
    seeds = {k: randn(*outs[k].shape) for k in seeded}
    # A non-finite output (−∞ of a masked log-softmax entry) is a constant: its cotangent is 0.
    # (PyTorch would pass a non-zero cotangent there straight to dx; gradpath gives the
    # mathematically consistent 0, and the two agree when the cotangent there is 0.)
    seeds = {k: torch.where(torch.isfinite(outs[k]), s, torch.zeros_like(s)) for k, s in seeds.items()}
    names = list(leaves)
    grads = torch.autograd.grad([outs[k] for k in seeded], [leaves[n] for n in names], [seeds[k] for k in seeded])
    return {
        "op": op,
        "params": {k: float(v) for k, v in params.items()},
        "inputs": {k: enc(v) for k, v in leaves.items()},
        "consts": {k: enc(v) for k, v in consts.items()},
        "outputs": {k: enc(v) for k, v in outs.items()},
        "seeds": {k: enc(v) for k, v in seeds.items()},
        "grads": {n: enc(g) for n, g in zip(names, grads)},
    }


cases = {}

# --- LayerNorm (weight and bias, biased variance) -------------------------------------------------
cases["layernorm"] = make_case(
    "layer_norm",
    inputs={"x": randn(3, 5, 7, scale=2.0, shift=1.5), "w": randn(7, scale=0.5, shift=1.0), "b": randn(7, scale=0.3)},
    consts={},
    params={"eps": 1e-5},
    forward=lambda x, w, b, eps: {"y": F.layer_norm(x, (x.shape[-1],), w, b, eps)},
    seeded=["y"],
)


# --- RMSNorm, exactly as HF LlamaRMSNorm ----------------------------------------------------------
def rmsnorm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return {"y": w * (x * torch.rsqrt(variance + eps))}


cases["rmsnorm"] = make_case(
    "rms_norm",
    inputs={"x": randn(3, 5, 7, scale=2.0, shift=0.5), "w": randn(7, scale=0.5, shift=1.0)},
    consts={},
    params={"eps": 1e-6},
    forward=rmsnorm,
    seeded=["y"],
)

# --- GELU, erf and tanh forms, including large |x| ------------------------------------------------
gelu_x = torch.cat(
    [
        torch.tensor([-30.0, -10.0, -6.0, -3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0, 6.0, 10.0, 30.0, -8.5]),
        randn(16, scale=2.5),
    ]
).reshape(4, 8)
cases["gelu_erf"] = make_case(
    "gelu_erf", inputs={"x": gelu_x}, consts={}, params={}, forward=lambda x: {"y": F.gelu(x)}, seeded=["y"]
)
cases["gelu_tanh"] = make_case(
    "gelu_tanh",
    inputs={"x": gelu_x},
    consts={},
    params={},
    forward=lambda x: {"y": F.gelu(x, approximate="tanh")},
    seeded=["y"],
)

# --- Softmax / log-softmax over the last axis of x + mask -----------------------------------------
B, H, T = 2, 3, 4
NEG_INF = float("-inf")
F64_MIN = torch.finfo(torch.float64).min
# Padding mask [B,1,1,Tk] with -inf: batch 0 left-padded by one key, batch 1 right-padded by two.
pad_mask = torch.zeros(B, 1, 1, T)
pad_mask[0, 0, 0, 0] = NEG_INF
pad_mask[1, 0, 0, 2:] = NEG_INF
# Causal mask [1,1,T,T] with finfo(float64).min above the diagonal, as HF builds it.
causal_mask = torch.triu(torch.full((T, T), F64_MIN), diagonal=1).reshape(1, 1, T, T)
# triu of a full matrix leaves 0 * ... = 0 on/below the diagonal: check it is exactly 0 / min.
assert set(causal_mask.unique().tolist()) == {0.0, F64_MIN}

cases["softmax_padding"] = make_case(
    "softmax",
    inputs={"x": randn(B, H, T, T, scale=2.0)},
    consts={"mask": pad_mask},
    params={},
    forward=lambda x, mask: {"y": torch.softmax(x + mask, dim=-1)},
    seeded=["y"],
)
cases["softmax_causal"] = make_case(
    "softmax",
    inputs={"x": randn(B, H, T, T, scale=2.0)},
    consts={"mask": causal_mask},
    params={},
    forward=lambda x, mask: {"y": torch.softmax(x + mask, dim=-1)},
    seeded=["y"],
)
cases["softmax_nomask"] = make_case(
    "softmax",
    inputs={"x": randn(3, 6, scale=8.0, shift=20.0)},  # large logits: needs the max shift
    consts={},
    params={},
    forward=lambda x: {"y": torch.softmax(x, dim=-1)},
    seeded=["y"],
)
cases["log_softmax_padding"] = make_case(
    "log_softmax",
    inputs={"x": randn(B, H, T, T, scale=2.0)},
    consts={"mask": pad_mask},
    params={},
    forward=lambda x, mask: {"y": torch.log_softmax(x + mask, dim=-1)},
    seeded=["y"],
)
cases["log_softmax_nomask"] = make_case(
    "log_softmax",
    inputs={"x": randn(3, 6, scale=8.0, shift=20.0)},
    consts={},
    params={},
    forward=lambda x: {"y": torch.log_softmax(x, dim=-1)},
    seeded=["y"],
)


# --- RoPE, HF rotate_half convention --------------------------------------------------------------
def rope_tables(n_pos, d, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(DT) / d))
    pos = torch.arange(n_pos, dtype=DT)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()  # [n_pos, d]


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope(x, cos, sin, theta):
    # x: [B, T, H, D]; cos/sin: [T, D] -> broadcast as [1, T, 1, D] (HF unsqueezes the head axis).
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return {"y": x * c + rotate_half(x) * s}


ROPE_T, ROPE_D, ROPE_THETA = 6, 8, 10000.0
rope_cos, rope_sin = rope_tables(ROPE_T, ROPE_D, ROPE_THETA)
cases["rope"] = make_case(
    "rope",
    inputs={"x": randn(2, ROPE_T, 3, ROPE_D)},
    consts={"cos": rope_cos, "sin": rope_sin},
    params={"theta": ROPE_THETA},
    forward=rope,
    seeded=["y"],
)


# --- Attention, written out explicitly ------------------------------------------------------------
def attention(q, k, v, scale, mask=None):
    # q: [B, Tq, H, D]; k, v: [B, Tk, Hkv, D]; query head h uses kv head h // (H / Hkv).
    g = q.shape[2] // k.shape[2]
    kr = k.repeat_interleave(g, dim=2)
    vr = v.repeat_interleave(g, dim=2)
    qh, kh, vh = q.transpose(1, 2), kr.transpose(1, 2), vr.transpose(1, 2)  # [B, H, T, D]
    scores = (qh @ kh.transpose(-1, -2)) * scale  # [B, H, Tq, Tk]
    logits = scores if mask is None else scores + mask
    pattern = torch.softmax(logits, dim=-1)
    z = (pattern @ vh).transpose(1, 2)  # [B, Tq, H, D]
    return {"scores": scores, "pattern": pattern, "z": z}


AB, AT, AD = 2, 4, 4
ASCALE = 1.0 / math.sqrt(AD)
cases["attention_mha_causal"] = make_case(
    "sdpa",
    inputs={"q": randn(AB, AT, 3, AD), "k": randn(AB, AT, 3, AD), "v": randn(AB, AT, 3, AD)},
    consts={"mask": causal_mask},
    params={"scale": ASCALE},
    forward=attention,
    seeded=["z"],
)
cases["attention_gqa_padding"] = make_case(
    "sdpa",
    inputs={"q": randn(AB, AT, 4, AD), "k": randn(AB, AT, 2, AD), "v": randn(AB, AT, 2, AD)},
    consts={"mask": pad_mask},
    params={"scale": ASCALE},
    forward=attention,
    seeded=["z"],
)
cases["attention_gqa_cross_nomask"] = make_case(
    "sdpa",
    inputs={"q": randn(AB, 3, 4, AD), "k": randn(AB, 5, 1, AD), "v": randn(AB, 5, 1, AD)},
    consts={},
    params={"scale": 0.3},
    forward=attention,
    seeded=["z"],
)
# Seeds on all three outputs at once (they are hook points): checks the fan-in through the tape.
cases["attention_gqa_all_seeds"] = make_case(
    "sdpa",
    inputs={"q": randn(AB, AT, 4, AD), "k": randn(AB, AT, 2, AD), "v": randn(AB, AT, 2, AD)},
    consts={"mask": causal_mask},
    params={"scale": ASCALE},
    forward=attention,
    seeded=["scores", "pattern", "z"],
)

# --- Linear without bias: x @ W^T with an HF [out, in] weight -------------------------------------
cases["matmul_wt"] = make_case(
    "matmul_t",
    inputs={"x": randn(2, 3, 4), "w": randn(5, 4)},
    consts={},
    params={},
    forward=lambda x, w: {"y": x @ w.T},
    seeded=["y"],
)

golden = {
    "meta": {
        "generator": "tests/reference/make_op_goldens.py",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "seed": SEED,
        "dtype": "float64",
        "layout": "tensors are {shape, data}, data flat row-major",
        "encoding": 'non-finite elements are the strings "-inf", "inf", "nan"; finite ones are JSON numbers',
        "grads": "torch.autograd.grad(outputs named in seeds, every input, the stored seeds)",
    },
    "cases": cases,
}

os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
text = json.dumps(golden, allow_nan=False, separators=(",", ":"))
with open(OUT_PATH, "w") as f:
    f.write(text)
    f.write("\n")
print(f"wrote {OUT_PATH}: {len(cases)} cases, {len(text) / 1024:.1f} KiB, torch {torch.__version__}")
