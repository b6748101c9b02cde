"""export_bundle on the models users bring: torchvision and fastai archs, grayscale, non-square, every resize
method, with and without Normalize, a plain Learner, multi-label, tabular classification and regression; and the
failures: a model that cannot export, bad Learners, atomicity."""
import json, os, signal, subprocess, sys, textwrap
import numpy as np, pytest, torch
from torch import nn
import xdeploy_nb.train  # imports fastai quietly, before the names below
from fastai.vision.all import (DataBlock, ImageBlock, MultiCategoryBlock, CategoryBlock, GrandparentSplitter, Resize,
                               get_image_files, parent_label, Normalize, imagenet_stats, Learner, accuracy_multi, PILImageBW)
from xdeploy_nb.core import XDeployError, read_manifest
from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
from xdeploy_nb.train import image_dls, image_learner, tabular_dls, tiny_cnn, trained_learner
from xdeploy_nb.export import export_bundle, spec_from_learner, Bundle
from xdeploy_nb.runtime import Predictor

SMALL = dict(classes=3, n_train=12, n_valid=6)

def calibrate(learn, n=3):
    "Give BatchNorm layers real statistics (forward passes only), so random-init models give varying outputs."
    learn.model.train()
    with torch.no_grad():
        for i,(x,*_) in enumerate(learn.dls.train):
            learn.model(x)
            if i+1 >= n: break
    learn.model.eval()
    return learn

def check(learn, path, formats=('onnx', 'torchscript', 'torch.export'), **kw):
    b = export_bundle(learn, path, formats=formats, **kw)
    assert isinstance(b, Bundle) and b.report.passed, b.report
    m = read_manifest(path)
    assert [a['format'] for a in m['artifacts']] == list(formats)
    assert all(a['verification']['passed'] and a['verification']['max_abs_diff'] <= 1e-4 for a in m['artifacts'])
    return m

@pytest.mark.parametrize('arch', ['resnet18', 'mobilenet_v3_small', 'efficientnet_b0', 'xresnet18'])
def test_vision_archs(arch, tmp_path):
    learn = calibrate(image_learner(image_dls(make_image_folder(size=40, **SMALL), size=32, bs=6), arch=arch))
    m = check(learn, tmp_path/arch)
    assert not any(s['op'] == 'normalize' for s in m['preprocessing']['steps']), "pretrained=False adds no Normalize"

@pytest.mark.parametrize('method', ['squish', 'crop', 'pad'])
def test_grayscale_nonsquare_resize_methods(method, tmp_path):
    path = make_image_folder(size=(30, 50), mode='L', **SMALL)
    learn = calibrate(image_learner(image_dls(path, size=(24, 40), method=method, mode='L', bs=6), arch='resnet18'))
    m = check(learn, tmp_path/method, formats=('onnx',))
    assert m['inputs'][0]['shape'] == ['batch', 1, 24, 40]
    assert m['preprocessing']['spec']['item_tfms'][0]['method'] == method

def test_normalize_goes_into_the_graph(tmp_path):
    dblock = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=GrandparentSplitter(), item_tfms=Resize(32), batch_tfms=Normalize.from_stats(*imagenet_stats))
    dls = dblock.dataloaders(make_image_folder(size=40, **SMALL), bs=6, num_workers=0)
    learn = calibrate(Learner(dls, tiny_cnn(dls.c)))  # a plain Learner
    m = check(learn, tmp_path/'norm', formats=('onnx', 'torchscript'))
    norm = [s for s in m['preprocessing']['steps'] if s['op'] == 'normalize']
    assert len(norm) == 1 and norm[0]['in_graph'] and np.allclose(norm[0]['mean'], imagenet_stats[0])

def test_multi_label(tmp_path):
    path = make_image_folder(size=40, **SMALL)
    get_y = lambda f: [parent_label(f), 'even' if int(f.stem[-1]) % 2 == 0 else 'odd']
    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_items=get_image_files, get_y=get_y,
                       splitter=GrandparentSplitter(), item_tfms=Resize(32))
    dls = dblock.dataloaders(path, bs=6, num_workers=0)
    learn = calibrate(Learner(dls, tiny_cnn(dls.c), metrics=accuracy_multi))
    m = check(learn, tmp_path/'multi')
    assert m['task'] == 'multi_label' and m['outputs'][0]['activation'] == 'sigmoid' and m['outputs'][0]['threshold'] == 0.5
    pred = Predictor(tmp_path/'multi').predict(learn.dls.valid_ds.items[0])
    assert set(pred) == {'labels', 'probs'} and len(pred['probs']) == 5

@pytest.mark.parametrize('target', ['species', 'body_mass_g'])
def test_tabular(target, tmp_path):
    cats = PENGUIN_CATS + (['species'] if target == 'body_mass_g' else [])
    conts = [c for c in PENGUIN_CONTS if c != target]
    learn = trained_learner(tabular_dls(load_penguins(), target, cats, conts), epochs=2)  # trained once, then cached
    m = check(learn, tmp_path/target)
    assert m['task'] == ('regression' if target == 'body_mass_g' else 'single_label')
    assert m['preprocessing']['spec']['categories']['island'][0] == '#na#'
    # rows without a body mass are dropped for regression, and with them every missing measurement
    row = dict(island='Dream', sex=None, bill_length_mm=None if target == 'species' else 40.0, bill_depth_mm=18.0, flipper_length_mm=190.0, body_mass_g=3700.0, species='Adelie')
    pred = Predictor(tmp_path/target).predict(row)
    assert ('value' in pred) == (target == 'body_mass_g')

class DataDependent(nn.Module):
    def __init__(self, c): super().__init__(); self.body = tiny_cnn(c)
    def forward(self, x):
        if x.mean() > 0: x = x.flip(-1)
        return self.body(x)

@pytest.fixture(scope='module')
def small_dls(): return image_dls(make_image_folder(size=40, **SMALL), size=32, bs=6)

def test_unexportable_model_names_module_and_leaves_nothing(small_dls, tmp_path):
    learn = Learner(small_dls, DataDependent(small_dls.c))
    for formats,says in [(('torch.export',), 'data-dependent Python control flow'), (('torchscript',), 'tracing froze a value'),
                         (('onnx',), 'ONNX export of ImageGraph failed')]:
        with pytest.raises(XDeployError) as e: export_bundle(learn, tmp_path/'b', formats=formats)
        assert says in str(e.value) and 'DataDependent' in str(e.value) and 'Fix:' in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []

def test_bad_learners(small_dls, tmp_path):
    learn = Learner(small_dls, tiny_cnn(small_dls.c))
    with torch.no_grad(): next(learn.model.parameters()).fill_(float('nan'))
    with pytest.raises(XDeployError, match='NaN or infinite weights'): export_bundle(learn, tmp_path/'nan')
    no_valid = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                         splitter=lambda items: (list(range(len(items))), []), item_tfms=Resize(32))
    dls = no_valid.dataloaders(make_image_folder(size=40, **SMALL), bs=6, num_workers=0)
    with pytest.raises(XDeployError, match='no validation set'): export_bundle(Learner(dls, tiny_cnn(dls.c)), tmp_path/'nv')
    learn = Learner(small_dls, tiny_cnn(small_dls.c), loss_func=nn.SmoothL1Loss())
    with pytest.raises(XDeployError, match="task="): export_bundle(learn, tmp_path/'task')
    with pytest.raises(XDeployError, match="Unknown artifact format 'tflite'"): export_bundle(learn, tmp_path/'f', formats=('tflite',))
    assert list(tmp_path.iterdir()) == []

def test_overwrite_rules(small_dls, tmp_path):
    learn = Learner(small_dls, tiny_cnn(small_dls.c))
    export_bundle(learn, tmp_path/'b', formats=('onnx',))
    with pytest.raises(XDeployError, match='overwrite=True'): export_bundle(learn, tmp_path/'b', formats=('onnx',))
    learn.export_bundle(tmp_path/'b', formats=('torchscript',), overwrite=True)  # the Learner method
    assert [a['format'] for a in read_manifest(tmp_path/'b')['artifacts']] == ['torchscript']
    (tmp_path/'photos').mkdir(); (tmp_path/'photos'/'cat.jpg').write_bytes(b'x')
    with pytest.raises(XDeployError, match='will not be replaced'): export_bundle(learn, tmp_path/'photos', overwrite=True)
    assert (tmp_path/'photos'/'cat.jpg').exists()

def test_killed_export_leaves_previous_bundle(small_dls, tmp_path):
    "SIGKILL in the middle of an export: the old bundle stays, and the next export clears the leftovers."
    learn = Learner(small_dls, tiny_cnn(small_dls.c))
    export_bundle(learn, tmp_path/'b', formats=('onnx',))
    before = (tmp_path/'b'/'manifest.json').read_text()
    learn.export(tmp_path/'learner.pkl')  # keeps no data: the validation files are passed as items
    files = [str(f) for f in small_dls.valid_ds.items]
    script = textwrap.dedent(f"""
        import os, signal, warnings
        warnings.simplefilter('ignore')
        from fastai.learner import load_learner
        import xdeploy_nb.export as ex
        learn = load_learner({str(tmp_path/'learner.pkl')!r})
        real = ex.write_manifest
        def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)
        ex.write_manifest = die
        ex.export_bundle(learn, {str(tmp_path/'b')!r}, formats=('onnx',), overwrite=True, items={files!r})
    """)
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert (tmp_path/'b'/'manifest.json').read_text() == before
    assert any(p.name.startswith('.b.partial-') for p in tmp_path.iterdir()), "the killed export left its temporary folder"
    export_bundle(learn, tmp_path/'b', formats=('onnx',), overwrite=True)
    assert not any(p.name.startswith('.b.partial-') for p in tmp_path.iterdir())

def test_one_pass_writes_the_manifest_once(small_dls, tmp_path, monkeypatch):
    "One export: the manifest is written once, complete; verification, the preprocessing graph's agreement and the\
    sample run from it in memory (no read of manifest.json); the items are prepared twice (references, agreement)."
    import xdeploy_nb.export as ex, xdeploy_nb.runtime as rt, xdeploy_nb.verify as vf
    calls = {'write': 0, 'read': 0, 'prepare': 0}
    def counting(key, f):
        def g(*a, **k): calls[key] += 1; return f(*a, **k)
        return g
    monkeypatch.setattr(ex, 'write_manifest', counting('write', ex.write_manifest))
    for mod in (rt, vf): monkeypatch.setattr(mod, 'read_manifest', counting('read', mod.read_manifest))
    for mod in (rt, vf): monkeypatch.setattr(mod, 'prepare_inputs', counting('prepare', mod.prepare_inputs))
    learn = calibrate(Learner(small_dls, tiny_cnn(small_dls.c)))
    b = export_bundle(learn, tmp_path/'b', formats=('onnx', 'torchscript'), variants=('fp16',))
    assert calls == {'write': 1, 'read': 0, 'prepare': 2}, calls
    m = read_manifest(tmp_path/'b')
    assert m == json.loads(json.dumps(b.manifest)) and m['preprocessing']['graph']['agreement'] and 'sample' in m
    assert [a['variant'] for a in m['artifacts']] == ['fp32', 'fp32', 'fp16'] and b.report.passed
    assert Predictor(tmp_path/'b', variant='fp16').check() <= m['artifacts'][2]['sample_tolerance']

class Prototypes(nn.Module):
    "Logits are minus the distances of the image features to one prototype per class (torch.cdist)."
    def __init__(self, c): super().__init__(); self.body = tiny_cnn(8); self.protos = nn.Parameter(torch.randn(c, 8))
    def forward(self, x): return -torch.cdist(self.body(x), self.protos)

def test_onnx_falls_back_to_legacy_exporter_with_reason(small_dls, tmp_path):
    "torch.export cannot keep cdist's batch dynamic; the legacy exporter can, and the manifest says why it was used."
    m = check(Learner(small_dls, Prototypes(small_dls.c)), tmp_path/'b', formats=('onnx',))
    a = m['artifacts'][0]
    assert a['exporter'] == 'legacy' and 'dynamic batch' in a['fallback_reason']

def test_sample_checks_a_device(small_dls, tmp_path):
    "The bundle keeps prepared inputs and the Learner's outputs; a Predictor checks itself against them."
    export_bundle(Learner(small_dls, tiny_cnn(small_dls.c)), tmp_path/'b', formats=('onnx',))
    m = read_manifest(tmp_path/'b')
    assert m['sample']['file'] == 'sample.npz' and m['sample']['n'] == 4
    p = Predictor(tmp_path/'b')
    assert p.check() <= 1e-5
    with open(tmp_path/'b'/'sample.npz', 'ab') as f: f.write(b'x')
    with pytest.raises(XDeployError, match='does not match the sha256'): p.check()

@pytest.mark.parametrize('aug', ['plain', 'sized'])
def test_aug_transforms_learners(aug, tmp_path):
    "aug_transforms still resample (and, with size=, resize) the validation batch: the graph does the same, in every format."
    from fastai.vision.all import aug_transforms
    bt = aug_transforms() if aug == 'plain' else aug_transforms(size=48, min_scale=0.75)
    dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label, splitter=GrandparentSplitter(),
                    item_tfms=Resize(64), batch_tfms=bt).dataloaders(make_image_folder(size=64, **SMALL), bs=6, num_workers=0)
    m = check(calibrate(image_learner(dls, arch='resnet18')), tmp_path/aug)
    assert 'grid_resample' in [s['op'] for s in m['preprocessing']['steps'] if s['in_graph']]

ALL_VARIANTS = ('fp16', 'int8-dynamic', 'int8-static', 'optimized')

def check_variants(learn, path, item):
    "Export every variant; each is either in the bundle, verified and runnable, or left out with the reason in the manifest."
    b = export_bundle(learn, path, formats=('onnx',), variants=ALL_VARIANTS)
    m = read_manifest(path)
    kept,rejected = [a['variant'] for a in m['artifacts'][1:]],[r['variant'] for r in m.get('rejected', [])]
    assert sorted(kept + rejected) == sorted(ALL_VARIANTS) and m['artifacts'][0]['variant'] == 'fp32'
    assert all(r['reason'] for r in m.get('rejected', [])), m['rejected']
    with np.load(path/'sample.npz') as z: assert {f"expected.{a['file']}" for a in m['artifacts'][1:]} <= set(z.files)
    for a in m['artifacts']:
        assert a['verification']['passed'] and set(a['accuracy']) >= {'n', 'agreement_with_fp32'}, a
        p = Predictor(path, variant=a['variant'])
        assert p.check() <= 0.05 and p.predict(item).keys() == Predictor(path).predict(item).keys()
    assert not any((path/f"model.{v}.onnx").exists() for v in rejected)
    assert all(a['speed']['fp32_ratio'] > 0 and a['speed']['batch_size'] >= 1 for a in m['artifacts'][1:])  # timed here
    return m

@pytest.mark.parametrize('target', ['species', 'body_mass_g'])
def test_tabular_variants(target, tmp_path):
    cats = PENGUIN_CATS + (['species'] if target == 'body_mass_g' else [])
    learn = trained_learner(tabular_dls(load_penguins(), target, cats, [c for c in PENGUIN_CONTS if c != target]), epochs=3)
    row = dict(island='Dream', sex='male', bill_length_mm=40.0, bill_depth_mm=18.0, flipper_length_mm=190.0, body_mass_g=3700.0, species='Adelie')
    m = check_variants(learn, tmp_path/target, row)
    assert m['artifacts'][0]['accuracy']['metric'] == ('rmse' if target == 'body_mass_g' else 'accuracy')

def test_multi_label_variants(tmp_path):
    path = make_image_folder(size=40, **SMALL)
    get_y = lambda f: [parent_label(f), 'even' if int(f.stem[-1]) % 2 == 0 else 'odd']
    dblock = DataBlock(blocks=(ImageBlock, MultiCategoryBlock), get_items=get_image_files, get_y=get_y,
                       splitter=GrandparentSplitter(), item_tfms=Resize(32))
    learn = calibrate(Learner(dblock.dataloaders(path, bs=6, num_workers=0), tiny_cnn(5), metrics=accuracy_multi))
    m = check_variants(learn, tmp_path/'multi', learn.dls.valid_ds.items[0])
    assert m['artifacts'][0]['accuracy']['metric'] == 'accuracy_multi'
