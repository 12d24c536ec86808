"""Writes the GGUF fixtures and goldens read by tests/gguf.rs.

Run from the repository root with an environment holding numpy, torch, gguf (gguf-py) and
transformers (generated with gguf-py 0.19.0, numpy 2.4.6, torch 2.5.1, transformers 4.57.6):

    python tests/reference/make_gguf_goldens.py

Outputs (all under tests/fixtures/gguf/):
  types.gguf, types_goldens.json
      one tensor of every type gradpath dequantises (F32, F16, BF16, Q8_0, Q4_0, Q4_1), quantised
      with gguf-py's `gguf.quants.quantize`, plus metadata of every GGUF value type; the goldens are
      gguf-py's own dequantisation (`gguf.quants.dequantize`) as f32 bit patterns.
  tiny_llama.gguf, tiny_llama_goldens.json
      a 2-layer llama with random weights (q/k permuted the way llama.cpp's converter does) and a
      small byte-level BPE vocabulary; goldens are what transformers' GGUF loader makes of it:
      config, a checksum of every state_dict tensor, q/k/v of layer 0 in full, token ids.
  smollm2_goldens.json (only if models/SmolLM2-135M-Instruct/ is present; see scripts/fetch-models.sh)
      transformers' config, state_dict checksums and slices, and token ids for the real file.

The checksum of a tensor is sum_i bits(x_i) * (i * 0x9E3779B97F4A7C15 + 1) mod 2^64 over its
row-major f32 values (bits = the IEEE-754 pattern as u32): exact, order- and value-sensitive.
"""

import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")
SMOL_DIR = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct")
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def checksum(a):
    bits = np.ascontiguousarray(a, dtype=np.float32).ravel().view(np.uint32).astype(np.uint64)
    idx = np.arange(bits.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        w = idx * np.uint64(0x9E3779B97F4A7C15) + np.uint64(1)
        return "%016x" % int((bits * w).sum(dtype=np.uint64))


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).ravel().view(np.uint32).tolist()


def quantize(a, qtype):
    """(data, raw_dtype) for GGUFWriter.add_tensor, and gguf-py's dequantisation of it."""
    if qtype == Q.F32:
        data = a.astype(np.float32)
        return data, None, data.copy()
    if qtype == Q.F16:
        data = a.astype(np.float16)
        return data, None, data.astype(np.float32)
    data = gguf.quants.quantize(a.astype(np.float32), qtype)
    deq = gguf.quants.dequantize(data, qtype)
    return data, qtype, deq.reshape(a.shape).astype(np.float32)


def add(w, name, q):
    data, raw, _ = q
    w.add_tensor(name, data, raw_dtype=raw)


def make_types(rng):
    path = os.path.join(OUT, "types.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_custom_alignment(64)
    meta = {
        "test.u8": (200, gguf.GGUFValueType.UINT8),
        "test.i8": (-100, gguf.GGUFValueType.INT8),
        "test.u16": (60000, gguf.GGUFValueType.UINT16),
        "test.i16": (-30000, gguf.GGUFValueType.INT16),
        "test.u32": (4000000000, gguf.GGUFValueType.UINT32),
        "test.i32": (-2000000000, gguf.GGUFValueType.INT32),
        "test.u64": (18000000000000000000, gguf.GGUFValueType.UINT64),
        "test.i64": (-9000000000000000000, gguf.GGUFValueType.INT64),
        "test.f32": (0.1, gguf.GGUFValueType.FLOAT32),
        "test.f64": (0.1, gguf.GGUFValueType.FLOAT64),
        "test.bool": (True, gguf.GGUFValueType.BOOL),
        "test.string": ("héllo wörld", gguf.GGUFValueType.STRING),
    }
    for k, (v, t) in meta.items():
        w.add_key_value(k, v, t)
    w.add_array("test.arr_i32", [1, -2, 3])
    w.add_array("test.arr_str", ["a b", "", "ü"])
    w.add_array("test.arr_f32", [0.5, -1.25])

    specs = [
        ("t.f32", (3, 5), Q.F32),
        ("t.f16", (4, 8), Q.F16),
        ("t.bf16", (2, 16), Q.BF16),
        ("t.q8_0", (3, 64), Q.Q8_0),
        ("t.q4_0", (2, 96), Q.Q4_0),
        ("t.q4_1", (4, 64), Q.Q4_1),
        ("t.q4_1_3d", (2, 3, 32), Q.Q4_1),
        ("t.q8_0_1d", (64,), Q.Q8_0),
    ]
    goldens = []
    for name, shape, qtype in specs:
        a = (rng.standard_normal(shape) * rng.uniform(0.01, 3.0)).astype(np.float32)
        if qtype == Q.Q4_1:
            a += np.float32(rng.uniform(-1, 1))  # a non-zero block minimum
        data, raw, deq = quantize(a, qtype)
        w.add_tensor(name, data, raw_dtype=raw)
        goldens.append({"name": name, "type": qtype.name, "shape": list(shape), "bits": bits(deq)})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    expected_meta = {k: v for k, (v, _) in meta.items()}
    expected_meta["test.f32"] = float(np.float32(0.1))
    expected_meta["test.arr_i32"] = [1, -2, 3]
    expected_meta["test.arr_str"] = ["a b", "", "ü"]
    expected_meta["test.arr_f32"] = [0.5, -1.25]
    expected_meta["general.alignment"] = 64
    expected_meta["general.architecture"] = "llama"
    with open(os.path.join(OUT, "types_goldens.json"), "w") as f:
        json.dump({"metadata": expected_meta, "tensors": goldens}, f)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def permute(w, n_head):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


TINY_TEXTS = ["the cat sat", " hello there!", "in the<|im_end|>", "naïve 🤗\n\n x"]


def make_tiny_llama(rng):
    hidden, inter, layers, heads, kv_heads = 64, 96, 2, 4, 2
    head_dim = hidden // heads
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    byte_chars = bytes_to_unicode()
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "c"), ("a", "t"), ("Ġc", "at"), ("Ġ", "s"), ("Ġs", "at"), ("Ġ", "h"), ("e", "l"), ("el", "l"), ("ell", "o")]
    tokens = specials + byte_chars + ["".join(m) for m in merges]
    types = [3] * len(specials) + [1] * (len(tokens) - len(specials))
    vocab = len(tokens)

    path = os.path.join(OUT, "tiny_llama.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("tiny-llama")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([" ".join(m) for m in merges])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)

    def r(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    add(w, "token_embd.weight", quantize(r(vocab, hidden), Q.Q8_0))
    w.add_tensor("output_norm.weight", (1 + r(hidden)).astype(np.float32))
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", (1 + r(hidden)).astype(np.float32))
        w.add_tensor(p + "ffn_norm.weight", (1 + r(hidden)).astype(np.float32))
        add(w, p + "attn_q.weight", quantize(permute(r(hidden, hidden), heads), Q.Q4_1))
        add(w, p + "attn_k.weight", quantize(permute(r(kv_heads * head_dim, hidden), kv_heads), Q.Q8_0))
        add(w, p + "attn_v.weight", quantize(r(kv_heads * head_dim, hidden), Q.Q4_0))
        add(w, p + "attn_output.weight", quantize(r(hidden, hidden), Q.F16))
        add(w, p + "ffn_gate.weight", quantize(r(inter, hidden), Q.BF16))
        w.add_tensor(p + "ffn_up.weight", r(inter, hidden))
        add(w, p + "ffn_down.weight", quantize(r(hidden, inter), Q.Q4_1))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    goldens = transformers_goldens(OUT, "tiny_llama.gguf", TINY_TEXTS, full=["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight"])
    with open(os.path.join(OUT, "tiny_llama_goldens.json"), "w") as f:
        json.dump(goldens, f)


CONFIG_KEYS = ["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "max_position_embeddings", "vocab_size", "tie_word_embeddings", "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id", "rope_scaling"]


def transformers_goldens(folder, name, texts, full=(), rows=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    cfg = model.config.to_dict()
    out = {
        "transformers": __import__("transformers").__version__,
        "config": {k: cfg.get(k) for k in CONFIG_KEYS},
        "texts": [{"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]} for t in texts],
        "checksums": {},
        "full": {},
        "rows": [],
    }
    sd = model.state_dict()
    for k, v in sd.items():
        if k == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue  # tied: the same tensor as model.embed_tokens.weight
        a = v.detach().cpu().numpy()
        out["checksums"][k] = {"shape": list(a.shape), "sum": checksum(a)}
    for k in full:
        out["full"][k] = bits(sd[k].numpy())
    for k, rs, cs in rows or []:
        a = sd[k].numpy()
        for r in rs:
            r = r % a.shape[0]
            cs_abs = [c % a.shape[1] for c in cs]
            out["rows"].append({"name": k, "row": r, "cols": cs_abs, "bits": bits(a[r, cs_abs])})
    return out


SMOL_TEXTS = [
    "The capital of France is",
    " leading space and  two  spaces",
    "Hello, world! How's it going? (fine) [ok] {yes} -- 'quoted' \"double\"",
    "naïve café — résumé; 北京欢迎你; Ελληνικά; Привет",
    "emoji: 🤗🚀👍🏽 and ❤️",
    "numbers 1234567890 3.14159 -42 1e-5 2024-11-21",
    "line one\nline two\n\n\ttabbed\r\nend   ",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "code: fn main() { println!(\"{}\", x[0]); } // done",
    "UPPER lower MiXeD CamelCase snake_case kebab-case",
    "    ",
    "a<repo_name>b<|endoftext|>",
]


def make_smollm2():
    if not os.path.exists(os.path.join(SMOL_DIR, SMOL_FILE)):
        print(f"{SMOL_DIR} missing: run scripts/fetch-models.sh first; skipping smollm2_goldens.json")
        return
    cols = list(range(0, 40)) + list(range(-40, 0))
    rows = []
    for layer in (0, 29):
        for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            rows.append((f"model.layers.{layer}.{m}.weight", [0, 1, 31, 32, 33, 64, -1], cols))
    rows.append(("model.embed_tokens.weight", [0, 1, 2, 504, 49151], cols))
    g = transformers_goldens(SMOL_DIR, SMOL_FILE, SMOL_TEXTS, full=["model.layers.0.input_layernorm.weight", "model.norm.weight"], rows=rows)
    with open(os.path.join(OUT, "smollm2_goldens.json"), "w") as f:
        json.dump(g, f)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261121)
    make_types(rng)
    make_tiny_llama(rng)
    make_smollm2()
    print("wrote", sorted(os.listdir(OUT)))
