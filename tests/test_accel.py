"""`xdeploy_nb.accel` is imported by the runtime, which ships without torch: importing it and using what the runtime
uses (`list_devices(torch=False)`, `providers_for`, `auto_candidates`) must not import torch, and `list_devices()`
must work where torch cannot be imported at all. Each check runs in a fresh process, where `sys.modules` tells."""
import json, sys
from conftest import run, import_blocker

BLOCKER = import_blocker('torch')

USE = '''
import json, sys
import xdeploy_nb.accel as accel
after_import = 'torch' in sys.modules
plan = accel.providers_for('cpu')
out = dict(after_import=after_import, names=accel.list_devices(torch=False).names(), auto=accel.auto_candidates(),
           providers=plan.providers, plugins=accel.register_plugin_eps())
out['torch_loaded'] = sorted(m for m in sys.modules if m.partition('.')[0] == 'torch')
'''

def _run(code:str)->dict: return json.loads(run(sys.executable, '-c', code, timeout=120).stdout.strip().splitlines()[-1])

def test_runtime_calls_do_not_import_torch():
    "Importing accel and making a plan for 'cpu' and for 'auto' leaves torch unimported (torch is installed here)."
    out = _run(USE + "print(json.dumps(out))")
    assert out['after_import'] is False and out['torch_loaded'] == []
    assert out['names'][0] == 'cpu' and out['auto'][-1] == 'cpu'
    assert out['providers'] == ['CPUExecutionProvider']

def test_list_devices_without_torch():
    "Where torch cannot be imported, `list_devices()` (which would list torch's devices) lists onnxruntime's."
    out = _run(BLOCKER + USE + "out['all'] = [d['name'] for d in accel.list_devices()]\nprint(json.dumps(out))")
    assert out['torch_loaded'] == []
    assert out['all'] == out['names'] and 'cpu' in out['all']
    assert not any(n.startswith('torch:') for n in out['all'])

def test_import_graph():
    "At import time, accel imports only the standard library, onnxruntime and xdeploy_nb.core."
    from test_runtime_no_torch import _imports, ROOT
    import ast
    tops = {m.partition('.')[0] for m in _imports(ast.parse((ROOT/'xdeploy_nb'/'accel.py').read_text()), 'xdeploy_nb.accel', False, everywhere=False)}
    assert tops - set(sys.stdlib_module_names) <= {'onnxruntime', 'xdeploy_nb', 'numpy'}, tops
    assert 'torch' in {m.partition('.')[0] for m in _imports(ast.parse((ROOT/'xdeploy_nb'/'accel.py').read_text()), 'xdeploy_nb.accel', False, everywhere=True)}
