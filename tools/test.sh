#!/usr/bin/env bash
# The test command of the README. On a fresh Debian machine (root, Python 3.11) it installs everything the
# tests need, Debian and Python packages, then runs every test:
#   1. the sync checks: xdeploy_nb/ and README.md are what the notebooks generate;
#   2. nbdev_test over the notebooks;
#   3. pytest tests/ (CLI, subprocess, runtime-only install).
# Python packages go into a virtual environment ($XDEPLOY_VENV, default .venv), so running it again is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages --------------------------------------------------------------------------------------
apt_packages=(git)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python packages --------------------------------------------------------------------------------------
venv="${XDEPLOY_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
echo "== installing xdeploy_nb[dev] into $venv"
python -m pip install -q --disable-pip-version-check -e ".[dev]"

# --- tests ------------------------------------------------------------------------------------------------
echo "== sync: xdeploy_nb/ and README.md against nbs/"
python tools/check_sync.py
echo "== nbdev_test"
nbdev_test --timing
echo "== pytest tests/"
python -m pytest tests/ -q -p no:cacheprovider
