"""benchmarks/device_check.py, the script the device machine runs, exercised here where there is no GPU: it makes a
small bundle, runs every cell, and must report the CPU rows as passing and every accelerator row as 'not present' with
its reason (not a crash), in one printed table and a JSON file that hold the same rows. Its row, speed-up and install
logic is tested directly too."""
import json, re, sys
import pytest
from conftest import run, ROOT, load_script

SCRIPT = ROOT/'benchmarks'/'device_check.py'
ACCELERATORS = ('cuda', 'tensorrt', 'torch:cuda:0')

dc = load_script('device_check')

@pytest.fixture(scope='module')
def checked(tmp_path_factory):
    "`(stdout, report)`: the script run with --make-bundle on a tiny model, its JSON written to $OUT as on the device machine."
    out = tmp_path_factory.mktemp('device_check')
    r = run(sys.executable, SCRIPT, out/'bundle', '--make-bundle', '--arch', 'tiny', '--size', '32', '--epochs', '1', '--n-train', '12',
            '--min-time', '0.05', '--min-runs', '3', '--budget', '150', env={'OUT': str(out)}, timeout=400)
    return r.stdout,json.loads((out/'device_check.json').read_text()),out/'bundle'

def table_rows(stdout:str)->list:
    "`(format, variant, device, status)` of each row of the printed table."
    lines = stdout.splitlines()
    start = next(i for i,l in enumerate(lines) if l.startswith('format ')) + 2
    rows = []
    for l in lines[start:]:
        if not l.strip(): break
        rows.append(tuple(re.split(r'\s{2,}', l.strip())[:4]))
    return rows

def test_cpu_rows_pass(checked):
    "Every artifact of the bundle runs on the CPU, matches the sample within its tolerance and is timed at batch 1 and 64."
    _,rep,_ = checked
    cpu = {(r['format'], r['variant']): r for r in rep['rows'] if r['device'] == 'cpu'}
    assert set(cpu) == {('onnx', 'fp32'), ('onnx', 'fp16'), ('onnx', 'int8-static'), ('torchscript', 'fp32'), ('torch.export', 'fp32')}
    for key,r in cpu.items():
        if key == ('onnx', 'int8-static') and r['status'] == 'not in bundle':  # the export may leave int8 out: then it says why
            assert 'accuracy' in r['reason'] or 'differ' in r['reason'], r; continue
        assert r['status'] == 'pass' and r['max_diff'] <= r['tolerance'], r
        assert [t['batch_size'] for t in r['timings']] == [1, 64] and all(t['p50_ms'] > 0 and t['speedup'] is None for t in r['timings']), r
    assert cpu[('onnx', 'fp32')]['tolerance'] == 1e-3 and cpu[('onnx', 'fp16')]['tolerance'] == 1e-2
    assert cpu[('onnx', 'int8-static')]['tolerance'] == 5e-2

def test_accelerator_rows_say_not_present(checked):
    "Without a GPU, each ONNX variant on 'cuda' and 'tensorrt' and each torch artifact on 'torch:cuda:0' is a 'not present' row with its reason."
    import torch, onnxruntime as ort
    if torch.cuda.is_available() or 'CUDAExecutionProvider' in ort.get_available_providers(): pytest.skip("this machine has a CUDA device")
    _,rep,_ = checked
    acc = [r for r in rep['rows'] if r['device'] != 'cpu']
    assert sorted({r['device'] for r in acc}) == sorted(ACCELERATORS)
    assert len([r for r in acc if r['format'] == 'onnx']) == 6 and len([r for r in acc if r['device'] == 'torch:cuda:0']) == 2
    for r in acc:
        assert r['status'] == 'not present' or (r['status'] == 'not in bundle' and r['variant'] == 'int8-static'), r
        assert r['reason'] and 'Traceback' not in r['reason'], r
    cuda = next(r for r in acc if r['device'] == 'cuda' and r['variant'] == 'fp32')
    assert "no device 'cuda'" in cuda['reason'] and 'onnxruntime-gpu' in cuda['reason']
    assert 'torch.cuda.is_available() is False' in next(r for r in acc if r['device'] == 'torch:cuda:0')['reason']

def test_table_and_json_hold_the_same_rows(checked):
    "The printed table has one line per JSON row, in the same order, with the same status; the JSON says what 'auto' chose."
    stdout,rep,_ = checked
    assert table_rows(stdout) == [(r['format'], r['variant'], r['device'], r['status']) for r in rep['rows']]
    assert rep['auto']['device'] == 'cpu' and rep['auto']['why'].startswith("device='auto': cpu")
    assert "Predictor(device='auto'): cpu" in stdout
    assert 'cpu' in [d['name'] for d in rep['devices']]
    assert rep['install'] == ['not asked (--install)'] and rep['meta']['budget'] == 150
    assert rep['meta']['seconds'] < 150

def test_budget_bounds_the_run(checked, tmp_path):
    "With no time left, no cell starts: each row is skipped or says why it did not run, and the script still writes its report and exits 0."
    r = run(sys.executable, SCRIPT, checked[2], '--budget', '2', '--min-cell', '10', '--out', tmp_path/'r.json', timeout=120)
    rows = json.loads((tmp_path/'r.json').read_text())['rows']
    assert len(rows) == 13 and {x['status'] for x in rows if x['device'] == 'cpu'} <= {'skipped', 'not in bundle'}
    assert all(x['status'] in ('skipped', 'not present', 'error', 'not in bundle') and x['reason'] for x in rows)
    assert 'time budget ran out' in rows[0]['reason'] and len(table_rows(r.stdout)) == 13

def test_install_is_skipped_without_nvidia_smi(monkeypatch):
    "--install on a machine without `nvidia-smi` installs nothing, and says so."
    monkeypatch.setattr(dc.shutil, 'which', lambda name: None)
    assert dc.install([], lambda: 100) == ["skipped: no `nvidia-smi` here, so no NVIDIA GPU: nothing installed"]

def test_torch_pins_come_from_settings():
    "The torch that --install puts on an NVIDIA machine without a CUDA torch is the one settings.ini pins."
    pins = dc.torch_pins()
    assert [re.match(r'[a-z]+', p)[0] for p in pins] == ['torch', 'torchvision'] and all(re.search(r'[<>=]', p) for p in pins)

def test_split_wheel_is_joined(tmp_path):
    "A wheel carried in pieces (`*.whl.partaa`, `...partab`, in two folders) is joined back in name order."
    a,b = tmp_path/'a',tmp_path/'b'
    a.mkdir(); b.mkdir()
    (a/'onnxruntime_gpu-1.2.3-cp312.whl.partab').write_bytes(b'world')
    (b/'onnxruntime_gpu-1.2.3-cp312.whl.partaa').write_bytes(b'hello ')
    w = dc._local_wheel([str(a), str(b)], 'onnxruntime_gpu-1.2.3', tmp_path)
    assert w.name == 'onnxruntime_gpu-1.2.3-cp312.whl' and w.read_bytes() == b'hello world'
    assert dc._local_wheel([str(a)], 'onnxruntime_gpu-9', tmp_path) is None

def test_rows_status_and_speedups():
    "A cell's result becomes pass, FAIL, 'not present' (its device or EP is missing) or error; speed-ups are CPU p50 over device p50."
    base = dict(format='onnx', variant='fp16', device='cuda')
    t = lambda p50: [dict(batch_size=64, p50_ms=p50)]
    ok = dc.row_from(base, dict(max_diff=5e-3, timings=t(2.0), providers=['CUDAExecutionProvider', 'CPUExecutionProvider']), '', 1e-2)
    assert ok['status'] == 'pass' and ok['reason'].startswith('CUDAExecutionProvider')
    bad = dc.row_from(base, dict(max_diff=2e-2, timings=t(2.0)), '', 1e-2)
    assert bad['status'] == 'FAIL' and '0.02 > 0.01' in bad['reason']
    log = ("\x1b[1;31m2026-11-29 19:43:19.38 [E:onnxruntime:Default, provider_bridge_ort.cc:2395 TryGetProviderInfo_CUDA] provider_bridge_ort.cc:1988 "
           "[ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/onnxruntime/capi/libonnxruntime_providers_cuda.so with error: "
           "libcublasLt.so.13: cannot open shared object file: No such file or directory\x1b[m\nsome other line\n")
    gone = dc.row_from(base, dict(phase='load', error="XDeployError: onnxruntime could not start CUDAExecutionProvider for device 'cuda'.\nFix: Check"), log, 1e-2)
    assert gone['status'] == 'not present' and gone['reason'].startswith(
        "onnxruntime: libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: No such file or directory; onnxruntime could not start")
    assert gone['onnxruntime_log'].startswith('[E] provider_bridge_ort.cc') and '\x1b' not in gone['onnxruntime_log'] and 'Fix' not in gone['reason']
    broke = dc.row_from(base, dict(phase='check', error='RuntimeError: boom'), '', 1e-2)
    assert broke['status'] == 'error' and 'boom' in broke['reason']
    cpu = dc.row_from(dict(base, device='cpu'), dict(max_diff=0.0, timings=t(8.0)), '', 1e-2)
    rows = [cpu, ok, bad]
    dc.add_speedups(rows)
    assert cpu['timings'][0]['speedup'] is None and ok['timings'][0]['speedup'] == 4.0
    assert table_rows('\n' + dc.table(rows, [64]) + '\n') == [('onnx', 'fp16', d, s) for d,s in (('cpu', 'pass'), ('cuda', 'pass'), ('cuda', 'FAIL'))]

def test_bad_bundle_is_a_usage_error(tmp_path):
    "A folder that is not a bundle stops the script with exit status 2 and says why."
    r = run(sys.executable, SCRIPT, tmp_path, '--out', tmp_path/'x.json', check=False, timeout=60)
    assert r.returncode == 2 and 'is not a bundle' in r.stderr and not (tmp_path/'x.json').exists()

def with_scaler(src, dst):
    """A copy of the bundle `src` whose model.onnx ends in an ai.onnx.ml Scaler that changes nothing (scale 1, offset 0), a node OpenVINO
    does not take; its manifest hashes the new file."""
    import hashlib, shutil, onnx
    from onnx import helper
    shutil.copytree(src, dst)
    m = onnx.load(str(dst/'model.onnx'))
    out = m.graph.output[0].name
    last = next(n for n in reversed(m.graph.node) if out in n.output)
    last.output[list(last.output).index(out)] = 'before_scaler'
    m.graph.node.append(helper.make_node('Scaler', ['before_scaler'], [out], domain='ai.onnx.ml', offset=[0.], scale=[1.]))
    m.opset_import.append(helper.make_opsetid('ai.onnx.ml', 3))
    onnx.save(m, str(dst/'model.onnx'))
    man = json.loads((dst/'manifest.json').read_text())
    a = next(a for a in man['artifacts'] if a['file'] == 'model.onnx')
    data = (dst/'model.onnx').read_bytes()
    a.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (dst/'manifest.json').write_text(json.dumps(man, indent=1))
    return dst

def test_fallback_is_a_failed_row(checked, tmp_path):
    """A real second execution provider, OpenVINO in .venv-openvino (tools/test.sh makes it): the bundle's variants run there with every
    node on OpenVINO, and a model with a node OpenVINO does not take is a FAIL row that says it fell back to the CPU and names the node,
    never a row timed on the CPU under OpenVINO's name."""
    ov = ROOT/'.venv-openvino'/'bin'/'python'
    assert ov.exists(), "no .venv-openvino: tools/test.sh makes it"
    bundle = with_scaler(checked[2], tmp_path/'scaler')
    r = run(ov, SCRIPT, bundle, '--devices', 'openvino', '--batch-sizes', '1', '--min-time', '0.05', '--min-runs', '2', '--budget', '150',
            '--out', tmp_path/'r.json', env={'PYTHONPATH': str(ROOT)}, timeout=300)
    rows = {(x['format'], x['variant'], x['device']): x for x in json.loads((tmp_path/'r.json').read_text())['rows']}
    fell = rows[('onnx', 'fp32', 'openvino')]
    assert fell['status'] == 'FAIL' and fell['reason'].startswith('fell back to the CPU: ') and 'Scaler x1' in fell['reason'], fell
    assert not fell['timings'] and rows[('onnx', 'fp32', 'cpu')]['status'] == 'pass'
    for key,x in rows.items():
        if key[2] == 'openvino' and x['status'] == 'pass': assert x['providers'][0] == 'OpenVINOExecutionProvider' and 'CPU fallback disabled' in x['why'], x
        if key[2] == 'openvino' and key[1] != 'fp32': assert x['status'] in ('pass', 'FAIL', 'not in bundle'), x
    assert ('onnx', 'fp32', 'openvino', 'FAIL') in table_rows(r.stdout)
