#!/usr/bin/env python3
"""Tiny random decoder models (GPT-2, Llama with GQA + llama3 RoPE scaling, Mistral with an explicit
head_dim (12 heads·dims ≠ hidden size 32), Qwen2 with q/k/v biases + linear RoPE scaling) + golden activations and Captum IG values for gradpath; and, with --smollm2,
logits and IG goldens of the real SmolLM2-135M-Instruct Q4_1 GGUF as transformers loads it.

Run from the repository root with the reference environment (built by
`bash scripts/setup-refenv.sh`; versions pinned in tests/reference/requirements.txt):

    .refenv/bin/python tests/reference/make_decoder_goldens.py            # tiny models
    .refenv/bin/python tests/reference/make_decoder_goldens.py --smollm2  # real model

RoPE in float64
---------------
transformers computes the RoPE cos/sin tables in float32 even for a float64 model (the inverse
frequencies are cast with `.float()` and the rotary forward disables autocast). A float64 golden would
then carry float32 rounding (~1e-7) in every rotated q/k. The script replaces each model's rotary
embedding forward with the same formulas evaluated in float64 (`f64_rotary`), including the
`linear` and `llama3` scaling rules. gradpath computes its tables in float64 and rounds them to the
compute dtype, so the f64 goldens compare like for like; the f32 checks use the same goldens with
the f32 tolerance. For the same reason the Llama/Qwen2 eager attention (whose softmax transformers
runs in float32) is replaced by the same function with a float64 softmax, and LlamaRMSNorm /
Qwen2RMSNorm (which cast to float32) by the same formula in the input dtype (`f64_eager_attention`).

Golden tensor names (prefix s{i}. for sentence i; batch 1; T tokens):

    s{i}.input_ids                        int64 [1,T]
    s{i}.hook_logits                      [1,T,V]   logits at every position
    s{i}.hook_embed                       [1,T,C]   token-embedding lookup
    s{i}.hook_pos_embed                   [1,T,C]   learned positions (GPT-2 only)
    s{i}.embed.hook_out                   [1,T,C]   input of block 0
    s{i}.blocks.{l}.hook_resid_pre        [1,T,C]
    s{i}.blocks.{l}.ln1.hook_normalized   [1,T,C]   attention input (after LayerNorm / RMSNorm)
    s{i}.blocks.{l}.attn.hook_q|hook_k|hook_v   [1,T,H or H_kv,Dh]  projections incl. bias, before RoPE
    s{i}.blocks.{l}.attn.hook_rot_q|hook_rot_k  [1,T,H or H_kv,Dh]  after RoPE (Llama family)
    s{i}.blocks.{l}.attn.hook_attn_scores [1,H,T,T] q.k^T/sqrt(Dh) before the causal mask
    s{i}.blocks.{l}.attn.hook_pattern     [1,H,T,T] softmax probabilities (causal)
    s{i}.blocks.{l}.attn.hook_z           [1,T,H,Dh] pattern @ v, before the output projection
    s{i}.blocks.{l}.hook_attn_out         [1,T,C]
    s{i}.blocks.{l}.hook_resid_mid        [1,T,C]   resid_pre + attn_out
    s{i}.blocks.{l}.ln2.hook_normalized   [1,T,C]   MLP input
    s{i}.blocks.{l}.mlp.hook_pre          [1,T,F]   GPT-2: c_fc output; Llama: gate_proj output
    s{i}.blocks.{l}.mlp.hook_pre_linear   [1,T,F]   Llama: up_proj output
    s{i}.blocks.{l}.mlp.hook_post         [1,T,F]   input of the down projection
    s{i}.blocks.{l}.hook_mlp_out          [1,T,C]
    s{i}.blocks.{l}.hook_resid_post       [1,T,C]
    s{i}.ln_final.hook_normalized         [1,T,C]

  Captum LayerIntegratedGradients on the token-embedding module (= hook_embed); target F = logit of
  the predicted next token (argmax of the last position's logits, stored as s{i}.target_token) at
  the last position; baseline = every non-special id replaced by the pad id (BOS kept):
    s{i}.baseline_ids, s{i}.lig.target_input, s{i}.lig.target_baseline,
    s{i}.lig.{gausslegendre20|riemann_trapezoid20}.attr [1,T,C] and .delta [1]

  Generation (sentence 0): greedy 3 new tokens (s0.gen.tokens), then for each generated token Captum
  LLMGradientAttribution's computation (LayerIntegratedGradients on the embeddings, F =
  log_softmax(logits[:, -1])[token], previous generated tokens appended to input and baseline alike,
  attribution summed over the hidden size and cut to the prompt), gausslegendre 20 steps:
    s0.gen.prompt_only.attr [3, T]  and  s0.gen.prompt_only.delta [3]

Everything is seeded; re-running gives identical files.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

SEED = 20261121
DT = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
MODELS_OUT = os.path.join(REPO, "tests", "fixtures", "models")
SMOL_DIR = os.path.join(REPO, "models", "SmolLM2-135M-Instruct")
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_OUT = os.path.join(REPO, "tests", "fixtures", "smollm2_goldens.safetensors")

SENTENCES = ["the quick brown fox jumps over the lazy", "gradients flow back through every layer of"]
LIG_RUNS = [("gausslegendre", 20), ("riemann_trapezoid", 20)]
N_GEN = 3
SMOL_PROMPTS = ["The capital of France is", "def add(a, b):\n    return", "Integrated gradients explain"]
SMOL_IG_STEPS = [("gausslegendre", 20), ("gausslegendre", 50)]

SPECIALS = ["<|endoftext|>", "<s>", "<pad>", "<unk>"]
VOCAB_SIZE = 300
CORPUS = [
    "the quick brown fox jumps over the lazy dog.",
    "a lazy dog sleeps in the sun while the quick fox runs away.",
    "transformers explain the world with attention and layers.",
    "gradients flow back through every layer of the model.",
    "the model reads the sentence and predicts the next token.",
    "integrated gradients attribute the prediction to the input tokens.",
    "a small dog runs in the park and plays with a ball.",
    "attention heads look at other tokens in the sentence.",
] * 4


def build_tokenizer(bos):
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
        )
    return tok


def specs(tf, vocab):
    common = dict(vocab_size=vocab, bos_token_id=1, eos_token_id=0, pad_token_id=2)
    return [
        dict(
            name="tiny-gpt2",
            cls=tf.GPT2LMHeadModel,
            bos=False,
            config=tf.GPT2Config(
                n_embd=32, n_layer=2, n_head=4, n_inner=None, n_positions=64, activation_function="gelu_new",
                resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5, **common,
            ),
        ),
        dict(
            name="tiny-llama",
            cls=tf.LlamaForCausalLM,
            bos=True,
            config=tf.LlamaConfig(
                hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=500.0,
                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                tie_word_embeddings=False, hidden_act="silu", attention_bias=False, **common,
            ),
        ),
        dict(
            name="tiny-mistral",
            cls=tf.MistralForCausalLM,
            bos=True,
            config=tf.MistralConfig(
                hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=12, max_position_embeddings=64, rms_norm_eps=1e-5,
                rope_theta=10000.0, sliding_window=None, tie_word_embeddings=False, hidden_act="silu",
                **common,
            ),
        ),
        dict(
            name="tiny-qwen2",
            cls=tf.Qwen2ForCausalLM,
            bos=False,
            config=tf.Qwen2Config(
                hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000.0,
                rope_scaling={"rope_type": "linear", "factor": 2.0}, tie_word_embeddings=True,
                hidden_act="silu", use_sliding_window=False, **common,
            ),
        ),
    ]


def reinit_(model, gen):
    """Large random values for every parameter (dropped biases / norm weights are detectable)."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.dim() == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
            elif "wte" in name or "wpe" in name or "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            else:
                fan_in = p.shape[0] if "transformer.h" in name else p.shape[1]  # GPT-2 Conv1D is [in, out]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


# ----------------------------------------------------------------------------------------------
# RoPE in float64
# ----------------------------------------------------------------------------------------------


def inv_freq_f64(cfg):
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=DT) / d))
    rs = getattr(cfg, "rope_scaling", None) or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        lo_w, hi_w = old / lo, old / hi
        wl = 2 * math.pi / inv
        out = torch.where(wl > lo_w, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        mid = ~(wl < hi_w) * ~(wl > lo_w)
        inv = torch.where(mid, smoothed, out)
    elif kind != "default":
        raise ValueError(kind)
    return inv


def f64_rotary(model):
    rot = model.model.rotary_emb
    inv = inv_freq_f64(model.config)
    assert torch.allclose(inv.float(), rot.inv_freq.float(), rtol=1e-6), "inverse frequencies differ"

    def forward(x, position_ids):
        freqs = position_ids[..., None].to(DT) * inv[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * rot.attention_scaling).to(x.dtype), (emb.sin() * rot.attention_scaling).to(x.dtype)

    rot.forward = forward
    return inv


def f64_eager_attention():
    """transformers' Llama/Qwen2 eager attention runs its softmax in float32 even for a float64 model;
    the same function with the softmax in the query dtype (float64 here)."""
    from transformers.models.llama import modeling_llama
    from transformers.models.mistral import modeling_mistral
    from transformers.models.qwen2 import modeling_qwen2

    def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        k = modeling_llama.repeat_kv(key, module.num_key_value_groups)
        v = modeling_llama.repeat_kv(value, module.num_key_value_groups)
        w = torch.matmul(query, k.transpose(2, 3)) * scaling
        if attention_mask is not None:
            w = w + attention_mask[:, :, :, : k.shape[-2]]
        w = torch.softmax(w, dim=-1)
        return torch.matmul(w, v).transpose(1, 2).contiguous(), w

    modeling_llama.eager_attention_forward = eager
    modeling_mistral.eager_attention_forward = eager
    modeling_qwen2.eager_attention_forward = eager

    # LlamaRMSNorm / Qwen2RMSNorm cast their input to float32; the same formula in the input dtype.
    def rms(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))

    modeling_llama.LlamaRMSNorm.forward = rms
    modeling_mistral.MistralRMSNorm.forward = rms
    modeling_qwen2.Qwen2RMSNorm.forward = rms


# ----------------------------------------------------------------------------------------------
# boundaries
# ----------------------------------------------------------------------------------------------


class Parts:
    def __init__(self, model):
        self.gpt2 = hasattr(model, "transformer")
        if self.gpt2:
            t = model.transformer
            self.word, self.pos, self.layers, self.final_norm = t.wte, t.wpe, t.h, t.ln_f
        else:
            m = model.model
            self.word, self.pos, self.layers, self.final_norm = m.embed_tokens, None, m.layers, m.norm
        self.lm_head = model.lm_head
        cfg = model.config
        self.n_heads = cfg.num_attention_heads if not self.gpt2 else cfg.n_head
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        c = cfg.hidden_size if not self.gpt2 else cfg.n_embd
        self.d_head = getattr(cfg, "head_dim", None) or c // self.n_heads


def capture(parts, forward):
    acts, handles = {}, []

    def out_hook(name):
        def h(_m, _i, out):
            acts[name] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        return h

    def in_hook(name):
        def h(_m, args, kwargs):
            x = args[0] if args else kwargs.get("hidden_states", next(iter(kwargs.values())))
            acts[name] = x.detach().clone()
        return h

    def reg_out(mod, name):
        handles.append(mod.register_forward_hook(out_hook(name)))

    def reg_in(mod, name):
        handles.append(mod.register_forward_pre_hook(in_hook(name), with_kwargs=True))

    reg_out(parts.word, "hook_embed")
    if parts.pos is not None:
        reg_out(parts.pos, "hook_pos_embed")
    for l, L in enumerate(parts.layers):
        p = f"blocks.{l}."
        reg_in(L, p + "hook_resid_pre")
        reg_out(L, p + "hook_resid_post")
        if parts.gpt2:
            reg_out(L.ln_1, p + "ln1.hook_normalized")
            reg_out(L.attn.c_attn, p + "attn._qkv")
            reg_in(L.attn.c_proj, p + "attn._z_flat")
            reg_out(L.attn.c_proj, p + "hook_attn_out")
            reg_in(L.ln_2, p + "hook_resid_mid")
            reg_out(L.ln_2, p + "ln2.hook_normalized")
            reg_out(L.mlp.c_fc, p + "mlp.hook_pre")
            reg_in(L.mlp.c_proj, p + "mlp.hook_post")
            reg_out(L.mlp.c_proj, p + "hook_mlp_out")
        else:
            a = L.self_attn
            reg_out(L.input_layernorm, p + "ln1.hook_normalized")
            reg_out(a.q_proj, p + "attn._q")
            reg_out(a.k_proj, p + "attn._k")
            reg_out(a.v_proj, p + "attn._v")
            reg_in(a.o_proj, p + "attn._z_flat")
            reg_out(a.o_proj, p + "hook_attn_out")
            reg_in(L.post_attention_layernorm, p + "hook_resid_mid")
            reg_out(L.post_attention_layernorm, p + "ln2.hook_normalized")
            reg_out(L.mlp.gate_proj, p + "mlp.hook_pre")
            reg_out(L.mlp.up_proj, p + "mlp.hook_pre_linear")
            reg_in(L.mlp.down_proj, p + "mlp.hook_post")
            reg_out(L.mlp.down_proj, p + "hook_mlp_out")
    reg_out(parts.final_norm, "ln_final.hook_normalized")
    try:
        out = forward()
    finally:
        for h in handles:
            h.remove()
    return acts, out


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def finish(acts, parts, out, inv_freq):
    """Derive q/k/v/z/scores/pattern and cross-check them against the model's own outputs."""
    T = out.logits.shape[1]
    H, Hk, D = parts.n_heads, parts.n_kv, parts.d_head
    for l in range(len(parts.layers)):
        p = f"blocks.{l}."
        if parts.gpt2:
            q, k, v = acts.pop(p + "attn._qkv").split(H * D, dim=-1)
        else:
            q, k, v = acts.pop(p + "attn._q"), acts.pop(p + "attn._k"), acts.pop(p + "attn._v")
        q, k, v = (t.reshape(1, T, -1, D) for t in (q, k, v))
        acts[p + "attn.hook_q"], acts[p + "attn.hook_k"], acts[p + "attn.hook_v"] = q, k, v
        if inv_freq is not None:
            ang = torch.arange(T, dtype=DT)[:, None] * inv_freq[None, :]
            ang = torch.cat((ang, ang), dim=-1)
            cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            acts[p + "attn.hook_rot_q"], acts[p + "attn.hook_rot_k"] = q, k
        kk = k.repeat_interleave(H // Hk, dim=2)
        vv = v.repeat_interleave(H // Hk, dim=2)
        scores = torch.einsum("bihd,bjhd->bhij", q, kk) / math.sqrt(D)
        causal = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
        pattern = torch.softmax(scores + causal, dim=-1)
        assert torch.allclose(pattern, out.attentions[l], atol=1e-12), f"layer {l}: pattern mismatch"
        z = torch.einsum("bhij,bjhd->bihd", pattern, vv)
        zf = acts.pop(p + "attn._z_flat")
        assert torch.allclose(z.reshape(zf.shape), zf, atol=1e-12), f"layer {l}: z mismatch"
        acts[p + "attn.hook_attn_scores"] = scores
        acts[p + "attn.hook_pattern"] = pattern
        acts[p + "attn.hook_z"] = z
        mid = acts[p + "hook_resid_pre"] + acts[p + "hook_attn_out"]
        assert torch.allclose(mid, acts[p + "hook_resid_mid"], atol=1e-12)
    first = acts["blocks.0.hook_resid_pre"]
    acts["embed.hook_out"] = first
    if parts.gpt2:
        assert torch.allclose(acts["hook_embed"] + acts["hook_pos_embed"], first, atol=1e-12)
    else:
        assert torch.equal(acts["hook_embed"], first)
    acts["hook_logits"] = out.logits.detach().clone()
    return acts


def lig_runs(model, parts, ids, base_ids, token, goldens, p):
    from captum.attr import LayerIntegratedGradients

    def F(x):
        return model(input_ids=x).logits[:, -1, :]

    with torch.no_grad():
        fx = F(ids)[:, token]
        fb = F(base_ids)[:, token]
    goldens[p + "lig.target_input"] = fx.reshape(1)
    goldens[p + "lig.target_baseline"] = fb.reshape(1)
    lig = LayerIntegratedGradients(F, parts.word)
    rep = {}
    for method, n in LIG_RUNS:
        attr, delta = lig.attribute(inputs=ids, baselines=base_ids, target=token, n_steps=n, method=method,
                                    return_convergence_delta=True)
        goldens[p + f"lig.{method}{n}.attr"] = attr.detach()
        goldens[p + f"lig.{method}{n}.delta"] = delta.detach().to(DT).reshape(1)
        rep[f"{method}{n}"] = {"delta": delta.item(), "rel_delta": abs(delta.item()) / abs((fx - fb).item())}
    return rep


def generation(model, parts, ids, base_ids, goldens):
    """Captum LLMGradientAttribution's computation (llm_attr.py), written out for a fixed baseline."""
    from captum.attr import LayerIntegratedGradients

    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=N_GEN, do_sample=False,
                             pad_token_id=model.config.pad_token_id)
    gen = out[0, ids.shape[1]:]
    assert gen.numel() == N_GEN
    T = ids.shape[1]
    rows, deltas = [], []
    for s in range(N_GEN):
        prev = gen[:s].unsqueeze(0)

        def F(x):
            logits = model(input_ids=torch.cat([x, prev.expand(x.shape[0], -1)], dim=1)).logits[:, -1]
            return torch.log_softmax(logits, dim=1)[:, gen[s]]

        lig = LayerIntegratedGradients(F, parts.word)
        attr, delta = lig.attribute(inputs=ids, baselines=base_ids, n_steps=20, method="gausslegendre",
                                    return_convergence_delta=True)
        # Captum's hook replaces the embedding output for the whole (prompt + previous) input; the
        # appended tokens have equal input and baseline embeddings, so their attribution is zero.
        rows.append(attr.detach()[0, :T].sum(-1))
        deltas.append(delta.detach().to(DT).reshape(()))
    goldens["s0.gen.tokens"] = gen.clone().unsqueeze(0)
    goldens["s0.gen.prompt_only.attr"] = torch.stack(rows)
    goldens["s0.gen.prompt_only.delta"] = torch.stack(deltas)
    return gen.tolist()


def build_tiny(tf):
    import captum
    from safetensors.torch import save_file

    toks = {b: build_tokenizer(b) for b in (False, True)}
    manifest = {"generator": "tests/reference/make_decoder_goldens.py", "seed": SEED,
                "versions": {"torch": torch.__version__, "transformers": tf.__version__, "captum": captum.__version__},
                "rope": "tables in float64 (see the script's docstring)", "models": {}}
    for idx, spec in enumerate(specs(tf, VOCAB_SIZE)):
        name = spec["name"]
        folder = os.path.join(MODELS_OUT, name)
        os.makedirs(folder, exist_ok=True)
        tok = toks[spec["bos"]]
        assert tok.get_vocab_size() == VOCAB_SIZE
        torch.manual_seed(SEED + idx)
        gen = torch.Generator().manual_seed(SEED + 1000 * (idx + 1))
        model = spec["cls"](spec["config"]).eval()
        reinit_(model, gen)
        model.save_pretrained(folder, safe_serialization=True)
        tok.save(os.path.join(folder, "tokenizer.json"), pretty=True)
        model = spec["cls"].from_pretrained(folder, attn_implementation="eager").double().eval()
        parts = Parts(model)
        inv = None if parts.gpt2 else f64_rotary(model)
        goldens, rep = {}, {}
        for i, text in enumerate(SENTENCES):
            enc = tok.encode(text)
            ids = torch.tensor([enc.ids])
            base_ids = torch.tensor([[t if s else 2 for t, s in zip(enc.ids, enc.special_tokens_mask)]])
            p = f"s{i}."
            with torch.no_grad():
                acts, out = capture(parts, lambda: model(input_ids=ids, output_attentions=True))
            acts = finish(acts, parts, out, inv)
            for k, v in acts.items():
                goldens[p + k] = v
            goldens[p + "input_ids"] = ids
            goldens[p + "baseline_ids"] = base_ids
            token = int(out.logits[0, -1].argmax())
            goldens[p + "target_token"] = torch.tensor([token])
            rep[f"s{i}"] = {"text": text, "ids": enc.ids, "target_token": token,
                            "lig": lig_runs(model, parts, ids, base_ids, token, goldens, p)}
            if i == 0:
                rep["s0"]["generated"] = generation(model, parts, ids, base_ids, goldens)
        tensors = {k: v.detach().clone().contiguous() for k, v in sorted(goldens.items())}
        save_file(tensors, os.path.join(folder, "goldens.safetensors"))
        manifest["models"][name] = rep
        print(name, json.dumps(rep)[:300])
    with open(os.path.join(MODELS_OUT, "DECODER_MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def build_smollm2(tf):
    from captum.attr import LayerIntegratedGradients
    from safetensors.torch import save_file

    tok = tf.AutoTokenizer.from_pretrained(SMOL_DIR, gguf_file=SMOL_FILE)
    model = tf.AutoModelForCausalLM.from_pretrained(SMOL_DIR, gguf_file=SMOL_FILE, torch_dtype=torch.float32)
    model = model.double().eval()
    f64_rotary(model)
    torch.set_num_threads(2)
    goldens, rep = {}, {}
    for i, text in enumerate(SMOL_PROMPTS):
        # gradpath honours add_bos_token = False from the GGUF metadata; transformers' converted
        # tokenizer would prepend <|im_start|>, so the ids are taken without special tokens.
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        p = f"p{i}."
        goldens[p + "input_ids"] = ids
        goldens[p + "logits_last"] = logits[0, -1].clone()
        goldens[p + "logits_first64"] = logits[0, :, :64].clone()
        goldens[p + "argmax"] = logits[0].argmax(-1)
        token = int(logits[0, -1].argmax())
        r = {"text": text, "ids": ids[0].tolist(), "next": tok.decode([token])}
        if i == 0:
            with torch.no_grad():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                                     pad_token_id=2)
            r["greedy"] = tok.decode(out[0, ids.shape[1]:])
            goldens[p + "greedy"] = out[0, ids.shape[1]:].clone()
            base_ids = torch.full_like(ids, 2)  # pad = <|im_end|> (id 2); no special tokens in the prompt

            def F(x):
                return model(input_ids=x).logits[:, -1, :]

            lig = LayerIntegratedGradients(F, model.model.embed_tokens)
            with torch.no_grad():
                fx, fb = F(ids)[0, token].item(), F(base_ids)[0, token].item()
            goldens[p + "baseline_ids"] = base_ids
            goldens[p + "lig.target_input"] = torch.tensor([fx], dtype=DT)
            goldens[p + "lig.target_baseline"] = torch.tensor([fb], dtype=DT)
            for method, n in SMOL_IG_STEPS:
                attr, delta = lig.attribute(inputs=ids, baselines=base_ids, target=token, n_steps=n, method=method,
                                            return_convergence_delta=True, internal_batch_size=10)
                goldens[p + f"lig.{method}{n}.attr"] = attr.detach()
                goldens[p + f"lig.{method}{n}.delta"] = delta.detach().to(DT).reshape(1)
                r[f"{method}{n}"] = {"delta": delta.item(), "rel_delta": abs(delta.item()) / abs(fx - fb)}
        rep[f"p{i}"] = r
        print(json.dumps(r))
    save_file({k: v.contiguous() for k, v in goldens.items()}, SMOL_OUT)
    with open(SMOL_OUT.replace(".safetensors", ".json"), "w") as f:
        json.dump({"generator": "tests/reference/make_decoder_goldens.py --smollm2", "torch": torch.__version__,
                   "transformers": tf.__version__, "dtype": "float64 (weights dequantised to float32 by "
                   "transformers, then .double())", "rope": "float64 tables", "prompts": rep}, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smollm2", action="store_true", help="write tests/fixtures/smollm2_goldens.* only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import transformers as tf

    f64_eager_attention()

    if args.smollm2:
        build_smollm2(tf)
    else:
        build_tiny(tf)


if __name__ == "__main__":
    sys.exit(main())
