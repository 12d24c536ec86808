#!/usr/bin/env python3
"""Chat-template goldens for gradpath: transformers' `apply_chat_template` on

  * SmolLM2-135M-Instruct (its template from the GGUF metadata `tokenizer.chat_template`, the
    tokenizer as transformers builds it from the same GGUF file),
  * the tiny decoder fixture `tests/fixtures/models/tiny-llama-chat` (the tiny Llama with a
    Zephyr-style template in its tokenizer_config.json: `raise_exception`, `.strip()`,
    `bos_token`, `eos_token`, loops),
  * `tests/fixtures/chat/multiline.jinja` on the tiny tokenizer (whitespace control with
    trim_blocks / lstrip_blocks, `namespace`, `loop.last`, slicing, `startswith`, `tojson` with and
    without `indent`, `map(attribute=...)`),

for several conversations, with and without the generation prompt: the rendered text
(`tokenize=False`), the ids (`tokenize=True`, i.e. no special tokens added beyond the template's),
or the error a template raises. Written to tests/fixtures/chat_goldens.json; `tests/instruct.rs`
renders the same with gradpath (minijinja) and compares byte for byte.

Run from the repository root with the reference environment (built by
`bash scripts/setup-refenv.sh`):

    .refenv/bin/python tests/reference/make_chat_goldens.py

(transformers reads the SmolLM2 GGUF file through the `gguf` package, pinned in
tests/reference/requirements.txt.)
"""

import json
import os

from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(REPO, "tests", "fixtures", "chat_goldens.json")
SMOL_DIR = os.path.join(REPO, "models", "SmolLM2-135M-Instruct")
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY = os.path.join(REPO, "tests", "fixtures", "models", "tiny-llama-chat")
MULTILINE = os.path.join(REPO, "tests", "fixtures", "chat", "multiline.jinja")

Q_EN = "How many planets are in the Solar System?"
Q_RU = "Сколько планет в Солнечной системе?"

CONVERSATIONS = {
    "user": [{"role": "user", "content": Q_EN}],
    "user_ru": [{"role": "user", "content": Q_RU}],
    "system_user": [
        {"role": "system", "content": "  Answer in one word.\n"},
        {"role": "user", "content": "\n" + Q_EN + "  "},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "  Hello! How can I help?"},
        {"role": "user", "content": "JSON please: \"quotes\", \\ and ünïcödé"},
    ],
    "bad_role": [{"role": "tool", "content": "x"}],
    "bad_order": [
        {"role": "assistant", "content": "I speak first"},
        {"role": "user", "content": "no"},
    ],
}


def cases(name, tok, template_file=None):
    template = open(template_file).read() if template_file else None
    out = []
    for conv_name, conv in CONVERSATIONS.items():
        for gen in (True, False):
            case = {
                "model": name,
                "template_file": os.path.relpath(template_file, REPO) if template_file else None,
                "conversation": conv_name,
                "messages": conv,
                "add_generation_prompt": gen,
            }
            try:
                text = tok.apply_chat_template(
                    conv, chat_template=template, tokenize=False, add_generation_prompt=gen
                )
                ids = tok.apply_chat_template(
                    conv, chat_template=template, tokenize=True, add_generation_prompt=gen
                )
                case.update(text=text, ids=list(map(int, ids)), error=None)
            except Exception as e:  # the template's raise_exception
                case.update(text=None, ids=None, error=str(e))
            out.append(case)
    return out


def main():
    smol = AutoTokenizer.from_pretrained(SMOL_DIR, gguf_file=SMOL_FILE)
    tiny = AutoTokenizer.from_pretrained(TINY)
    goldens = {
        "special_tokens": {
            "models/SmolLM2-135M-Instruct": smol.special_tokens_map,
            "tests/fixtures/models/tiny-llama-chat": tiny.special_tokens_map,
        },
        "cases": cases("models/SmolLM2-135M-Instruct", smol)
        + cases("tests/fixtures/models/tiny-llama-chat", tiny)
        + cases("tests/fixtures/models/tiny-llama-chat", tiny, MULTILINE),
    }
    with open(OUT, "w") as f:
        json.dump(goldens, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(goldens['cases'])} cases")


if __name__ == "__main__":
    main()
