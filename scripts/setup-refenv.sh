#!/usr/bin/env bash
# Build the reference environment (PyTorch, transformers, Captum, the LIG package) that the golden
# scripts in tests/reference/ and the comparison scripts in scripts/ run in, with the versions
# pinned in tests/reference/requirements.txt, into the git-ignored folder .refenv/ of this repo.
# Idempotent: a second run with the same requirements does nothing. Needs Python >= 3.10 and
# PyPI (torch 2.5.1 from PyPI pulls the CUDA runtime wheels, about 3 GB; they are unused on CPU).
#
#   bash scripts/setup-refenv.sh
#   .refenv/bin/python scripts/compare_captum.py ...
set -euo pipefail
cd "$(dirname "$0")/.."
req=tests/reference/requirements.txt
env_dir=.refenv
stamp="$env_dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "setup-refenv: $env_dir is up to date ($req unchanged)"
    exit 0
fi
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    echo "error: $python is older than 3.10" >&2
    echo "hint: set PYTHON=/path/to/python3.10+ and run again" >&2
    exit 1
fi
[[ -x "$env_dir/bin/python" ]] || "$python" -m venv "$env_dir"
"$env_dir/bin/python" -m pip install --quiet --upgrade pip
"$env_dir/bin/python" -m pip install --quiet -r "$req"
"$env_dir/bin/python" - <<'PY'
import torch, transformers, captum, tokenizers, lig  # noqa: F401  (fail here, not in a script)
print("setup-refenv: torch", torch.__version__, "| transformers", transformers.__version__,
      "| captum", captum.__version__, "| tokenizers", tokenizers.__version__)
PY
echo "$want" > "$stamp"
echo "setup-refenv: ready: $env_dir/bin/python"
