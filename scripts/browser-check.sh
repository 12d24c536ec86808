#!/usr/bin/env bash
# Renders the HTML reports in a real browser (headless Chromium from Debian) and checks the
# screenshots (scripts/browser_check.py). Installs chromium when it is missing (root: apt-get).
# Needs target/release/gradpath (scripts/test.sh builds it first; under $CARGO_TARGET_DIR when set).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "browser check: installing Debian's chromium (apt-get)"
        (apt-get update -qq || true) >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "error: chromium is not installed and this user cannot apt-get install it" >&2
        echo "hint: run 'sudo apt-get install chromium' once, then rerun" >&2
        exit 1
    fi
fi
GP="${CARGO_TARGET_DIR:-target}/release/gradpath"
OUT=target/browser-check
rm -rf "$OUT" && mkdir -p "$OUT"
TEXT="The quick brown fox jumps over the lazy dog."
$GP attattr --model tests/fixtures/models/tiny-bert --text "$TEXT" --target 1 --tree --method gauss-legendre \
    --quiet --html "$OUT/attattr.html"
$GP ig --model tests/fixtures/models/tiny-bert --text "$TEXT" --target 1 --quiet --html "$OUT/ig.html"
$GP attention --model tests/fixtures/models/tiny-bert --text "$TEXT" --quiet --html "$OUT/attention.html"
$GP lig --model tests/fixtures/models/tiny-bert --text "$TEXT" --granularity all --layers all --steps 8 \
    --html "$OUT/lig.html" >/dev/null
# The quadrature lab: one line per rule on the log–log plot (blue gauss-legendre, red riemann-left).
$GP converge --model tests/fixtures/models/tiny-bert --text "$TEXT" --rules gauss-legendre,riemann-left,tanh-sinh \
    --points 4,8,16,32 --quiet --html "$OUT/converge.html"
# Fine-tuned vs base: tiny-bert against tiny-bert-embed with a fresh head, on 12 rule examples
# (3 depths; the tiny models' 64 positions truncate them): the base curve orange, the tuned blue.
$GP data rules --n 12 --depth 2 --seed 1 --out "$OUT/rules.jsonl" >/dev/null
$GP compare --base tests/fixtures/models/tiny-bert-embed --tuned tests/fixtures/models/tiny-bert \
    --data "$OUT/rules.jsonl" --labels false,true,other --steps 8 --conductance-steps 8 --quiet \
    --html "$OUT/compare.html"
# The data-set report: 40 polarity-style sentences through `batch --method attattr` (its mean
# head-importance grid, its completeness deltas: the paper's 20-point left Riemann sum leaves
# deltas above 1 %, so the flagged bars are red) and `batch --method conductance` (the layer
# curve, blue, over its light-blue p10-p90 band).
python3 - "$OUT/batch-in.jsonl" <<'PY'
import json, sys
words = "the film was good bad quick fox never always music dull bright".split()
with open(sys.argv[1], "w") as f:
    for i in range(40):
        n = 4 + (i * 5) % 9
        f.write(json.dumps({"id": f"ex-{i}", "text": " ".join(words[(i * 7 + k * 3) % 12] for k in range(n)) + "."}) + "\n")
PY
for m in attattr conductance; do
    $GP batch --method $m --model tests/fixtures/models/tiny-bert --input "$OUT/batch-in.jsonl" \
        --output "$OUT/batch-$m.jsonl" --overwrite --quiet
    $GP report --input "$OUT/batch-$m.jsonl" --html "$OUT/report-$m.html" --quiet
done
# attattr: the tree's red root node; ig: a positive (green) or negative (red) token mark;
# attention: the blue scale; lig: its layer heatmaps (the page draws them with a script).
# The report's sections for the other batch methods: LIG (completeness per layer), attention
# (mean entropy per head), neuron conductance; drawn, without a colour requirement.
head -12 "$OUT/batch-in.jsonl" > "$OUT/batch-in-12.jsonl"
$GP batch --method lig --model tests/fixtures/models/tiny-bert --input "$OUT/batch-in-12.jsonl" \
    --output "$OUT/batch-lig.jsonl" --overwrite --quiet --granularity layer --layers all --steps 8
$GP batch --method attention --model tests/fixtures/models/tiny-bert --input "$OUT/batch-in-12.jsonl" \
    --output "$OUT/batch-attention.jsonl" --overwrite --quiet
$GP batch --method neuron --model tests/fixtures/models/tiny-bert --input "$OUT/batch-in-12.jsonl" \
    --output "$OUT/batch-neuron.jsonl" --overwrite --quiet --target 1 --boundary blocks.0.hook_resid_post --neuron 1,3 --steps 8
for m in lig attention neuron; do
    $GP report --input "$OUT/batch-$m.jsonl" --html "$OUT/report-$m.html" --quiet
done
python3 scripts/browser_check.py "$OUT" "$OUT/attattr.html:b91c1c" "$OUT/ig.html" "$OUT/attention.html" \
    "$OUT/lig.html" "$OUT/report-attattr.html:b91c1c" "$OUT/report-conductance.html:1d4ed8,bfdbfe" \
    "$OUT/converge.html:1f77b4,d62728" "$OUT/compare.html:ff7f0e,1f77b4" \
    "$OUT/report-lig.html" "$OUT/report-attention.html" "$OUT/report-neuron.html"
