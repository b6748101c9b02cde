# Sourced by tools/demo.sh and tools/test.sh: set up, on a fresh Debian machine (root, Python 3.11), the Debian
# packages and the virtual environment ($XDEPLOY_VENV, default .venv) with xdeploy_nb and the extras named in
# $1 ("train" or "dev"), then activate it. A virtual environment, because Debian's own Python refuses
# `pip install` outside one (PEP 668). Running it again is cheap: what is installed stays installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

apt_install() {  # install the Debian packages named that are not installed yet
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
# shellcheck disable=SC2086
apt_install git ${XDEPLOY_APT_PACKAGES:-}

venv="${XDEPLOY_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  # Debian's python3 makes venvs only with python3-venv (its ensurepip is a stub without it)
  python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
echo "== installing xdeploy_nb[$1] into $venv (log: $venv/pip-install.log)"
python -m pip install --disable-pip-version-check -e ".[$1]" > "$venv/pip-install.log" 2>&1 \
  || { tail -n 40 "$venv/pip-install.log"; echo "pip install failed: see $venv/pip-install.log" >&2; exit 1; }
if [ "$1" = dev ]; then
  # The Triton server of tests/test_triton.py and benchmarks/triton_load.py: nvidia-pytriton's wheel bundles tritonserver
  # 2.51 with its python backend. It requires numpy<2, which cannot share the venv with numpy>=2, and only its binaries
  # are used: the wheel goes in with --no-deps under $venv/opt/pytriton, and numpy<2 under $venv/opt/triton-stub, a
  # folder that only the python backend's stub puts on its sys.path (xdeploy_nb.hosts.triton.tritonserver_env).
  if [ ! -x "$venv/opt/pytriton/pytriton/tritonserver/bin/tritonserver" ] || [ ! -d "$venv/opt/triton-stub/numpy" ]; then
    echo "== installing tritonserver (nvidia-pytriton 0.7.0, without its Python dependencies) and numpy<2 for its stub into $venv/opt"
    { python -m pip install --disable-pip-version-check --no-deps --upgrade --target "$venv/opt/pytriton" nvidia-pytriton==0.7.0 \
      && python -m pip install --disable-pip-version-check --upgrade --target "$venv/opt/triton-stub" "numpy>=1.24,<2"; } >> "$venv/pip-install.log" 2>&1 \
      || { tail -n 40 "$venv/pip-install.log"; echo "installing tritonserver failed: see $venv/pip-install.log" >&2; exit 1; }
  fi
  # The stub loads libpython3.X.so.1.0: this Python's own (its LIBDIR), or Debian's libpython3.X package.
  py_ver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  py_libdir=$(python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
  [ -e "$py_libdir/libpython$py_ver.so.1.0" ] || apt_install "libpython$py_ver"
fi
