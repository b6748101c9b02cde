#!/usr/bin/env bash
# The test command of the README. On a fresh Debian machine (root, Python 3.11) it installs everything the
# tests need, Debian and Python packages (tools/env.sh), then runs every test:
#   1. the sync checks: xdeploy_nb/ and README.md are what the notebooks generate;
#   2. nbdev_test over the notebooks, each in a process of its own (tools/test_notebooks.py says why);
#   3. pytest tests/ (CLI, subprocess, runtime-only install, OpenVINO in .venv-openvino (made below), the docs site,
#      the widgets in JupyterLab and the `xdeploy web` site in
#      headless Chromium, the JS module under Node, a real Triton server on 127.0.0.1: tools/env.sh installs it for "dev"
#      apart from the venv's packages).
# Debian's chromium (and a font) for the browser tests: the docs site (tests/test_docs.py) and the widgets in
# JupyterLab (tests/test_widgets_e2e.py).
export XDEPLOY_APT_PACKAGES="${XDEPLOY_APT_PACKAGES:-} chromium fonts-dejavu-core"
# The C++ host (tests/test_cpp.py, `xdeploy cpp --build`): CMake, g++, and the libraries it links: nlohmann/json (the manifest),
# OpenSSL (sha256), libpng and libjpeg-turbo (decoding as Pillow does: PNG pixels equal, JPEG equal with libjpeg-turbo's default
# ISLOW IDCT; stb_image's JPEG decoder differs from Pillow's), and Qt 6 Widgets for the example app (runs offscreen).
XDEPLOY_APT_PACKAGES="$XDEPLOY_APT_PACKAGES cmake g++ nlohmann-json3-dev libssl-dev libpng-dev libjpeg62-turbo-dev qt6-base-dev"
# Node.js and npm for the JS module of `xdeploy web` (xdeploy_nb/js): Debian's, unless a node is installed already.
command -v npm >/dev/null || XDEPLOY_APT_PACKAGES="$XDEPLOY_APT_PACKAGES nodejs npm"
source "$(dirname "$0")/env.sh" dev
# The JS module's npm packages, as package-lock.json pins them: onnxruntime-web (the sites' runtime), onnxruntime-node
# (its Node tests) and sharp (image files under Node: its libvips comes as the npm packages @img/sharp-*, nothing else is
# downloaded). ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install script would download a CUDA provider.
# `node --test` runs from tests/test_web.py::test_node, on bundles it exports, against the Python Predictor's answers;
# tests/test_fuzz.py runs its corpus through the module under Node too (xdeploy_nb/js/fuzz/host.mjs).
if [ ! xdeploy_nb/js/node_modules/.package-lock.json -nt xdeploy_nb/js/package-lock.json ]; then
  echo "== npm ci (xdeploy_nb/js)"
  (cd xdeploy_nb/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
# A second execution provider, for real (tests/test_openvino.py): the OpenVINO build of onnxruntime, `onnxruntime-openvino`,
# whose OpenVINOExecutionProvider runs on any x86-64 CPU (AMD's too), in a venv of its own, .venv-openvino. It must not share
# a venv with onnxruntime: both write the same onnxruntime/ folder, so one silently replaces the other (pip still lists both)
# and uninstalling either breaks the module. xdeploy_nb goes in with --no-deps (its requirements would bring onnxruntime back).
# Made once, like .venv; made again when the pins change (the marker file holds them). Linux x86-64 only: no other wheels.
OPENVINO_PINS="onnxruntime-openvino==1.24.1 numpy>=1.24 Pillow>=10"
if [ "$(uname -sm)" = "Linux x86_64" ] && [ "$(cat .venv-openvino/xdeploy-pins 2>/dev/null)" != "$OPENVINO_PINS" ]; then
  echo "== installing $OPENVINO_PINS and xdeploy_nb (--no-deps) into .venv-openvino (log: .venv-openvino/pip-install.log)"
  rm -rf .venv-openvino && python3 -m venv .venv-openvino
  # shellcheck disable=SC2086
  { .venv-openvino/bin/python -m pip install --disable-pip-version-check $OPENVINO_PINS \
    && .venv-openvino/bin/python -m pip install --disable-pip-version-check --no-deps -e .; } > .venv-openvino/pip-install.log 2>&1 \
    || { tail -n 40 .venv-openvino/pip-install.log; echo "installing .venv-openvino failed: see .venv-openvino/pip-install.log" >&2; exit 1; }
  echo "$OPENVINO_PINS" > .venv-openvino/xdeploy-pins
fi
echo "== sync: xdeploy_nb/ and README.md against nbs/"
python tools/check_sync.py
echo "== nbdev_test"
python tools/test_notebooks.py
echo "== pytest tests/"
python -m pytest tests/ -q -p no:cacheprovider --durations=30
