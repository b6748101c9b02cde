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
    # a bundle made here, with torch and fastai, predicts there, without them
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb.runtime import Predictor
    data = make_image_folder(tmp_path/'shapes', n_train=10, n_valid=3, size=40)
    export_bundle(image_learner(image_dls(data, size=32)), tmp_path/'bundle', formats=('onnx',))
    there = json.loads(run(venv/'bin'/'xdeploy', 'predict', tmp_path/'bundle', data/'valid', '--json', cwd=tmp_path).stdout)
    here = Predictor(tmp_path/'bundle').predict_batch(sorted(str(f) for f in (data/'valid').rglob('*.png')))
    assert [d['label'] for d in there] == [d['label'] for d in here]
    assert max(abs(a - b) for d,e in zip(there, here) for a,b in zip(d['probs'], e['probs'])) <= 1e-6
