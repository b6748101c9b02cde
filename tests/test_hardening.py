"""Findings of the adversarial review, each made impossible: code-running artifacts need consent, what is hashed is
what is loaded, external data is refused, and a fixed-batch export works. (Non-finite values, manifest validation,
atomicity and the CLI are in test_fuzz.py and test_atomic.py.)"""
import json, shutil
import numpy as np, pytest, torch
import xdeploy_nb.train  # fastai, quietly
from xdeploy_nb.core import FORMATS, ManifestError, XDeployError, file_sha256, read_manifest
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.train import image_dls, image_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor, load_sample
from xdeploy_nb.verify import verify_bundle
from xdeploy_nb.bench import bench

@pytest.fixture(scope='module')
def learn():
    learn = image_learner(image_dls(make_image_folder(classes=3, n_train=12, n_valid=6, size=24), size=16, bs=6))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)
    return learn

@pytest.fixture(scope='module')
def bundle(learn, tmp_path_factory):
    path = tmp_path_factory.mktemp('h')/'b'
    export_bundle(learn, path, formats=('onnx', 'torchscript'))
    return path

def _rehash(path, file):
    m = json.loads((path/'manifest.json').read_text())
    a = next(a for a in m['artifacts'] if a['file'] == file)
    a.update(sha256=file_sha256(path/file), size=(path/file).stat().st_size)
    (path/'manifest.json').write_text(json.dumps(m))

class Evil(torch.nn.Module):
    "A TorchScript module whose loading is harmless but whose running writes a file outside the bundle."
    def __init__(self, target:str): super().__init__(); self.target = target
    def forward(self, image):
        torch.save(torch.zeros(1), self.target)  # a side effect: any code can run here
        return torch.zeros(image.shape[0], 3).softmax(-1)

def test_torchscript_needs_consent(bundle, learn, tmp_path):
    evil = tmp_path/'evil'; shutil.copytree(bundle, evil)
    target = tmp_path/'pwned'
    torch.jit.script(Evil(str(target))).save(str(evil/'model.ts'))
    _rehash(evil, 'model.ts')  # the attacker updates the manifest too
    with pytest.raises(XDeployError, match='trust_code=True'): Predictor(evil, format='torchscript')
    assert FORMATS['torchscript'].runs_code and FORMATS['torch.export'].runs_code and not FORMATS['onnx'].runs_code
    r = bench(evil, batch_sizes=(1,), min_time=0.01, min_runs=1, progress=False)  # formats='all': ONNX only by default
    assert {row['format'] for row in r.rows} == {'onnx'} and not target.exists()
    rep = verify_bundle(evil, learn)
    assert [row['passed'] for row in rep.rows] == [True, False] and 'trust_code' in rep.rows[1]['problem'] and not target.exists()
    Predictor(evil, format='torchscript', trust_code=True).predict(str(learn.dls.valid_ds.items[0]))
    assert target.exists()  # with consent it runs: which is why it needs consent

def test_what_is_hashed_is_what_is_loaded(bundle, learn, tmp_path, monkeypatch):
    "The model file swapped for another after its hash was checked: the checked bytes are what runs."
    d = tmp_path/'b'; shutil.copytree(bundle, d)
    item = str(learn.dls.valid_ds.items[0])
    want = Predictor(d, device='cpu').predict(item)
    runner = FORMATS['onnx'].runner
    def swap_then_run(path, m, a, data, *args):
        (path/a['file']).write_bytes(b'not the model that was hashed')  # the swap, between check and load
        return runner(path, m, a, data, *args)
    monkeypatch.setattr(FORMATS['onnx'], 'runner', swap_then_run)
    assert Predictor(d, device='cpu').predict(item) == want

def test_external_data_is_refused(bundle, tmp_path):
    import onnx
    d = tmp_path/'b'; shutil.copytree(bundle, d)
    model = onnx.load(str(d/'model.onnx'))
    onnx.save(model, str(d/'model.onnx'), save_as_external_data=True, all_tensors_to_one_file=True, location='model.onnx.data', size_threshold=0)
    _rehash(d, 'model.onnx')
    with pytest.raises(XDeployError, match='external data'): Predictor(d, device='cpu')

def test_fixed_batch_export(learn, tmp_path):
    b = export_bundle(learn, tmp_path/'fixed', formats=('onnx', 'torchscript'), dynamic_batch=False)
    assert b.report.passed, b.report
    m = read_manifest(tmp_path/'fixed')
    assert all(set(a['eager_max_abs_diff']) == {'8'} for a in m['artifacts']), [a['eager_max_abs_diff'] for a in m['artifacts']]

# --- issue 24: file names with control characters, files that resolve outside the bundle, images without pixels

@pytest.mark.parametrize('where,name', [('sample', 'sample.npz\x00'), ('sample', 'model.onnx\x00'), ('artifact', 'model.onnx\n'),
                                        ('artifact', 'model\x1b[2J.onnx'), ('artifact', 'model.onnx\x7f')])
def test_control_characters_in_file_names_refused(bundle, tmp_path, where, name):
    d = tmp_path/'b'; shutil.copytree(bundle, d)
    m = json.loads((d/'manifest.json').read_text())
    (m['sample'] if where == 'sample' else m['artifacts'][0])['file'] = name
    (d/'manifest.json').write_text(json.dumps(m))
    with pytest.raises(ManifestError, match='not a plain file name in the bundle'): read_manifest(d)

@pytest.fixture(scope='module')
def every_file(learn, tmp_path_factory):
    "A bundle with every file a Python loader reads: each model format, the preprocessing graph, the sample, the manifest."
    path = tmp_path_factory.mktemp('h_all')/'b'
    assert export_bundle(learn, path, formats=('onnx', 'ort', 'torchscript', 'executorch')).report.passed
    return path

LOADERS = {'model.onnx': lambda d: Predictor(d, device='cpu'),
           'model.ort': lambda d: Predictor(d, format='ort', device='cpu'),
           'model.ts': lambda d: Predictor(d, format='torchscript', trust_code=True),
           'model.pte': lambda d: Predictor(d, format='executorch'),
           'preprocess.onnx': lambda d: Predictor(d, device='cpu', preprocess='graph'),
           'sample.npz': lambda d: load_sample(d, read_manifest(d)),
           'manifest.json': read_manifest}

@pytest.mark.parametrize('file', list(LOADERS))
def test_files_resolving_outside_the_bundle_refused(every_file, tmp_path, file):
    "The same bytes (the sha256 matches) behind a symbolic link out of the folder: refused by every loader; a link inside is fine."
    d,out = tmp_path/'b',tmp_path/'elsewhere'
    shutil.copytree(every_file, d); out.mkdir()
    LOADERS[file](d)  # the copy loads
    (d/file).rename(out/file); (d/file).symlink_to(out/file)
    with pytest.raises(XDeployError, match='outside the bundle') as e: LOADERS[file](d)
    assert 'cp -rL' in e.value.fix
    (d/file).unlink(); (out/file).rename(d/f'.{file}'); (d/file).symlink_to(f'.{file}')  # a link to a file of the bundle
    LOADERS[file](d)

@pytest.mark.parametrize('preprocess', ['pillow', 'graph'])
def test_image_without_pixels_refused(bundle, preprocess):
    from PIL import Image
    p = Predictor(bundle, device='cpu', preprocess=preprocess)
    for img in (Image.new('RGB', (0, 0)), Image.new('RGB', (0, 5)), Image.new('RGB', (7, 0))):
        with pytest.raises(XDeployError, match=r'Item 0 .*it has no pixels') as e: p.predict(img)
        assert 'at least 1x1' in e.value.fix

def test_prepared_arrays_are_contiguous(bundle, learn):
    "The public preparation functions return C-contiguous arrays (a runtime that ignores strides reads them right)."
    from xdeploy_nb.preprocess import prepare_image
    from xdeploy_nb.runtime import prepare_inputs
    m,item = read_manifest(bundle),str(learn.dls.valid_ds.items[0])
    assert all(v.flags['C_CONTIGUOUS'] for v in prepare_inputs(m, [item, item]).values())
    assert prepare_image(item, m['preprocessing']['spec']).flags['C_CONTIGUOUS']

def test_pinned_digest_refuses_an_edited_manifest(bundle, tmp_path):
    "Labels permuted (and hashes re-computed, as an attacker would): the hashes pass, the digest an app pinned does not."
    from xdeploy_nb.core import bundle_digest
    from conftest import run
    text = (bundle/'manifest.json').read_text()
    m = json.loads(text)
    assert text == json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False) + '\n'  # written canonically
    pinned = bundle_digest(bundle)
    assert run('xdeploy', 'digest', bundle).stdout.strip() == pinned
    d = tmp_path/'b'; shutil.copytree(bundle, d)
    m['labels'] = m['labels'][1:] + m['labels'][:1]
    (d/'manifest.json').write_text(json.dumps(m, indent=1, sort_keys=True))
    for a in m['artifacts']: _rehash(d, a['file'])
    assert Predictor(d, device='cpu').manifest['labels'] == m['labels']  # a valid bundle, as far as its hashes go
    with pytest.raises(XDeployError, match=f"not the {pinned} expected"): Predictor(d, device='cpu', digest=pinned)
    with pytest.raises(XDeployError, match='is not a bundle digest'): Predictor(bundle, device='cpu', digest=pinned[7:])
    assert Predictor(bundle, device='cpu', digest=pinned).manifest['labels'] == json.loads(text)['labels']

def test_files_outside_the_bundle_are_not_read(bundle, tmp_path):
    "A symlink out of the bundle, a device or a FIFO in place of a file: refused before it is opened."
    import os
    for name,make in [('model.onnx', lambda f: os.symlink(bundle/'model.onnx', f)), ('model.onnx', os.mkfifo),
                      ('manifest.json', lambda f: os.symlink('/dev/zero', f)), ('manifest.json', os.mkfifo)]:
        d = tmp_path/f'b{len(list(tmp_path.iterdir()))}'; shutil.copytree(bundle, d); (d/name).unlink(); make(d/name)
        with pytest.raises(XDeployError, match='not a regular file inside the bundle folder'): Predictor(d, device='cpu')
