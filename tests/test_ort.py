"""The ORT mobile format (`xdeploy_nb.formats.ort`): a tiny trained image Learner exported with 'onnx' and 'ort' is verified, its
`.ort` model gives the `.onnx` model's outputs within 1e-5, `Predictor(format='ort')` predicts what the ONNX one does, and the
benchmark runs it. The runtime registers the format without torch."""
import json, sys
import numpy as np, pytest
from xdeploy_nb.core import FORMATS, read_manifest
from xdeploy_nb.export import export_bundle
from xdeploy_nb.verify import verify_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.bench import bench
from xdeploy_nb.formats.ort import reduced_build_config, mobile_usability, fix_batch
from conftest import run, import_blocker, tiny_image_learner

@pytest.fixture(scope='module')
def learn(tmp_path_factory): return tiny_image_learner(tmp_path_factory.mktemp('ort'))

@pytest.fixture(scope='module')
def bundle(learn, tmp_path_factory):
    path = tmp_path_factory.mktemp('ort_bundle')/'b'
    b = export_bundle(learn, path, formats=('onnx', 'ort'))
    assert b.report.passed, b.report
    return path

def test_registered():
    f = FORMATS['ort']
    assert f.file == 'model.ort' and not f.runs_code and not f.needs_torch and f.runner and f.export

def test_export_verify_predict(learn, bundle):
    m = read_manifest(bundle)
    assert [a['file'] for a in m['artifacts']] == ['model.onnx', 'model.ort']
    a = next(a for a in m['artifacts'] if a['format'] == 'ort')
    assert a['verification']['passed'] and set(a['eager_max_abs_diff']) == {'1', '3', '8'}
    assert max(a['eager_max_abs_diff'].values()) <= 1e-4 and a['exporter'].startswith('onnxruntime.tools.convert_onnx_models_to_ort')
    assert (bundle/'model.ort').read_bytes()[4:8] == b'ORTM'  # the FlatBuffers file identifier of ORT-format models
    assert verify_bundle(bundle, learn).passed
    items = learn.dls.valid_ds.items
    p_onnx,p_ort = Predictor(bundle, device='cpu'),Predictor(bundle, format='ort')
    assert p_ort.device == 'cpu' and p_ort.describe()['artifact']['format'] == 'ort'
    x = p_onnx.prepare(items)
    assert np.abs(p_ort.run(x) - p_onnx.run(x)).max() <= 1e-5
    assert [d['label'] for d in p_ort.predict_batch(items)] == [d['label'] for d in p_onnx.predict_batch(items)]
    assert p_ort.check() <= 1e-4

def test_bench_rows(bundle):
    r = bench(bundle, formats=['ort'], devices=['cpu'], batch_sizes=(1,), min_time=0.05, progress=False)
    rows = [row for row in r.rows if row['format'] == 'ort']
    assert len(rows) == 1 and rows[0]['error'] is None and rows[0]['p50_ms'] > 0, r.rows

def test_reduced_build_config(bundle):
    config = reduced_build_config(bundle)
    assert '# - model.ort' in config and 'ai.onnx;' in config and '/tmp' not in config

def test_mobile_usability_fixed_batch(bundle, tmp_path):
    dynamic,fixed = mobile_usability(bundle/'model.onnx'),mobile_usability(fix_batch(bundle/'model.onnx', tmp_path/'b1.onnx'))
    assert set(dynamic) == {'NNAPI', 'CoreML NeuralNetwork', 'CoreML MLProgram'}
    assert fixed['NNAPI']['supported'] > dynamic['NNAPI']['supported'] and fixed['NNAPI']['partitions'] == 1

def test_predicts_without_torch(bundle):
    "The runtime knows the format where torch, fastai and pandas cannot be imported."
    code = f'''
import json, sys
{import_blocker('torch', 'torchvision', 'fastai', 'fastcore', 'pandas', 'onnx')}from xdeploy_nb.runtime import Predictor
import numpy as np
p = Predictor({str(bundle)!r}, format='ort')
print(json.dumps(dict(diff=p.check(), loaded=sorted(m for m in sys.modules if m.partition('.')[0] in ('torch', 'fastai', 'pandas', 'onnx')))))
'''
    out = json.loads(run(sys.executable, '-c', code, timeout=120).stdout)
    assert out['loaded'] == [] and out['diff'] <= 1e-4
