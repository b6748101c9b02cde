"""A second real execution provider: OpenVINO, through the OpenVINO build of onnxruntime in its own venv (.venv-openvino,
which tools/test.sh makes: `onnxruntime-openvino` cannot share a venv with `onnxruntime`), and through the plugin
`onnxruntime-ep-openvino` (the `openvino` extra) in this one. The bundles are exported here (image: fp32, fp16,
int8-static; tabular: the same), then `benchmarks/openvino_check.py` loads them under .venv-openvino's Python with
`Predictor(device='openvino')`, every node on OpenVINO (CPU fallback disabled), and compares with the CPU provider on
the validation items. A request that would land on the CPU is refused with what happened."""
import json, platform
import onnx, pytest
from onnx import helper, TensorProto
from conftest import run, ROOT, load_script
from xdeploy_nb.core import XDeployError
from xdeploy_nb.accel import list_devices, plugin_packages, providers_for, register_plugin_eps
from xdeploy_nb.runtime import Predictor

pytestmark = pytest.mark.slow(40)
SCRIPT = ROOT/'benchmarks'/'openvino_check.py'
OV_PY = ROOT/'.venv-openvino'/'bin'/'python'

@pytest.fixture(scope='module')
def ov_python():
    "The Python of .venv-openvino, which must be there on Linux x86-64 (tools/test.sh makes it; no wheel exists elsewhere)."
    if platform.system() != 'Linux' or platform.machine() != 'x86_64': pytest.skip("onnxruntime-openvino has wheels for Linux x86-64 here")
    assert OV_PY.exists(), "no .venv-openvino: run tools/test.sh, which makes it (onnxruntime-openvino 1.24.1, xdeploy_nb --no-deps)"
    return OV_PY

@pytest.fixture(scope='module')
def bundles(tmp_path_factory):
    "`(folder, items)`: the image and tabular bundles with their fp16 and int8-static variants, and their validation items."
    out = tmp_path_factory.mktemp('openvino')
    return out,load_script('openvino_check').make(out)

def output_step(path)->float:
    "The quantization step of a QDQ model's output: the scale of the DequantizeLinear that makes it."
    m = onnx.load(str(path))
    node = next(n for n in m.graph.node if n.op_type == 'DequantizeLinear' and n.output[0] == m.graph.output[0].name)
    init = {i.name: i for i in m.graph.initializer}
    return float(onnx.numpy_helper.to_array(init[node.input[1]]))

@pytest.fixture(scope='module')
def checked(bundles, ov_python):
    "The report of benchmarks/openvino_check.py run under .venv-openvino on both bundles."
    out,_ = bundles
    r = run(ov_python, SCRIPT, out/'image', out/'tabular', '--items', out/'items.json', env={'PYTHONPATH': str(ROOT)}, timeout=300)
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_the_venv_has_the_openvino_build(ov_python):
    "In .venv-openvino, onnxruntime is the OpenVINO build, seeing OpenVINO's CPU, and xdeploy_nb lists it as the device 'openvino'."
    code = ("import json, onnxruntime as o; from xdeploy_nb.accel import list_devices; d = list_devices(torch=False); "
            "print(json.dumps(dict(v=o.__version__, eps=o.get_available_providers(), names=d.names(), ov=[r for r in d if r['ep'] == 'OpenVINOExecutionProvider'])))")
    out = json.loads(run(ov_python, '-c', code, env={'PYTHONPATH': str(ROOT)}).stdout.strip().splitlines()[-1])
    assert out['v'] == '1.24.1' and out['eps'][0] == 'OpenVINOExecutionProvider', out
    assert 'openvino' in out['names'] and out['ov'][0]['options']['device_type'] == 'CPU', out

def test_openvino_answers_like_the_cpu(checked, bundles):
    """Every variant on OpenVINO with every node there: fp32 within 1e-5 of the CPU provider, fp16 within its tolerance, int8 within two
    output quantization steps, top-1 100% on the validation items; or refused at load, where it really differs."""
    out,items = bundles
    rows = {(r['bundle'], r['variant']): r for r in checked['rows']}
    assert set(rows) == {(b, v) for b in ('image', 'tabular') for v in ('fp32', 'fp16', 'int8-static')}, sorted(rows)
    for (b,v),r in rows.items():
        if r['error']:  # only a variant whose outputs OpenVINO computes differently, which the raw session confirms
            assert v == 'int8-static' and 'differ from the CPU' in r['error'] and r['raw_max_diff'] > 0.05 and 'Traceback' not in r['error'], r
            continue
        assert r['providers'][0] == 'OpenVINOExecutionProvider' and 'every node on it (CPU fallback disabled)' in r['why'], r
        assert r['n_items'] == len(items[str(out/b)]) and r['top1_agreement'] in (None, 1.0), r
        if v == 'fp32': assert r['max_diff'] <= 1e-5 and r['sample_diff'] <= 1e-5, r
        elif v == 'fp16': assert r['max_diff'] <= 1e-2, r
        else: assert r['max_diff'] <= 2*output_step(out/b/'model.int8-static.onnx') + 1e-6, r
    assert not rows[('tabular', 'int8-static')]['error'] and not rows[('image', 'fp32')]['error']

MIXED = '''
import json, sys
from xdeploy_nb.core import XDeployError
from xdeploy_nb.accel import providers_for
from xdeploy_nb.accel import _open_session
model, out = open(sys.argv[1], 'rb').read(), {}
for name in ('openvino', 'openvino+cpu', 'openvino:gpu'):
    try: s = _open_session(model, 'mixed.onnx', providers_for(name)); out[name] = s.get_providers()
    except XDeployError as e: out[name] = str(e)
print(json.dumps(out))
'''

def mixed_model(path)->str:
    "A model of a Relu (which OpenVINO takes) and an ai.onnx.ml Scaler (which it does not)."
    g = helper.make_graph([helper.make_node('Relu', ['x'], ['r']), helper.make_node('Scaler', ['r'], ['y'], domain='ai.onnx.ml', offset=[0.], scale=[2.])],
                          'mixed', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['n', 3])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['n', 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 18), helper.make_opsetid('ai.onnx.ml', 3)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return str(path)

def test_fallback_is_refused_with_the_node(ov_python, tmp_path):
    "A node OpenVINO does not take would fall back to the CPU: the session is refused, naming it; '+cpu' allows it; a GPU OpenVINO does not see is no device."
    code = run(ov_python, '-c', MIXED, mixed_model(tmp_path/'mixed.onnx'), env={'PYTHONPATH': str(ROOT)})
    out = json.loads(code.stdout.strip().splitlines()[-1])
    assert "OpenVINOExecutionProvider does not take every node of the model: 1 would fall back to the CPU (Scaler x1)" in out['openvino'], out
    assert "device='openvino+cpu'" in out['openvino']
    assert out['openvino+cpu'] == ['OpenVINOExecutionProvider', 'CPUExecutionProvider']
    assert "no device 'openvino:gpu'" in out['openvino:gpu'] and 'openvino here offers openvino (CPU)' in out['openvino:gpu']

def test_plugin_ep_here(bundles, tmp_path):
    """The plugin onnxruntime-ep-openvino (the `openvino` extra) in this venv: where it offers a device, the bundle runs there with every node
    on OpenVINO and a node it does not take is refused; where it offers none (it supports Intel CPUs only), asking for it is refused with
    that reason, while onnxruntime itself, asked by name, runs silently on the CPU."""
    import onnxruntime as ort
    assert 'onnxruntime-ep-openvino' in dict(plugin_packages()), "pip install \"xdeploy_nb[openvino]\" (the dev extras include it)"
    reg = next(r for r in register_plugin_eps() if r['package'] == 'onnxruntime-ep-openvino')
    assert reg['status'] in ('registered', 'already registered') and reg['ep_names'] == ['OpenVINOExecutionProvider'], reg
    out,_ = bundles
    if 'openvino' in list_devices(torch=False).names():
        p = Predictor(out/'image', device='openvino')
        d = p.describe()
        assert d['providers'][0] == 'OpenVINOExecutionProvider' and 'from the plugin package onnxruntime-ep-openvino' in d['why'], d
        assert 'every node on it (CPU fallback disabled)' in d['why'] and p.check() <= 1e-5
        from xdeploy_nb.accel import _open_session
        with pytest.raises(XDeployError, match=r"1 would fall back to the CPU \(Scaler x1\)"):
            _open_session(open(mixed_model(tmp_path/'mixed.onnx'), 'rb').read(), 'mixed.onnx', providers_for('openvino'))
        with pytest.raises(XDeployError, match="no device 'openvino:gpu'"): providers_for('openvino:gpu')
    else:
        with pytest.raises(XDeployError, match="registered OpenVINOExecutionProvider, which offers no device on this machine"):
            Predictor(out/'image', device='openvino')
        so = ort.SessionOptions()
        with pytest.warns(UserWarning):  # the hazard: by name, onnxruntime warns and runs every node on the CPU
            s = ort.InferenceSession(str(out/'image'/'model.onnx'), so, providers=['OpenVINOExecutionProvider'])
        assert s.get_providers() == ['CPUExecutionProvider']
