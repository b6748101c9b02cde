"""`pip install .` without extras is the runtime only: onnxruntime, numpy and Pillow; no torch, no fastai.

Builds a fresh virtual environment, so it checks what an application would really get: a bundle trained and
exported here (with torch and fastai) predicts there, and `xdeploy bench` times it there (no pandas, matplotlib
or fastprogress)."""
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
    learn = image_learner(image_dls(data, size=32, bs=6))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    export_bundle(learn, tmp_path/'bundle', formats=('onnx',))
    there = json.loads(run(venv/'bin'/'xdeploy', 'predict', tmp_path/'bundle', data/'valid', '--json', cwd=tmp_path).stdout)
    here = Predictor(tmp_path/'bundle').predict_batch(sorted(str(f) for f in (data/'valid').rglob('*.png')))
    assert [d['label'] for d in there] == [d['label'] for d in here]
    assert max(abs(a - b) for d,e in zip(there, here) for a,b in zip(d['probs'], e['probs'])) <= 1e-6
    # the deployment machine is where people benchmark: `xdeploy bench` prints its table there, progress on stderr
    r = run(venv/'bin'/'xdeploy', 'bench', tmp_path/'bundle', '--min-time', '0.05', '--batch-sizes', '1', '2',
            '--json', tmp_path/'bench.json', cwd=tmp_path)
    head,*lines = r.stdout.splitlines()
    timed = {int(t[4]): float(t[head.split().index('p50_ms')]) for t in map(str.split, lines) if t[:4] == ['onnx', 'fp32', 'cpu', 'model']}
    assert sorted(timed) == [1, 2] and all(v > 0 for v in timed.values()), f"no timed onnx fp32 cpu rows in:\n{r.stdout}"
    assert 'bench 1/1: onnx fp32 cpu' in r.stderr, r.stderr
    saved = json.loads((tmp_path/'bench.json').read_text())
    assert [(x['format'], x['variant'], x['device'], x['batch_size']) for x in saved['rows']] == [('onnx', 'fp32', 'cpu', 1), ('onnx', 'fp32', 'cpu', 2)]
    assert all(x['p50_ms'] > 0 and x['error'] is None for x in saved['rows']), saved['rows']
    # a plot needs matplotlib, and says so
    r = run(venv/'bin'/'xdeploy', 'bench', tmp_path/'bundle', '--budget', '0', '--plot', tmp_path/'bench.png', cwd=tmp_path, check=False)
    assert r.returncode and 'pip install matplotlib' in r.stderr, (r.returncode, r.stderr)
