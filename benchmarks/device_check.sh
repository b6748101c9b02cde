#!/usr/bin/env bash
# The device check on a machine with an NVIDIA GPU (the device tool's `run`), from any folder:
#   bash benchmarks/device_check.sh BUNDLE [more options of device_check.py]
# runs benchmarks/device_check.py --install with the system's python3 (PYTHON=... to choose another), this checkout's
# xdeploy_nb first on the path and output unbuffered; the JSON goes to $OUT/device_check.json where OUT is set.
# The usage notes are the docstring of benchmarks/device_check.py.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-$(command -v python3 || command -v python)}"
GPU="$(command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | head -1)"
echo "device_check.sh: $("$PY" --version 2>&1) at $PY; ${GPU:-no nvidia-smi}"
exec "$PY" benchmarks/device_check.py --install "$@"
