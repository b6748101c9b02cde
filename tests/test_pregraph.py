"""The preprocessing graph (`xdeploy_nb.pregraph`): its pixels against the Pillow path for each resize method, pad mode,
filter and image mode, on photo-like images at odd sizes; a tiny Learner exported with it (and its .ort), its manifest
entry and measured agreement; `Predictor(preprocess='graph')` against the Pillow path; what it refuses; and the runtime
running it with `onnx` and torch blocked."""
import json, shutil, sys
import numpy as np, onnxruntime as ort, pytest
from PIL import Image
from xdeploy_nb.core import XDeployError, read_manifest
from xdeploy_nb.preprocess import apply_item_step
from xdeploy_nb.pregraph import GRAPH_INPUT, Pregraph, build_pregraph, photo_like
from xdeploy_nb.pregraph_export import export_pregraph
from conftest import run, import_blocker

SIZES = ((300, 400), (100, 33), (33, 100), (9, 17), (1, 1), (65, 63))

def _graph_and_pillow(steps, mode, h, w):
    "`(graph(arr), pillow(arr))` functions for item `steps` making h x w images in `mode`."
    c = 3 if mode == 'RGB' else 1
    model = build_pregraph(dict(input=dict(mode=mode), item_tfms=steps), dict(name='image', shape=['batch', c, h, w]))
    so = ort.SessionOptions(); so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=['CPUExecutionProvider'])
    def pillow(arr):
        for s in steps: arr = apply_item_step(arr, s)
        return arr.transpose(2, 0, 1)[None]
    return (lambda arr: sess.run(None, {GRAPH_INPUT: arr})[0]),pillow

CASES = [(m, p, r) for m in ('crop', 'pad', 'squish') for p in ('zeros', 'border', 'reflection') for r in ('BILINEAR', 'BICUBIC')
         if m == 'pad' or p == 'reflection']  # the pad mode matters only for method pad

@pytest.mark.parametrize('mode', ['RGB', 'L'])
@pytest.mark.parametrize('method,pad_mode,resample', CASES)
def test_pixels_within_one_level(method, pad_mode, resample, mode):
    steps = [dict(op='resize', size=[24, 32], method=method, pad_mode=pad_mode, resample=resample)]
    graph,pillow = _graph_and_pillow(steps, mode, 24, 32)
    sizes = [hw for hw in SIZES if method != 'crop' or hw != (1, 1)]  # a 1x1 image has no 24:32 region to crop (Pillow fails too)
    arrs = [np.asarray(photo_like(h, w, mode, seed=i)).reshape(h, w, -1) for i,(h,w) in enumerate(sizes)]
    d = np.concatenate([np.abs(graph(a).astype(int) - pillow(a)).ravel() for a in arrs])
    assert (d <= 1).mean() >= 0.999 and (d == 0).mean() >= 0.95, ((d <= 1).mean(), (d == 0).mean(), d.max())

@pytest.mark.parametrize('pad_mode', ['zeros', 'border', 'reflection'])
def test_crop_pad_exact(pad_mode):
    steps = [dict(op='resize', size=[20, 20], method='squish', pad_mode='zeros', resample='BILINEAR'), dict(op='crop_pad', size=[16, 24], pad_mode=pad_mode)]
    graph,pillow = _graph_and_pillow(steps, 'RGB', 16, 24)
    a = np.asarray(photo_like(50, 70))
    np.testing.assert_array_equal(graph(a), pillow(a))
    graph,pillow = _graph_and_pillow([dict(op='crop_pad', size=[40, 9], pad_mode=pad_mode)], 'L', 40, 9)
    for h,w in ((3, 5), (1, 1), (100, 2)):
        a = np.random.default_rng(h).integers(0, 256, (h, w, 1), dtype=np.uint8)
        np.testing.assert_array_equal(graph(a), pillow(a))

@pytest.fixture(scope='module')
def learn(tmp_path_factory):
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import trained_learner
    from fastai.vision.all import ImageDataLoaders, Resize
    folder = make_image_folder(tmp_path_factory.mktemp('pg')/'shapes', classes=3, n_train=8, n_valid=6, size=(20, 28))
    return trained_learner(ImageDataLoaders.from_folder(folder, item_tfms=Resize(16, method='pad', pad_mode='reflection'), bs=8, num_workers=0),
                           epochs=2, cache=False)

@pytest.fixture(scope='module')
def bundle(learn, tmp_path_factory):
    from xdeploy_nb.export import export_bundle
    path = tmp_path_factory.mktemp('pg_bundle')/'b'
    export_bundle(learn, path, formats=('onnx', 'ort'))
    return path

def test_manifest_entry(bundle):
    m = read_manifest(bundle)
    g = m['preprocessing']['graph']
    assert g['input'] == dict(name='decoded', dtype='uint8', shape=['height', 'width', 3], layout='HWC', mode='RGB')
    assert g['output'] == dict(name=m['inputs'][0]['name'], dtype='uint8', shape=[1, 3, 16, 16], layout='NCHW')
    assert g['opset'] >= 18 and g['steps'] == m['preprocessing']['spec']['item_tfms'] and g['ort']['file'] == 'preprocess.ort'
    a = g['agreement']
    assert a['meets_targets'] and a['pixels_within_1'] >= 0.999 and a['top1'] >= 0.995 and a['n_images'] == 6*3 + 4
    assert '4032x3024' in a['images']

def test_predictor_graph_matches_pillow(bundle, learn, tmp_path):
    from xdeploy_nb.runtime import Predictor
    from xdeploy_nb.verify import learner_outputs
    files = [str(f) for f in learn.dls.valid_ds.items]
    for i,(h,w) in enumerate(((1000, 333), (17, 9), (480, 640))):
        photo_like(h, w, seed=i).save(tmp_path/f"{i}.jpg"); files.append(str(tmp_path/f"{i}.jpg"))
    pil,gr = Predictor(bundle, device='cpu'),Predictor(bundle, device='cpu', preprocess='graph')
    ref = learner_outputs(learn, files)
    pp,pg = np.array([d['probs'] for d in pil.predict_batch(files, 4)]),np.array([d['probs'] for d in gr.predict_batch(files, 4)])
    assert (pg.argmax(1) == ref.argmax(1)).mean() >= 0.995 and (pg.argmax(1) == pp.argmax(1)).all()
    assert np.abs(pg - ref).max() < 0.05
    m = gr.manifest
    assert Predictor(bundle, device='cpu', preprocess='auto').preprocess == ('graph' if m['preprocessing']['graph']['agreement']['identical'] else 'pillow')
    from xdeploy_nb.formats.ort import reduced_build_config
    config = reduced_build_config(bundle)  # a minimal ORT build for the model and the graph
    assert '# - model.ort' in config and '# - preprocess.ort' in config and 'Resize' in config and '/tmp' not in config
    ort_graph = Pregraph(bundle, m, file='preprocess.ort')
    a = np.asarray(photo_like(333, 1000))
    np.testing.assert_array_equal(ort_graph(a), Pregraph(bundle, m)(a))

def test_refused(bundle, tmp_path):
    from xdeploy_nb.runtime import Predictor
    gr = Predictor(bundle, device='cpu', preprocess='graph')
    for bad,msg in ((np.zeros((8, 8, 4), np.uint8), 'HxWx3'), (np.zeros((0, 5, 3), np.uint8), 'not an image'),
                    (np.zeros((8, 8, 3), np.float32), 'uint8'), (b'not an image', 'cannot identify')):
        with pytest.raises(XDeployError, match=msg): gr.predict(bad)
    pg = gr._pregraph
    for bad,msg in ((np.zeros((8, 8, 4), np.uint8), 'HxWx3'), (np.zeros((0, 5, 3), np.uint8), 'empty'), (np.zeros((8, 8, 3), np.int16), 'uint8')):
        with pytest.raises(XDeployError, match=msg): pg(bad)
    with pytest.raises(XDeployError, match='Unknown preprocess'): Predictor(bundle, preprocess='gpu')
    copy = tmp_path/'b'; shutil.copytree(bundle, copy)
    data = bytearray((copy/'preprocess.onnx').read_bytes()); data[-1] ^= 1; (copy/'preprocess.onnx').write_bytes(bytes(data))
    with pytest.raises(XDeployError, match='sha256'): Predictor(copy, preprocess='graph')
    assert Predictor(copy).preprocess == 'pillow'  # the Pillow path does not read the graph

def test_unavailable_step(bundle, tmp_path):
    from xdeploy_nb.runtime import Predictor
    m = read_manifest(bundle)
    spec = dict(m['preprocessing']['spec'], item_tfms=[dict(m['preprocessing']['spec']['item_tfms'][0], resample='LANCZOS')])
    res = export_pregraph(None, tmp_path, dict(m, preprocessing=dict(m['preprocessing'], spec=spec)), ['onnx'], [])
    assert res['graph'] is None and 'LANCZOS' in res['graph_unavailable'] and not (tmp_path/'preprocess.onnx').exists()
    copy = tmp_path/'b'; shutil.copytree(bundle, copy)
    m['preprocessing'].update(res); (copy/'manifest.json').write_text(json.dumps(m))
    with pytest.raises(XDeployError, match='LANCZOS'): Predictor(copy, preprocess='graph')
    assert Predictor(copy, preprocess='auto').preprocess == 'pillow'

def test_runtime_without_onnx_or_torch(bundle, learn):
    files = [str(f) for f in learn.dls.valid_ds.items[:3]]
    code = import_blocker('onnx', 'torch', 'fastai', 'fastcore', 'pandas') + f"""
from xdeploy_nb.runtime import Predictor
p = Predictor({str(bundle)!r}, preprocess='graph')
print([d['label'] for d in p.predict_batch({files!r})])
import sys; assert not set(['onnx', 'torch', 'fastcore']) & set(sys.modules)
"""
    r = run(sys.executable, '-c', code)
    assert r.stdout.strip().startswith('[')

def test_cli_predict_graph(bundle, learn, capsys):
    from xdeploy_nb.cli import main
    files = [str(f) for f in learn.dls.valid_ds.items[:3]]
    main(['predict', str(bundle), *files, '--json', '--preprocess', 'graph'])
    graph = json.loads(capsys.readouterr().out)
    main(['predict', str(bundle), *files, '--json'])
    assert [d['label'] for d in graph] == [d['label'] for d in json.loads(capsys.readouterr().out)]
