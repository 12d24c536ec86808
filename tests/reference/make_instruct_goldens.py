#!/usr/bin/env python3
"""Answer-level and contrastive targets (issue 15), hand-written in PyTorch on the tiny decoder
fixtures in float64, for `tests/instruct.rs`:

    F(e) = Σ_j w_j · term_j(e),  term_j = log_softmax(logits[pos_j])[tok_j]   (an answer: w = +1)
                                        or logits[pos_j, tok_j]               (two single tokens)

on the input `prompt + longer_continuation[:-1]` (teacher forcing), where e are the word
embeddings (the models' `inputs_embeds`). The path moves the prompt's rows only: the baseline has
the pad id (or the zero vector) at every non-special prompt position, BOS and the template's
special tokens kept, and the answer's rows equal to the input's. Integrated gradients with
Gauss–Legendre nodes (numpy `leggauss`, α = (1 + ξ)/2, w = ω/2), all path points in one batch:

    attr_i = Σ_c (x − x′)_{ic} · Σ_k w_k ∂F/∂e_{ic}(x′ + α_k (x − x′))

Cases: an answer (pad and zero baselines), two single tokens (a logit difference), a multi-token
contrast that shares the answer's first token, contrasts that differ from the answer before their
last tokens (gradpath runs them as two branches of a token tree; here every term is evaluated on
`prompt + continuation[:-1]` run on its own, see `terms_of`), on tiny-llama / tiny-gpt2 / tiny-mistral /
tiny-qwen2, and an answer after the chat template of tiny-llama-chat (the rendered prompt as
`apply_chat_template(..., tokenize=True)` gives it). Written to tests/fixtures/instruct_goldens.json.

`--per-token-paths` (CAPTUM_CASES): Captum's own `LLMGradientAttribution` around
`LayerIntegratedGradients` on the embedding layer, `TextTokenInput(prompt, baselines=<pad id>,
skip_tokens=[<BOS id>])` (the chat fixture: the rendered prompt, its special tokens skipped),
target = the answer text, gausslegendre 20 steps: `token_attr` [n_answer, n_interpretable] and
`seq_attr`, stored under "captum".

Run from the repository root with the reference environment (built by
`bash scripts/setup-refenv.sh`):

    .refenv/bin/python tests/reference/make_instruct_goldens.py

The float32 internals of transformers' Llama family (RoPE tables, eager softmax, RMSNorm) are
replaced by float64 versions exactly as in make_decoder_goldens.py, whose functions are imported.
"""

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_decoder_goldens import DT, f64_eager_attention, f64_rotary  # noqa: E402

REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(REPO, "tests", "fixtures", "models")
OUT = os.path.join(REPO, "tests", "fixtures", "instruct_goldens.json")
N_STEPS = 20
PAD = 2
SPECIAL_IDS = {0, 1, 2, 3}
PROMPT = "the quick brown fox jumps over the"
CHAT_USER = "what does the lazy dog do?"

CASES = [
    # model, prompt ("chat" = the chat template on CHAT_USER), answer, contrast, baseline
    ("tiny-llama", PROMPT, " lazy dog.", None, "pad"),
    ("tiny-llama", PROMPT, " lazy dog.", None, "zero"),
    ("tiny-llama", PROMPT, " dog", " the", "pad"),
    ("tiny-llama", PROMPT, " lazy dog.", " lazy do", "pad"),
    ("tiny-gpt2", PROMPT, " lazy dog.", None, "pad"),
    ("tiny-gpt2", PROMPT, " dog", " and", "zero"),
    ("tiny-mistral", PROMPT, " lazy dog.", None, "pad"),
    ("tiny-qwen2", PROMPT, " lazy dog.", " lazy do", "pad"),
    ("tiny-llama-chat", "chat", " it sleeps in the sun.", None, "pad"),
    # answer and contrast that differ before their last tokens: two branches after the prompt
    ("tiny-llama", PROMPT, " lazy dog.", " quick fox", "pad"),
    ("tiny-llama", PROMPT, " lazy dog.", " lazy cat", "zero"),
    ("tiny-gpt2", PROMPT, " lazy dog.", " quick fox", "pad"),
    ("tiny-qwen2", PROMPT, " lazy dog.", " lazy cat", "pad"),
]


def load(name):
    import transformers as tf
    from tokenizers import Tokenizer

    folder = os.path.join(MODELS, name)
    model = tf.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").double().eval()
    if hasattr(model.model if hasattr(model, "model") else model, "rotary_emb"):
        f64_rotary(model)
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    return model, tok


def terms_of(n_prompt, answer, contrast):
    """The target's terms and the tokens after the prompt, in gradpath's layout: each
    continuation's inputs are its tokens but the last; their shared prefix follows the prompt, and
    where both still have inputs of their own, the answer's and then the contrast's follow as two
    branches of a token tree (type ids 2 and 3). Each term is (position in that layout, token,
    kind, weight, run, position in the run) where run 0 is `prompt + answer[:-1]` and run 1
    `prompt + contrast[:-1]`, each a plain sequence on its own: the reference evaluates the terms
    there, never through a tree mask."""
    ia = answer[:-1]
    ic = [] if contrast is None else contrast[:-1]
    k = 0
    while k < min(len(ia), len(ic)) and ia[k] == ic[k]:
        k += 1
    ba, bc = ia[k:], ic[k:]
    branched = bool(ba) and bool(bc)
    start_a = n_prompt + k
    start_c = start_a + (len(ba) if branched else 0)
    single = contrast is not None and len(answer) == 1 and len(contrast) == 1
    kind = "logit" if single else "log-prob"
    terms = []
    for run, (cont, w, start) in enumerate(((answer, 1.0, start_a), (contrast, -1.0, start_c))):
        if cont is None:
            continue
        for j, t in enumerate(cont):
            if j == 0:
                pos = n_prompt - 1
            elif j - 1 < k:
                pos = n_prompt + j - 1
            else:
                pos = start + j - 1 - k
            hit = [i for i, x in enumerate(terms) if x[0] == pos and x[1] == t and x[3] == -w]
            if hit:
                terms.pop(hit[0])
            else:
                terms.append((pos, t, kind, w, run, n_prompt - 1 + j))
    extra = list(ia[:k]) + list(ba) + list(bc)
    kinds = [0] * k + [2 if branched else 0] * len(ba) + [3 if branched else 0] * len(bc)
    # the layout indices of each run's inputs after the prompt
    cols = [list(range(n_prompt, n_prompt + k)) + list(range(start_a, start_a + len(ba))),
            list(range(n_prompt, n_prompt + k)) + list(range(start_c, start_c + len(bc)))]
    return terms, extra, kinds, (start_c if branched else None), cols


def run_case(model, tok, name, prompt, answer_text, contrast_text, baseline):
    if prompt == "chat":
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(os.path.join(MODELS, name))
        text = hf.apply_chat_template([{"role": "user", "content": CHAT_USER}], tokenize=False,
                                      add_generation_prompt=True)
        ids = list(hf.apply_chat_template([{"role": "user", "content": CHAT_USER}], tokenize=True,
                                          add_generation_prompt=True))
        special = [i in SPECIAL_IDS for i in ids]
    else:
        text = prompt
        enc = tok.encode(prompt)
        ids, special = list(enc.ids), [bool(m) for m in enc.special_tokens_mask]
    answer = tok.encode(answer_text, add_special_tokens=False).ids
    contrast = None if contrast_text is None else tok.encode(contrast_text, add_special_tokens=False).ids
    n_prompt = len(ids)
    terms, extra, kinds, contrast_branch, cols = terms_of(n_prompt, answer, contrast)
    seq = ids + list(extra)
    emb = model.get_input_embeddings()
    with torch.no_grad():
        x = emb(torch.tensor([seq]))[0]
        if baseline == "pad":
            base_ids = [t if s else PAD for t, s in zip(ids, special)] + list(extra)
            xb = emb(torch.tensor([base_ids]))[0]
        else:
            base_ids = None
            xb = torch.zeros_like(x)
            xb[n_prompt:] = x[n_prompt:]

    def term_values(e):
        # each run as a plain sequence of its own: the prompt's rows and its inputs' rows
        logits = [model(inputs_embeds=torch.cat([e[:, :n_prompt], e[:, c]], dim=1)).logits
                  for c in cols]
        out = []
        for _, t, kind, _, run, pos in terms:
            row = logits[run][:, pos]
            out.append(row[:, t] if kind == "logit" else torch.log_softmax(row, dim=-1)[:, t])
        return out

    def F(e):
        return sum(term[3] * v for term, v in zip(terms, term_values(e)))

    xi, om = np.polynomial.legendre.leggauss(N_STEPS)
    alphas = torch.tensor((1 + xi) / 2, dtype=DT)
    weights = torch.tensor(om / 2, dtype=DT)
    pts = (xb[None] + alphas[:, None, None] * (x - xb)[None]).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F(pts).sum(), pts)
    attr = ((x - xb) * (weights[:, None, None] * g).sum(0)).sum(-1)
    with torch.no_grad():
        tin = [v.item() for v in term_values(x[None])]
        tb = [v.item() for v in term_values(xb[None])]
        fx, fb = F(x[None]).item(), F(xb[None]).item()
    return {
        "model": name,
        "text": CHAT_USER if prompt == "chat" else prompt,
        "chat": prompt == "chat",
        "rendered": text,
        "answer": answer_text,
        "contrast": contrast_text,
        "baseline": baseline,
        "steps": N_STEPS,
        "ids": seq,
        "baseline_ids": base_ids,
        "type_ids_after_prompt": kinds,
        "contrast_branch": contrast_branch,
        "terms": [{"position": p, "token": t, "kind": k, "weight": w} for p, t, k, w, _, _ in terms],
        "term_input": tin,
        "term_baseline": tb,
        "f_input": fx,
        "f_baseline": fb,
        "attributions": attr.tolist(),
        "delta": attr.sum().item() - (fx - fb),
    }


CAPTUM_CASES = [
    ("tiny-llama", PROMPT, " lazy dog."),
    ("tiny-qwen2", PROMPT, " lazy dog."),
    ("tiny-gpt2", PROMPT, " lazy dog."),
    ("tiny-llama-chat", "chat", " it sleeps."),
]


def captum_case(model, name, prompt, answer_text):
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = os.path.join(MODELS, name)
    if prompt == "chat":
        hf = AutoTokenizer.from_pretrained(folder)
        text = hf.apply_chat_template([{"role": "user", "content": CHAT_USER}], tokenize=False,
                                      add_generation_prompt=True)
        # the rendered prompt holds its special tokens: encode it without adding more
        ids = hf(text, add_special_tokens=False)["input_ids"]
        skip = sorted({i for i in ids if i in SPECIAL_IDS})

        class NoSpecials:  # TextTokenInput encodes with the tokenizer's defaults
            def __init__(self, tok):
                self.tok = tok

            def encode(self, t, return_tensors=None, add_special_tokens=False):
                return self.tok.encode(t, return_tensors=return_tensors, add_special_tokens=False)

            def __getattr__(self, k):
                return getattr(self.tok, k)

        tok = NoSpecials(hf)
    else:
        text = prompt
        hf = PreTrainedTokenizerFast(tokenizer_file=os.path.join(folder, "tokenizer.json"))
        tok = hf
        ids = hf(text)["input_ids"]
        skip = sorted({i for i in ids if i in SPECIAL_IDS})
    inp = TextTokenInput(text, tok, baselines=PAD, skip_tokens=skip or None)
    assert inp.inp_tensor[0].tolist() == ids, (inp.inp_tensor, ids)
    lig = LayerIntegratedGradients(model, model.get_input_embeddings())
    llm = LLMGradientAttribution(lig, hf)
    res = llm.attribute(inp, target=answer_text, n_steps=N_STEPS, method="gausslegendre")
    return {
        "model": name,
        "text": CHAT_USER if prompt == "chat" else prompt,
        "chat": prompt == "chat",
        "answer": answer_text,
        "baseline": "pad",
        "steps": N_STEPS,
        "ids": ids,
        "skip_tokens": skip,
        "answer_ids": hf.encode(answer_text, add_special_tokens=False),
        "token_attr": res.token_attr.tolist(),
        "seq_attr": res.seq_attr.tolist(),
    }


def main():
    torch.set_num_threads(1)
    f64_eager_attention()
    import transformers as tf

    out = {"generator": "tests/reference/make_instruct_goldens.py",
           "versions": {"torch": torch.__version__, "transformers": tf.__version__}, "cases": []}
    cache = {}
    for name, prompt, a, c, b in CASES:
        if name not in cache:
            cache[name] = load(name)
        model, tok = cache[name]
        r = run_case(model, tok, name, prompt, a, c, b)
        print(name, b, repr(a), repr(c), "F", r["f_input"], r["f_baseline"], "delta", r["delta"])
        out["cases"].append(r)
    out["captum"] = []
    for name, prompt, a in CAPTUM_CASES:
        if name not in cache:
            cache[name] = load(name)
        r = captum_case(cache[name][0], name, prompt, a)
        print("captum", name, repr(a), "seq_attr", [round(v, 6) for v in r["seq_attr"]])
        out["captum"].append(r)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
