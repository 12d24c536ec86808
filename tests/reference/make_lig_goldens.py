#!/usr/bin/env python3
"""Parity goldens for `gradpath lig` (issue 11) from the LIG package itself, in float64.

Run from the repository root with the reference environment:

    bash scripts/setup-refenv.sh   # pins layer-wise-integrated-gradients   # PyPI 0.1.0 (module `lig`)
    .refenv/bin/python tests/reference/make_lig_goldens.py

Writes tests/fixtures/lig_goldens.json, read by tests/lig.rs. Models: the tiny random fixtures
tests/fixtures/models/tiny-bert and tiny-gpt2, loaded in float64 with eager attention. Torch's
default dtype stays float32, so Captum's alphas are its own float32 `linspace` (gradpath's
`captum-trapezoid` reproduces them bit for bit).

What is computed with the package's own code: its wrapper modules (the maps and their L2
scalarisation, with the reference output F_j(X') precomputed from a batch of one, as the
package's `compute_*_single_target` functions do) under Captum `IntegratedGradients` with
n_steps = STEPS and BOTH Captum rules: `gausslegendre` and the package's hard-wired
`riemann_trapezoid` (the rule is the only thing changed from the package's functions).
  * BERT layer map z -> z: `LayerDirectIGWrapper` for every target j, on z^(l) = hidden_states[l]
    of the model's own forward; baselines zero and self_input_token.
  * GPT-2 layer map: `GPT2LayerDirectIGWrapper` on z^(l) = hidden_states[l] of
    `GPT2Model(input_ids)`, i.e. z^(0) = wte + wpe ONCE. The package's `explain()` feeds
    `inputs_embeds = wte + wpe` to GPT2Model, which adds wpe again (z^(0) = wte + 2 wpe); that
    defect is measured here (`gpt2.defects.*`) and not used for the parity numbers.
  * GPT-2 MLP map u -> z: `_GPT2MLPL2IGWrapper` (as `compute_gpt2_mlp_lig_single_token`) with
    u = z + attn(ln_1(z)) and u' = 0 (zero) or u'_j = the attention sub-block on (z_j, ..., z_j)
    at j (att_itb_a0, LIG_SPEC section 3).
Every entry also records `alpha0_residual`: the wrapper's value at alpha = 0 inside a batch of
STEPS baseline copies (Captum's first row). Where it is not exactly 0 (batched rounding differs
from the batch-of-one reference by ~1e-15), autograd's L2-norm gradient there is a unit vector
in a rounding direction and the trapezoid's alpha = 0 weight 1/(2n) multiplies it: the package's
trapezoid columns are then wrong (LIG_SPEC section 2.2); tests/lig.rs compares those columns
only under Gauss-Legendre, which has no alpha = 0 node.

The GPT-2 ATT map z -> u is NOT taken from the wheel: PyPI 0.1.0's GPT-2 ATT path
(`gpt2_attention_models.py`) interpolates the word embeddings, replays blocks 0..l-1, slices the
c_proj OUTPUT into heads and scalarises ||u_j(x)|| (no baseline subtraction), which is not the
z^(l) -> per-head-context map of LIG_SPEC section 1.2 (read from the package's git main). The
golden for it is a Captum IntegratedGradients(method="riemann_trapezoid") call on that
definition written here with the HF block's own modules (ln_1, c_attn, the causal mask of
`create_causal_mask`), scalarised ||ctx_{j,h}(Y) - ctx_{j,h}(Z')|| as the package's git main does.
"""
import json
import os
import sys
import types

import numpy as np
import torch

# The package imports `lightning` only for type annotations of its BERT helpers.
_stub = types.ModuleType("lightning")
_stub.LightningModule = torch.nn.Module
sys.modules.setdefault("lightning", _stub)

from captum.attr import IntegratedGradients  # noqa: E402
from transformers import BertForSequenceClassification, GPT2Model  # noqa: E402

from utils.calculations.ig.gpt2.block_forward import (  # noqa: E402
    create_causal_mask,
    hidden_after_attn_residual,
)
from utils.calculations.ig.mlp.gpt2_mlp_lig_ig import (  # noqa: E402
    _forward_gpt2_mlp_z,
    _GPT2MLPL2IGWrapper,
)
from utils.calculations.ig.z2z.gpt2_layer_direct_ig import GPT2LayerDirectIGWrapper  # noqa: E402
from utils.calculations.ig.z2z.layer_direct_ig import LayerDirectIGWrapper  # noqa: E402

FX = "tests/fixtures/models"
OUT = "tests/fixtures/lig_goldens.json"
IDS = [2, 11, 25, 7, 40, 3]
STEPS = 8
METHODS = {"gauss-legendre": "gausslegendre", "captum-trapezoid": "riemann_trapezoid"}


def ig(wrapper, x, baseline, method):
    """The package's call: Captum IntegratedGradients(wrapper) with n_steps = STEPS; per source
    token (hidden axis summed) for [1, T, d] inputs, per dimension for [1, d] inputs. Also the
    wrapper's value at alpha = 0 inside a batch of STEPS copies of the baseline (what Captum's
    first row sees): exactly 0 unless batched rounding differs from the batch-of-1 reference."""
    attr = IntegratedGradients(wrapper).attribute(
        inputs=x, baselines=baseline, n_steps=STEPS, method=METHODS[method]
    )
    with torch.no_grad():
        rep = [STEPS] + [1] * (baseline.dim() - 1)
        r0 = float(wrapper(baseline.repeat(*rep))[0])
    a = attr.detach()
    return (a.sum(dim=-1).squeeze(0) if a.dim() == 3 else a.squeeze(0)).numpy(), r0


def entry(cols, residuals):
    return {"matrix": np.stack(cols, axis=1).tolist(), "alpha0_residual": residuals}
F64 = torch.float64
torch.manual_seed(0)
torch.set_num_threads(1)


def itb(z, j):
    return z[:, j : j + 1, :].expand_as(z).clone()


def bert_goldens():
    m = BertForSequenceClassification.from_pretrained(
        f"{FX}/tiny-bert", attn_implementation="eager", dtype=F64
    ).eval()
    ids = torch.tensor([IDS])
    with torch.no_grad():
        hs = m.bert(ids, token_type_ids=torch.zeros_like(ids), output_hidden_states=True).hidden_states
    t = len(IDS)
    mask = torch.ones(1, t, dtype=F64)
    out = {"ids": IDS, "steps": STEPS, "layer": {}}
    for method in METHODS:
        for l in range(m.config.num_hidden_layers):
            z = hs[l]
            for b in ("zero", "self_input_token"):
                cols, res = [], []
                for j in range(t):
                    # compute_layer_direct_ig_single_target, with the rule as a parameter.
                    base = torch.zeros_like(z) if b == "zero" else itb(z, j)
                    w = LayerDirectIGWrapper(m, l, j, mask).eval()
                    w.set_baseline_output(base)
                    c, r0 = ig(w, z, base, method)
                    cols.append(c)
                    res.append(r0)
                out["layer"][f"{method}.{l}.{b}"] = entry(cols, res)
    return out


def ctx_ig(gpt2, z, l, j, h, baseline, method):
    """Captum IG of ||ctx_{j,h}(Y) - ctx_{j,h}(Z')|| at z^(l) (LIG_SPEC 1.2)."""
    blk = gpt2.h[l]
    nh = gpt2.config.n_head
    d = gpt2.config.n_embd
    dh = d // nh
    t = z.shape[1]

    def ctx(y):
        x = blk.ln_1(y)
        q, k, v = blk.attn.c_attn(x).split(d, dim=2)
        sh = lambda a: a.view(a.shape[0], t, nh, dh).transpose(1, 2)  # noqa: E731
        q, k, v = sh(q), sh(k), sh(v)
        s = q @ k.transpose(-1, -2) / (dh ** 0.5) + create_causal_mask(t, y.device, y.dtype)
        p = torch.softmax(s, dim=-1)
        return (p @ v)[:, h, j, :]

    with torch.no_grad():
        ref = ctx(baseline)

    class W(torch.nn.Module):
        def forward(self, y):
            return torch.norm(ctx(y) - ref, p=2, dim=-1)

    return ig(W(), z, baseline, method)


def gpt2_goldens():
    g = GPT2Model.from_pretrained(f"{FX}/tiny-gpt2", attn_implementation="eager", dtype=F64).eval()
    ids = torch.tensor([IDS])
    t = len(IDS)
    with torch.no_grad():
        hs = g(ids, output_hidden_states=True).hidden_states
        # explain()'s z^(0): GPT2Model(inputs_embeds = wte + wpe) adds wpe a second time.
        pos = g.wpe(torch.arange(t).unsqueeze(0))
        hs_pkg = g(inputs_embeds=g.wte(ids) + pos, output_hidden_states=True).hidden_states
    out = {"ids": IDS, "steps": STEPS, "layer": {}, "att": {}, "mlp": {}, "defects": {}}
    out["defects"]["double_wpe_max_abs_z0_diff"] = float((hs_pkg[0] - hs[0]).abs().max())
    out["defects"]["wpe_max_abs"] = float(pos.abs().max())
    nl, nh = g.config.n_layer, g.config.n_head
    for method in METHODS:
        for l in range(nl):
            z = hs[l]
            for b in ("zero", "self_input_token"):
                cols, res = [], []
                for j in range(t):
                    base = torch.zeros_like(z) if b == "zero" else itb(z, j)
                    w = GPT2LayerDirectIGWrapper(g, l, j).eval()
                    w.set_baseline_output(base)
                    c, r0 = ig(w, z, base, method)
                    cols.append(c)
                    res.append(r0)
                out["layer"][f"{method}.{l}.{b}"] = entry(cols, res)
            if l == 0 and method == "gauss-legendre":
                # explain()'s layer-0 map on the doubled z^(0), to show the size of the defect.
                cols = []
                for j in range(t):
                    w = GPT2LayerDirectIGWrapper(g, 0, j).eval()
                    w.set_baseline_output(itb(hs_pkg[0], j))
                    cols.append(ig(w, hs_pkg[0], itb(hs_pkg[0], j), method)[0])
                out["defects"]["double_wpe_layer0_itb_gl_matrix"] = np.stack(cols, axis=1).tolist()
            for b in ("zero", "self_input_token"):
                heads = []
                for h in range(nh):
                    cols, res = [], []
                    for j in range(t):
                        base = torch.zeros_like(z) if b == "zero" else itb(z, j)
                        c, r0 = ctx_ig(g, z, l, j, h, base, method)
                        cols.append(c)
                        res.append(r0)
                    heads.append(entry(cols, res))
                out["att"][f"{method}.{l}.{b}"] = heads
            mask = create_causal_mask(t, z.device, z.dtype)
            with torch.no_grad():
                u = hidden_after_attn_residual(g.h[l], z, mask)
            for b in ("zero", "att_itb_a0"):
                rows, res = [], []
                for j in range(t):
                    with torch.no_grad():
                        if b == "zero":
                            ub = torch.zeros_like(u[0, j])
                        else:
                            ub = hidden_after_attn_residual(g.h[l], itb(z, j), mask)[0, j].clone()
                        # compute_gpt2_mlp_lig_single_token, with the rule as a parameter.
                        zb = _forward_gpt2_mlp_z(g, l, z, j, ub, True).detach()
                    w = _GPT2MLPL2IGWrapper(g, l, j, zb, include_residual_connection=True)
                    w.set_context(z)
                    c, r0 = ig(w, u[0, j].unsqueeze(0), ub.unsqueeze(0), method)
                    rows.append(c.tolist())
                    res.append(r0)
                out["mlp"][f"{method}.{l}.{b}"] = {"contributions": rows, "alpha0_residual": res}
    return out


def main():
    assert os.path.isdir(FX), "run from the repository root"
    doc = {
        "generator": "tests/reference/make_lig_goldens.py",
        "package": "layer-wise-integrated-gradients 0.1.0 (PyPI wheel)",
        "rules": list(METHODS),
        "bert": bert_goldens(),
        "gpt2": gpt2_goldens(),
    }
    with open(OUT, "w") as f:
        json.dump(doc, f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
