#!/usr/bin/env python3
"""Captum goldens for the layer / neuron / gradient / perturbation methods of gradpath (issue 5).

Run from the repository root with the reference environment (built by
`bash scripts/setup-refenv.sh`; versions pinned in tests/reference/requirements.txt):

    .refenv/bin/python tests/reference/make_method_goldens.py

It reuses the tiny random models of tests/fixtures/models/ (made by make_model_goldens.py), loads
them in float64 with eager attention, and writes tests/fixtures/methods/<model>.safetensors
(float64; ids int64). Seeded and single-threaded.

The input space of every gradient method is the word embedding (`hook_embed`): `fwd_emb(E)` runs
the model on the real ids with the word-embedding module's output replaced by E (one row per batch
row), so position and token-type embeddings are never on the path. The baseline is the word
embedding of the baseline ids (non-special ids -> pad id; [CLS]/[SEP] kept). Target: logit of
class 1 (classifiers), cosine similarity of the mean-pooled embedding to a reference sentence
(tiny-bert-embed).

Tensors (prefix s{i}. for sentence i):

    s{i}.input_ids, s{i}.baseline_ids      int64 [1,T]
    s{i}.f_input, s{i}.f_baseline          [1]   F(x), F(x')
    s{i}.lig.{b}.{m}{n}.attr               LayerIntegratedGradients(F(ids), layer b), inputs ids,
                                           baselines baseline ids; [1, ...boundary shape]
    s{i}.lig.{b}.{m}{n}.delta              [1] Captum convergence delta
    s{i}.lc.{m}{n}.l{l}.attr               LayerConductance(fwd_emb, blocks.{l}.hook_resid_post
                                           module = the block's output LayerNorm) [1,T,C]
    s{i}.lc.{m}{n}.l{l}.delta              [1]
    s{i}.nc.{m}{n}.l{l}.attr               NeuronConductance(fwd_emb, resid_post of layer l,
                                           neuron_selector=(NEURON_TOK, NEURON_DIM)) [1,T,C]
    s{i}.ii.{m}{n}.l{l}.attr               InternalInfluence(fwd_emb, resid_post of layer l) [1,T,C]
    s{i}.saliency                          Saliency(fwd_emb) (abs=True) [1,T,C]
    s{i}.input_x_gradient                  InputXGradient(fwd_emb) [1,T,C]
    s{i}.nt.noise                          [S,T,C] the noise NoiseTunnel drew (recorded from
                                           torch.normal; float32 values widened)
    s{i}.nt.{smoothgrad,smoothgrad_sq,vargrad}   NoiseTunnel(Saliency) with that noise [1,T,C]
    s{i}.ablation.baseline                 FeatureAblation(fwd_emb), baselines = baseline
                                           embeddings, feature_mask = token index per coordinate
                                           [1,T,C]
    s{i}.ablation.zero                     the same with baselines = 0
"""

import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import make_model_goldens as mg  # noqa: E402

OUT = os.path.join(REPO, "tests", "fixtures", "methods")
MODELS = ["tiny-bert", "tiny-bert-embed", "tiny-distilbert"]
DT = torch.float64
# (captum method, n_steps)
RUNS = [("gausslegendre", 20), ("riemann_trapezoid", 20)]
NEURON = (0, 5)  # (token, hidden dim): [CLS], which the classifiers read in the last layer
NT_SAMPLES = 4
NT_STDEV = 0.3
SEED = 20251121


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tf = mg.import_transformers()
    from captum.attr import (
        FeatureAblation,
        InputXGradient,
        InternalInfluence,
        LayerConductance,
        LayerIntegratedGradients,
        NeuronConductance,
        NoiseTunnel,
        Saliency,
    )
    from safetensors.torch import save_file

    os.makedirs(OUT, exist_ok=True)
    for name in MODELS:
        folder = os.path.join(REPO, "tests", "fixtures", "models", name)
        cfg = json.load(open(os.path.join(folder, "config.json")))
        arch = cfg["architectures"][0]
        family = {"bert": "bert", "roberta": "roberta", "distilbert": "distilbert"}[cfg["model_type"]]
        cls = getattr(tf, arch)
        model = cls.from_pretrained(folder, attn_implementation="eager").double().eval()
        parts = mg.Parts(model, family)
        is_embed = parts.final is None
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        pad_id = model.config.pad_token_id

        def model_fwd(ids):
            kw = {"attention_mask": torch.ones_like(ids)}
            if family != "distilbert":
                kw["token_type_ids"] = torch.zeros_like(ids)
            return model(input_ids=ids, **kw)

        ref_pooled = None
        if is_embed:
            ref_ids = torch.tensor([tok.encode(mg.REF_SENTENCE).ids])
            with torch.no_grad():
                ref_pooled = mg.mean_pool(model_fwd(ref_ids).last_hidden_state, torch.ones_like(ref_ids))

        def F_ids(ids):
            out = model_fwd(ids)
            if is_embed:
                pooled = mg.mean_pool(out.last_hidden_state, torch.ones_like(ids))
                return nn.functional.cosine_similarity(pooled, ref_pooled.expand_as(pooled), dim=-1)
            return out.logits

        target = None if is_embed else mg.TARGET_CLASS
        boundary_modules = {
            "embed.hook_out": parts.embeddings,
            "blocks.0.hook_resid_post": parts.layers[0]["ln2"],
            "blocks.1.mlp.hook_post": parts.layers[1]["fc2"],  # input of fc2 (attribute_to_layer_input)
        }
        g = {}
        for i, text in enumerate(mg.SENTENCES):
            enc = tok.encode(text)
            ids = torch.tensor([enc.ids])
            base_ids = torch.tensor(
                [[t if s else pad_id for t, s in zip(enc.ids, enc.special_tokens_mask)]], dtype=torch.long
            )
            p = f"s{i}."
            g[p + "input_ids"] = ids
            g[p + "baseline_ids"] = base_ids

            def fwd_emb(E):
                h = parts.word.register_forward_hook(lambda _m, _i, _o: E)
                try:
                    return F_ids(ids.expand(E.shape[0], -1))
                finally:
                    h.remove()

            with torch.no_grad():
                x = parts.word(ids)
                xb = parts.word(base_ids)
                fx = F_ids(ids)
                fb = F_ids(base_ids)
                if not is_embed:
                    fx, fb = fx[:, target], fb[:, target]
            g[p + "f_input"] = fx.reshape(1)
            g[p + "f_baseline"] = fb.reshape(1)

            # --- layer IG (raw ids in, Captum semantics) ---
            for b, mod in boundary_modules.items():
                to_input = b.endswith("mlp.hook_post")
                lig = LayerIntegratedGradients(F_ids, mod)
                for method, n in RUNS:
                    attr, delta = lig.attribute(
                        inputs=ids,
                        baselines=base_ids,
                        target=target,
                        n_steps=n,
                        method=method,
                        return_convergence_delta=True,
                        attribute_to_layer_input=to_input,
                    )
                    g[p + f"lig.{b}.{method}{n}.attr"] = attr.detach()
                    g[p + f"lig.{b}.{method}{n}.delta"] = delta.detach().to(DT).reshape(1)

            # --- layer conductance, neuron conductance, internal influence on every layer ---
            for l, L in enumerate(parts.layers):
                mod = L["ln2"]
                for method, n in RUNS:
                    lc = LayerConductance(fwd_emb, mod)
                    attr, delta = lc.attribute(
                        x, baselines=xb, target=target, n_steps=n, method=method, return_convergence_delta=True
                    )
                    g[p + f"lc.{method}{n}.l{l}.attr"] = attr.detach()
                    g[p + f"lc.{method}{n}.l{l}.delta"] = delta.detach().to(DT).reshape(1)
                    nc = NeuronConductance(fwd_emb, mod)
                    attr = nc.attribute(x, neuron_selector=NEURON, baselines=xb, target=target, n_steps=n, method=method)
                    g[p + f"nc.{method}{n}.l{l}.attr"] = attr.detach()
                    ii = InternalInfluence(fwd_emb, mod)
                    attr = ii.attribute(x, baselines=xb, target=target, n_steps=n, method=method)
                    g[p + f"ii.{method}{n}.l{l}.attr"] = attr.detach()

            # --- plain gradients ---
            g[p + "saliency"] = Saliency(fwd_emb).attribute(x.clone(), target=target).detach()
            g[p + "input_x_gradient"] = InputXGradient(fwd_emb).attribute(x.clone(), target=target).detach()

            # --- NoiseTunnel(Saliency): record the noise torch.normal draws ---
            drawn = []
            real_normal = torch.normal

            def recording_normal(*a, **k):
                z = real_normal(*a, **k)
                drawn.append(z.detach().clone())
                return z

            for nt_type in ["smoothgrad", "smoothgrad_sq", "vargrad"]:
                drawn.clear()
                torch.manual_seed(SEED + i)
                torch.normal = recording_normal
                try:
                    a = NoiseTunnel(Saliency(fwd_emb)).attribute(
                        x.clone(), nt_type=nt_type, nt_samples=NT_SAMPLES, stdevs=NT_STDEV, target=target
                    )
                finally:
                    torch.normal = real_normal
                assert len(drawn) == 1 and drawn[0].shape == (NT_SAMPLES,) + tuple(x.shape[1:]), [d.shape for d in drawn]
                if nt_type == "smoothgrad":
                    g[p + "nt.noise"] = drawn[0].to(DT)
                else:
                    assert torch.equal(drawn[0].to(DT), g[p + "nt.noise"]), "same seed, same noise"
                g[p + f"nt.{nt_type}"] = a.detach()

            # --- FeatureAblation: one group per token ---
            T, C = x.shape[1], x.shape[2]
            mask = torch.arange(T).view(1, T, 1).expand(1, T, C).contiguous()
            fa = FeatureAblation(fwd_emb)
            with torch.no_grad():
                g[p + "ablation.baseline"] = fa.attribute(x, baselines=xb, target=target, feature_mask=mask).detach()
                g[p + "ablation.zero"] = fa.attribute(x, baselines=0.0, target=target, feature_mask=mask).detach()

        tensors = {k: v.detach().contiguous() for k, v in sorted(g.items())}
        for k, v in tensors.items():
            assert v.dtype in (DT, torch.long), (k, v.dtype)
        path = os.path.join(OUT, f"{name}.safetensors")
        save_file(
            tensors,
            path,
            metadata={
                "gradpath": json.dumps(
                    {
                        "model": name,
                        "sentences": mg.SENTENCES,
                        "runs": [f"{m}{n}" for m, n in RUNS],
                        "neuron": list(NEURON),
                        "nt_samples": NT_SAMPLES,
                        "nt_stdev": NT_STDEV,
                        "generator": "tests/reference/make_method_goldens.py",
                    },
                    sort_keys=True,
                )
            },
        )
        os.chmod(path, 0o644)
        print(f"{name}: {len(tensors)} tensors -> {os.path.relpath(path, REPO)}")


if __name__ == "__main__":
    main()
