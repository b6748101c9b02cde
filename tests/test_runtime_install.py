"""`pip install .` without extras is the runtime only: onnxruntime, numpy and Pillow; no torch, no fastai.

Builds a fresh virtual environment, so it checks what an application would really get."""
import json, sys
from conftest import run

def test_plain_install_has_no_torch(root, tmp_path):
    venv = tmp_path/'venv'
    run(sys.executable, '-m', 'venv', venv)
    py = venv/'bin'/'python'
    run(py, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', str(root), timeout=900)
    probe = ("import importlib.util as u, json, xdeploy_nb, onnxruntime, numpy, PIL;"
             "print(json.dumps({m: u.find_spec(m) is not None for m in ['torch', 'fastai', 'torchvision', 'pandas']}))")
    found = json.loads(run(py, '-c', probe, cwd=tmp_path).stdout)
    assert not any(found.values()), f"the runtime-only install pulled in {[m for m,v in found.items() if v]}"
    assert run(venv/'bin'/'xdeploy', 'version', cwd=tmp_path).stdout.strip()
    assert 'demo' in run(venv/'bin'/'xdeploy', '--help', cwd=tmp_path).stdout
