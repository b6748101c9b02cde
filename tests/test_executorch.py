"""The ExecuTorch format (`xdeploy_nb.formats.executorch`): a tiny trained image Learner exported with 'onnx' and 'executorch'
is verified (the `.pte` within 1e-4 of the Learner), `Predictor(format='executorch')` agrees with the ONNX model (also past
the program's planned batch), a changed `.pte` is refused by its hash, `bench` times it on the CPU only, and where
executorch (or torch) cannot be imported the runtime still works and the format is refused naming the extra to install."""
import json, shutil, sys
import numpy as np, pytest
from xdeploy_nb.core import FORMATS, XDeployError, read_manifest
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.bench import bench, _bench_grid
from conftest import run, import_blocker, tiny_image_learner

pytestmark = pytest.mark.slow(seconds=15)  # about how long this module takes (measured on an idle 2-core machine)

@pytest.fixture(scope='module')
def learn(tmp_path_factory): return tiny_image_learner(tmp_path_factory.mktemp('et'))

@pytest.fixture(scope='module')
def bundle(learn, tmp_path_factory):
    b = export_bundle(learn, tmp_path_factory.mktemp('et_bundle')/'b', formats=('onnx', 'executorch'))
    assert b.report.passed, b.report
    return b

def test_registered():
    f = FORMATS['executorch']
    assert f.file == 'model.pte' and not f.runs_code and f.needs_torch and f.device_kind == 'cpu' and f.runner and f.export

def test_export_verify_predict(learn, bundle):
    m = read_manifest(bundle.path)
    assert [a['file'] for a in m['artifacts']] == ['model.onnx', 'model.pte']
    a = next(a for a in m['artifacts'] if a['format'] == 'executorch')
    assert a['verification']['passed'] and a['verification']['max_abs_diff'] <= 1e-4
    assert set(a['eager_max_abs_diff']) == {'1', '3', '8'} and max(a['eager_max_abs_diff'].values()) <= 1e-4
    assert a['exporter'].startswith('executorch 1.5') and (bundle.path/'model.pte').read_bytes()[4:6] == b'ET'  # .pte file identifier
    assert 'executorch' in [r['format'] for r in bundle.rows()]  # the bundle summary lists it
    items = learn.dls.valid_ds.items
    p_onnx,p_pte = Predictor(bundle.path, device='cpu'),Predictor(bundle.path, format='executorch')
    assert p_pte.device == 'cpu' and p_pte.describe()['artifact']['format'] == 'executorch' and p_pte.check() <= 1e-4
    x = p_onnx.prepare(items)
    x70 = {k: np.concatenate([v]*(70//len(v) + 1))[:70] for k,v in x.items()}  # past the program's planned batch (64)
    assert np.abs(p_pte.run(x70) - p_onnx.run(x70)).max() <= 1e-4
    assert [d['label'] for d in p_pte.predict_batch(items)] == [d['label'] for d in p_onnx.predict_batch(items)]
    with pytest.raises(XDeployError, match='CPU only'): Predictor(bundle.path, format='executorch', device='cuda:0')

def test_prepare_inputs_straight_into_executorch(learn, bundle):
    "An app following the docs: `prepare_inputs`' arrays (C-contiguous NCHW) fed to ExecuTorch's runtime as they are agree with model.onnx."
    import torch
    from executorch.runtime import Runtime
    from xdeploy_nb.runtime import prepare_inputs
    p = Predictor(bundle.path, device='cpu')
    x = prepare_inputs(p.manifest, learn.dls.valid_ds.items[:4])['image']
    assert x.flags['C_CONTIGUOUS'], x.strides  # ExecuTorch's runtime reads a tensor's memory in NCHW order, whatever its strides
    got = Runtime.get().load_program(bundle.path/'model.pte').load_method('forward').execute([torch.from_numpy(x)])[0].numpy()
    d = float(np.abs(got - p.run({'image': x})).max())
    print(f"ExecuTorch runtime on prepare_inputs vs model.onnx: max diff {d:.2g}")
    assert d <= 1e-4, d

def test_operator_outside_core_aten_is_named(learn, tmp_path):
    "A pool to 2x2 (not global) stays aten.adaptive_max_pool2d, which ExecuTorch cannot lower: the error names the format, the operator and what holds it."
    from torch import nn
    from fastai.vision.all import Learner
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(16, learn.dls.c))
    with pytest.raises(XDeployError) as e: export_bundle(Learner(learn.dls, model), tmp_path/'b', formats=('onnx', 'ort', 'executorch'))
    msg = str(e.value)
    assert 'executorch format cannot hold this model' in msg and 'aten.adaptive_max_pool2d' in msg and 'no bundle was written' in msg, msg
    assert "Export without 'executorch'" in e.value.fix and 'onnx' in e.value.fix and not (tmp_path/'b').exists()

def test_tampered_pte_refused(bundle, tmp_path):
    bad = tmp_path/'bad'
    shutil.copytree(bundle.path, bad)
    data = bytearray((bad/'model.pte').read_bytes()); data[len(data)//2] ^= 1; (bad/'model.pte').write_bytes(bytes(data))
    with pytest.raises(XDeployError, match='sha256'): Predictor(bad, format='executorch')

def test_bench_cpu_only(bundle):
    assert [(f, d) for f,d,v in _bench_grid(bundle.manifest, 'all', ['executorch'], 'all')] == [('executorch', 'cpu')]
    r = bench(bundle.path, formats=['executorch'], devices=['cpu'], batch_sizes=(1,), min_time=0.05, progress=False)
    rows = [row for row in r.rows if row['format'] == 'executorch']
    assert len(rows) == 1 and rows[0]['error'] is None and rows[0]['p50_ms'] > 0, r.rows

@pytest.mark.parametrize('blocked', [('executorch',), ('torch', 'torchvision', 'torchao', 'fastai', 'pandas', 'executorch')])
def test_without_executorch(bundle, blocked):
    "Where executorch (or torch with it) cannot be imported: the runtime imports, predicts with ONNX, and refuses the .pte naming the extra."
    code = f'''
import json, sys
{import_blocker(*blocked)}from xdeploy_nb.core import XDeployError
from xdeploy_nb.runtime import Predictor
out = dict(onnx=Predictor({str(bundle.path)!r}).check())
try: Predictor({str(bundle.path)!r}, format='executorch')
except XDeployError as e: out['error'] = str(e)
print(json.dumps(out))
'''
    out = json.loads(run(sys.executable, '-c', code, timeout=120).stdout.strip().splitlines()[-1])
    assert out['onnx'] <= 1e-4 and 'pip install "xdeploy_nb[executorch]"' in out['error'] and 'blocked in this test' in out['error']
