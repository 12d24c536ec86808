#!/usr/bin/env bash
# Rule reasoning by a two-stage curriculum (docs/FINETUNE.md, "Rule reasoning"):
#   stage 1: depth-0 lookups without distractor facts (8,000 examples), 2 epochs at lr 3e-5;
#   stage 2: from stage 1's model, the task itself (data/rules/train.jsonl, depth <= 2, 12,000
#            examples), 2 epochs at lr 3e-5; then the held-out test split, with accuracy per depth.
# MiniLM trained on the task directly stays at chance (the tables in docs/FINETUNE.md). Measured
# result of this script (docs/FINETUNE.md, "Rule reasoning"): stage 1 reaches 99.25 % dev, but
# stage 2 only 60.50 % dev and 60.67 % test: it does NOT reach the issue's 90 %; it is kept as the
# reproducible record of that run and a starting point. Needs `cargo build --release`,
# scripts/fetch-models.sh and scripts/fetch-data.sh first.
# Usage: bash scripts/train-rules-curriculum.sh [OUT_DIR] [THREADS]   (default runs/curriculum, 2)
# 17 min 46 s on 2 cores of an Intel Xeon (AVX-512) with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/curriculum}
threads=${2:-2}
gp=${GP:-target/release/gradpath}
for need in "$gp" models/all-MiniLM-L6-v2/config.json data/rules/train.jsonl; do
    if [ ! -e "$need" ]; then
        echo "error: $need is missing" >&2
        echo "hint: run cargo build --release, bash scripts/fetch-models.sh and bash scripts/fetch-data.sh" >&2
        exit 2
    fi
done
mkdir -p "$out"
"$gp" data rules --n 8000 --depth 0 --seed 11 --no-distractors --out "$out/stage1-train.jsonl"
"$gp" data rules --n 400 --depth 0 --seed 12 --no-distractors --out "$out/stage1-dev.jsonl"
"$gp" train --model models/all-MiniLM-L6-v2 --labels false,true \
    --train "$out/stage1-train.jsonl" --dev "$out/stage1-dev.jsonl" --out "$out/stage1" --overwrite \
    --epochs 2 --lr 3e-5 --batch 16 --warmup 0.1 --max-len 32 --seed 0 --threads "$threads" -q
"$gp" train --model "$out/stage1" \
    --train data/rules/train.jsonl --dev data/rules/dev.jsonl --out "$out/stage2" --overwrite \
    --epochs 2 --lr 3e-5 --batch 16 --warmup 0.1 --max-len 128 --seed 0 --threads "$threads" -q
"$gp" eval --model "$out/stage2" --data data/rules/test.jsonl --max-len 128 --threads "$threads" \
    --json "$out/test.json"
