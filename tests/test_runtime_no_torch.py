"""`xdeploy_nb.runtime` is what an application ships: it must load a bundle and predict where torch, fastai and
pandas cannot be imported, and nothing it imports may import torch, fastai or pickle.

The bundles are made here, with torch (as the exporter will), from hand-written preprocessing specs, so that this
test needs neither fastai nor the exporter."""
import ast, json, sys, warnings
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

from conftest import run, ROOT, import_blocker

BLOCKED = ('torch', 'torchvision', 'fastai', 'fastcore', 'fasttransform', 'plum', 'pandas')
FORBIDDEN = {'torch', 'torchvision', 'fastai', 'fastcore', 'pandas', 'pickle', '_pickle', 'cloudpickle', 'dill', 'joblib'}
ALLOWED_THIRD_PARTY = {'numpy', 'PIL', 'onnxruntime', 'xdeploy_nb'}

IMAGE_SPEC = dict(version=1, input=dict(cls='PILImage', mode='RGB', item_getters=[]),
                  item_tfms=[dict(op='resize', size=[16, 16], method='squish', pad_mode='reflection', resample='BILINEAR')],
                  batch_tfms=[dict(op='int_to_float', div=255.0, div_mask=1),
                              dict(op='normalize', mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])], skipped=[])
TABULAR_SPEC = dict(version=1, kind='tabular', fill_missing=[dict(column='depth', value=2.0, flag='depth_na')],
                    categories={'island': ['#na#', 'Biscoe', 'Dream'], 'depth_na': ['#na#', False, True]},
                    normalize=dict(mean=[1.0, 2.0], std=[2.0, 0.5]), x_cat=['island', 'depth_na'], x_cont=['length', 'depth'],
                    columns=['island', 'length', 'depth'])
ROWS = [dict(island='Biscoe', length=1.5, depth=2.5), dict(island='Atlantis', length=0.0, depth=None),
        dict(island='Dream', length=-3.0, depth=1.0)]

def _manifest(f:Path, task, labels, inputs, kind, spec, n_out, activation, threshold=None)->dict:
    from xdeploy_nb.core import SCHEMA_NAME, SCHEMA_VERSION, file_sha256
    out = dict(name='output', dtype='float32', shape=['batch', n_out], activation=activation)
    if threshold is not None: out['threshold'] = threshold
    return dict(schema=SCHEMA_NAME, schema_version=SCHEMA_VERSION, task=task, inputs=inputs,
                preprocessing=dict(kind=kind, steps=[], spec=spec), outputs=[out], labels=labels,
                artifacts=[dict(format='onnx', file=f.name, sha256=file_sha256(f), size=f.stat().st_size, precision='fp32')],
                provenance=dict(created='2026-11-25T12:00:00+00:00', versions={}))

def _export(model, example:dict, f:Path):
    import torch
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript-based ONNX export', category=DeprecationWarning)
        warnings.filterwarnings('ignore', message='The feature will be removed', category=DeprecationWarning)
        torch.onnx.export(model.eval(), tuple(example.values()), str(f), dynamo=False, opset_version=18,
                          input_names=list(example), output_names=['output'],
                          dynamic_axes={**{k: {0: 'batch'} for k in example}, 'output': {0: 'batch'}})

@pytest.fixture(scope='module')
def bundles(tmp_path_factory):
    "An image bundle (multi-label, sigmoid), a tabular one (single-label, softmax), items for them, and torch's outputs."
    import torch
    from torch import nn
    from xdeploy_nb.core import write_manifest
    from xdeploy_nb.preprocess import prepare_image, prepare_rows
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('runtime')
    rng = np.random.default_rng(0)
    images = []
    for i,(h,w) in enumerate([(20, 30), (16, 16), (40, 9)]):
        images.append(root/f'img{i}.png')
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(images[-1])

    class Img(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv,self.lin = nn.Conv2d(3, 4, 3, stride=2),nn.Linear(4, 3)
            self.mean,self.std = (torch.tensor(IMAGE_SPEC['batch_tfms'][1][k]).view(1, 3, 1, 1) for k in ('mean', 'std'))
        def forward(self, image):
            x = (image.float()/255. - self.mean)/self.std
            return torch.sigmoid(self.lin(self.conv(x).mean((2, 3))))

    class Tab(nn.Module):
        def __init__(self):
            super().__init__()
            self.embs = nn.ModuleList(nn.Embedding(3, 2) for _ in range(2))
            self.lin = nn.Linear(6, 2)
            self.mean,self.std = (torch.tensor(TABULAR_SPEC['normalize'][k]) for k in ('mean', 'std'))
        def forward(self, x_cat, x_cont):
            x = torch.cat([e(x_cat[:, i]) for i,e in enumerate(self.embs)] + [(x_cont - self.mean)/self.std], 1)
            return torch.softmax(self.lin(x), 1)

    img_dir,tab_dir = root/'image_bundle',root/'tabular_bundle'
    img_dir.mkdir(); tab_dir.mkdir()
    img_model,tab_model = Img().eval(),Tab().eval()
    _export(img_model, dict(image=torch.zeros(2, 3, 16, 16, dtype=torch.uint8)), img_dir/'model.onnx')
    write_manifest(img_dir, _manifest(img_dir/'model.onnx', 'multi_label', ['a', 'b', 'c'],
                                      [dict(name='image', dtype='uint8', shape=['batch', 3, 16, 16], layout='NCHW')],
                                      'image', IMAGE_SPEC, 3, 'sigmoid', threshold=0.5))
    _export(tab_model, dict(x_cat=torch.zeros(2, 2, dtype=torch.int64), x_cont=torch.zeros(2, 2)), tab_dir/'model.onnx')
    write_manifest(tab_dir, _manifest(tab_dir/'model.onnx', 'single_label', ['yes', 'no'],
                                      [dict(name='x_cat', dtype='int64', shape=['batch', 2]), dict(name='x_cont', dtype='float32', shape=['batch', 2])],
                                      'tabular', TABULAR_SPEC, 2, 'softmax'))
    x = torch.from_numpy(np.stack([prepare_image(f, IMAGE_SPEC) for f in images]).transpose(0, 3, 1, 2).copy())
    rows = {k: torch.from_numpy(v) for k,v in prepare_rows(ROWS, TABULAR_SPEC).items()}
    with torch.no_grad(): expected = dict(image=img_model(x).numpy().tolist(), tabular=tab_model(**rows).numpy().tolist())
    return dict(image=img_dir, tabular=tab_dir, images=[str(f) for f in images], expected=expected)

def test_predicts_without_torch(bundles, tmp_path):
    "In a process where torch, fastai and pandas cannot be imported, a Predictor loads both bundles and predicts torch's outputs."
    (tmp_path/'job.json').write_text(json.dumps({k: v for k,v in bundles.items() if k != 'expected'}, default=str))
    code = f'''
import json, sys
{import_blocker(*BLOCKED)}from xdeploy_nb.runtime import Predictor
job = json.load(open({str(tmp_path/'job.json')!r}))
p = Predictor(job['image'])
images = job['images']
out = dict(image=p.predict_batch(images[:2] + [open(images[2], 'rb').read()], batch_size=2), one=p.predict(images[0]))
t = Predictor(job['tabular'], device='auto')
out['tabular'] = t.predict_batch({ROWS!r})
out['device'] = t.describe()['providers']
out['loaded'] = sorted(m for m in sys.modules if m.partition('.')[0] in {BLOCKED!r})
print(json.dumps(out))
'''
    out = json.loads(run(sys.executable, '-c', code, timeout=120).stdout)
    assert out['loaded'] == []
    assert out['device'] == ['CPUExecutionProvider']
    exp = bundles['expected']
    assert np.abs(np.array([d['probs'] for d in out['image']]) - exp['image']).max() <= 1e-5
    assert [d['labels'] for d in out['image']] == [[l for l,p in zip('abc', row) if p >= 0.5] for row in exp['image']]
    assert out['one'] == out['image'][0]
    assert np.abs(np.array([d['probs'] for d in out['tabular']]) - exp['tabular']).max() <= 1e-5
    assert [d['label'] for d in out['tabular']] == [['yes', 'no'][int(np.argmax(r))] for r in exp['tabular']]

def test_blocked_import_really_fails():
    "The blocker works: a process that tries to import torch under it fails."
    code = f'''
import sys
{import_blocker(*BLOCKED)}import torch
'''
    r = run(sys.executable, '-c', code, check=False, timeout=60)
    assert r.returncode != 0 and 'torch is blocked in this test' in r.stderr

# ---------------------------------------------------------------- the import graph, read from the source

def _module_file(name:str)->Path:
    "The source file of the xdeploy_nb module `name`."
    parts = name.split('.')
    f = ROOT.joinpath(*parts).with_suffix('.py')
    return f if f.exists() else ROOT.joinpath(*parts, '__init__.py')

def _imports(tree:ast.AST, module:str, is_package:bool, everywhere:bool)->set:
    "Absolute names imported by `tree`: at import time only (skipping function bodies), or `everywhere`."
    pkg = module if is_package else module.rpartition('.')[0]
    found,todo = set(),[tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import): found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = '.'.join(pkg.split('.')[:len(pkg.split('.'))-node.level+1])
                mod = f"{base}.{node.module}" if node.module else base
            else: mod = node.module
            found.add(mod)
            # `from .formats import ort` imports the module xdeploy_nb.formats.ort
            found |= {f"{mod}.{a.name}" for a in node.names if mod.partition('.')[0] == 'xdeploy_nb'
                      and ROOT.joinpath(*mod.split('.'), a.name).with_suffix('.py').exists()}
        for child in ast.iter_child_nodes(node):
            if everywhere or not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)): todo.append(child)
    return found

def import_graph(root:str='xdeploy_nb.runtime')->tuple:
    "`(modules, external)`: the xdeploy_nb modules importing `root` runs, and every other module they import."
    seen,external,todo = set(),set(),[root, 'xdeploy_nb']
    while todo:
        name = todo.pop()
        if name in seen: continue
        seen.add(name)
        f = _module_file(name)
        # runtime.py itself: every import, even inside functions; what it imports: what runs at import time
        for imp in _imports(ast.parse(f.read_text()), name, f.name == '__init__.py', everywhere=name == root):
            if imp.partition('.')[0] == 'xdeploy_nb':
                todo.append(imp if _module_file(imp).exists() else imp.rpartition('.')[0])
            else: external.add(imp)
    return seen,external

def test_import_graph():
    "runtime.py and the xdeploy_nb modules it imports import only the standard library, numpy, Pillow and onnxruntime."
    modules,external = import_graph()
    # the package imports xdeploy_nb.builtins, which imports every built-in kind, task and format module
    assert modules == {'xdeploy_nb', 'xdeploy_nb.builtins', 'xdeploy_nb.runtime', 'xdeploy_nb.core', 'xdeploy_nb.preprocess',
                       'xdeploy_nb.accel', 'xdeploy_nb.variants', 'xdeploy_nb.pregraph',
                       'xdeploy_nb.formats', 'xdeploy_nb.formats.onnx', 'xdeploy_nb.formats.torchscript', 'xdeploy_nb.formats.pt2',
                       'xdeploy_nb.formats.ort', 'xdeploy_nb.formats.executorch',
                       'xdeploy_nb.tasks', 'xdeploy_nb.tasks.single_label', 'xdeploy_nb.tasks.multi_label', 'xdeploy_nb.tasks.regression',
                       'xdeploy_nb.tasks.segmentation', 'xdeploy_nb.kinds', 'xdeploy_nb.kinds.image', 'xdeploy_nb.kinds.tabular',
                       'xdeploy_nb.kinds.collab', 'xdeploy_nb.kinds.text'}  # the text kind: its tokenisation imports spaCy only when a spaCy bundle tokenizes
    tops = {m.partition('.')[0] for m in external}
    assert not tops & FORBIDDEN, sorted(tops & FORBIDDEN)
    assert tops - set(sys.stdlib_module_names) <= ALLOWED_THIRD_PARTY, sorted(tops - set(sys.stdlib_module_names))
    assert {'numpy', 'PIL', 'onnxruntime'} <= tops

def test_import_graph_sees_function_imports(tmp_path):
    "The reader finds imports inside functions of runtime.py, and relative imports."
    tree = ast.parse("from .core import X\nfrom . import preprocess\ndef f():\n    import torch\n")
    assert _imports(tree, 'xdeploy_nb.runtime', False, everywhere=True) == {'xdeploy_nb.core', 'xdeploy_nb', 'xdeploy_nb.preprocess', 'torch'}
    assert 'torch' not in _imports(tree, 'xdeploy_nb.runtime', False, everywhere=False)
