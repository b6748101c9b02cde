"""Entry-point plug-ins: a package that declares an entry point in the group `xdeploy_nb.plugins` adds a kind and a
format with no file of xdeploy_nb touched. The plug-in is written here into a temporary folder as a package of its own
(pyproject.toml and a module), installed with pip into a folder of its own (`--target`), and a fresh Python process with
that folder on its path imports xdeploy_nb, finds the plug-in's entries registered, and predicts with a bundle of the
plug-in's kind and format."""
import json, sys
from pathlib import Path
import numpy as np
import pytest

from conftest import run, ROOT

PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "xdeploy-toy-plugin"
version = "0.1"

[tool.setuptools]
packages = ["xdeploy_toy"]

[project.entry-points."xdeploy_nb.plugins"]
toy = "xdeploy_toy"
'''

# A kind whose items are vectors of numbers, and a format that is an ONNX graph under another name, run on the CPU.
PLUGIN = '''import numpy as np
import onnxruntime as ort
from xdeploy_nb.core import FORMATS, KINDS, Format, Kind, ManifestError, Runner

def _check(m):
    if [i['name'] for i in m['inputs']] != ['x']:
        raise ManifestError("a vector bundle has one input, x.", "Export it with the vector kind.")

def _prepare(m, items, max_pixels=None, first=0): return {'x': np.asarray(items, np.float32).reshape(len(items), -1)}

def _runner(path, m, a, data, device='auto', threads=None):
    sess = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
    return Runner(lambda feeds: sess.run(None, feeds)[0], 'cpu', 'the toy format runs on the CPU', ['CPUExecutionProvider'], 1)

KINDS['vector'] = Kind(check=_check, prepare=_prepare, as_list=list, one=lambda item: item,
                       names=lambda items: [f"vector {i}" for i in range(len(items))])
FORMATS['toyonnx'] = Format('model.toyonnx', runner=_runner, device_kind='cpu')
'''

USE = '''import json, sys
import xdeploy_nb
from xdeploy_nb.core import FORMATS, KINDS
from xdeploy_nb.runtime import Predictor
p = Predictor(sys.argv[1], format='toyonnx')
print(json.dumps(dict(plugins=xdeploy_nb.PLUGINS, kinds=list(KINDS), formats=list(FORMATS), format=p.artifact['format'],
                      preds=[d['label'] for d in p.predict_batch([[1., 0., 0.], [0., 0., 5.]])])))
'''

def _bundle(d:Path)->Path:
    "A bundle of the plug-in's kind and format: softmax(x @ W) on 3 numbers, labels a, b, c; its manifest as JSON."
    import onnx
    from onnx import TensorProto, helper
    from xdeploy_nb.core import SCHEMA_NAME, SCHEMA_VERSION, file_sha256
    d.mkdir()
    w = helper.make_tensor('W', TensorProto.FLOAT, [3, 3], np.eye(3, dtype=np.float32)[::-1].flatten().tolist())
    g = helper.make_graph([helper.make_node('MatMul', ['x', 'W'], ['z']), helper.make_node('Softmax', ['z'], ['output'], axis=1)],
                          'toy', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 3])],
                          [helper.make_tensor_value_info('output', TensorProto.FLOAT, ['batch', 3])], [w])
    f = d/'model.toyonnx'
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 18)], ir_version=9), f)
    m = dict(schema=SCHEMA_NAME, schema_version=SCHEMA_VERSION, task='single_label',
             inputs=[dict(name='x', dtype='float32', shape=['batch', 3])], preprocessing=dict(kind='vector', steps=[], spec=dict(size=3)),
             outputs=[dict(name='output', dtype='float32', shape=['batch', 3], activation='softmax')], labels=['a', 'b', 'c'],
             artifacts=[dict(format='toyonnx', file=f.name, sha256=file_sha256(f), size=f.stat().st_size, precision='fp32')],
             provenance=dict(created='2026-12-07T12:00:00+00:00', versions={}))
    (d/'manifest.json').write_text(json.dumps(m, indent=1))
    return d

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The plug-in package, pip-installed (no dependencies, no index) into a folder of its own."
    tmp = tmp_path_factory.mktemp('plugin')
    (src := tmp/'xdeploy-toy-plugin').mkdir()
    (src/'pyproject.toml').write_text(PYPROJECT)
    (src/'xdeploy_toy').mkdir()
    (src/'xdeploy_toy'/'__init__.py').write_text(PLUGIN)
    run(sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index', '--no-build-isolation',
        '--target', tmp/'site', src, timeout=300)
    assert (tmp/'site'/'xdeploy_toy').is_dir()
    return tmp/'site'

def test_plugin_kind_and_format_registered_and_used(site, tmp_path):
    b = _bundle(tmp_path/'bundle')
    r = run(sys.executable, '-c', USE, b, env=dict(PYTHONPATH=f"{ROOT}:{site}"))
    got = json.loads(r.stdout.splitlines()[-1])
    assert got['plugins'] == ['toy']
    assert got['kinds'][-1] == 'vector' and got['formats'][-1] == 'toyonnx'
    assert got['format'] == 'toyonnx' and got['preds'] == ['c', 'a']  # W reverses the vector: 1 on x0 is label c
    # the package's own files are untouched: the plug-in lives in its own folder only
    assert not any((ROOT/'xdeploy_nb').rglob('*toy*'))

def test_without_the_plugin_the_bundle_is_refused(tmp_path):
    "The same bundle, read without the plug-in installed: refused with what is registered (the test can fail)."
    b = _bundle(tmp_path/'bundle')
    r = run(sys.executable, '-c', USE, b, env=dict(PYTHONPATH=str(ROOT)), check=False)
    assert r.returncode != 0 and 'vector' in r.stderr

def test_a_broken_plugin_is_left_out_with_a_warning(tmp_path):
    "A plug-in whose module fails to import is named in a warning; the package and its built-ins still load."
    (site := tmp_path/'site').mkdir()
    (site/'broken_plugin.py').write_text("raise RuntimeError('broken on purpose')\n")
    (dist := site/'broken_plugin-0.1.dist-info').mkdir()
    (dist/'METADATA').write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist/'entry_points.txt').write_text("[xdeploy_nb.plugins]\nbroken = broken_plugin\n")
    code = "import warnings; warnings.simplefilter('always')\nimport xdeploy_nb\nfrom xdeploy_nb.core import KINDS\nprint(xdeploy_nb.PLUGINS, 'image' in KINDS)"
    r = run(sys.executable, '-c', code, env=dict(PYTHONPATH=f"{ROOT}:{site}"))
    assert r.stdout.split() == ['[]', 'True']
    assert "plug-in 'broken' (broken_plugin) failed to load (RuntimeError: broken on purpose)" in r.stderr
    assert 'uninstall' in r.stderr
