#!/usr/bin/env bash
# Idempotent machine setup: Debian packages, .venv, the project (editable, dev extras),
# and the offline assets in .cache/lipforge. Safe to run again; does only what is missing.
set -euo pipefail
export NO_ALBUMENTATIONS_UPDATE=1   # img2dataset imports albumentations, which checks PyPI for updates
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  apertium apertium-eng-spa apertium-eng-cat   # rule-based MT for back-translation
  wordnet-base wordnet-sense-index             # WordNet for English-word ratio and EDA
  chromium chromium-driver                     # headless browser tests of the catalog page
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then   # Debian's python3 ships venv separately
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.lipforge-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing lipforge and its pinned dependencies into .venv (a few minutes the first time)"
  .venv/bin/pip install -q -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch, ray, img2dataset, spacy, open_clip" \
    || { echo "setup: the Python install failed (see pip output above)" >&2; exit 1; }
  touch "$stamp"
fi

.venv/bin/python -m pipelines assets
