#!/usr/bin/env bash
# The test command of the README. On a fresh Debian machine (root, Python 3.11) it installs everything the
# tests need, Debian and Python packages (tools/env.sh), then runs every test:
#   1. the sync checks: xdeploy_nb/ and README.md are what the notebooks generate;
#   2. nbdev_test over the notebooks, each in a process of its own (tools/test_notebooks.py says why);
#   3. pytest tests/ (CLI, subprocess, runtime-only install, the docs site and the widgets in JupyterLab in headless Chromium,
#      a real Triton server on 127.0.0.1: tools/env.sh installs it for "dev" apart from the venv's packages).
# Debian's chromium (and a font) for the browser tests: the docs site (tests/test_docs.py) and the widgets in
# JupyterLab (tests/test_widgets_e2e.py).
export XDEPLOY_APT_PACKAGES="${XDEPLOY_APT_PACKAGES:-} chromium fonts-dejavu-core"
source "$(dirname "$0")/env.sh" dev
echo "== sync: xdeploy_nb/ and README.md against nbs/"
python tools/check_sync.py
echo "== nbdev_test"
python tools/test_notebooks.py
echo "== pytest tests/"
python -m pytest tests/ -q -p no:cacheprovider
