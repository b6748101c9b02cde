"""The C++ host (issue 26): `xdeploy-predict`, built once per content of its sources, gives the Python Predictor's answers
(`preprocess='graph'`: the same decoded pixels, the same preprocess.onnx and model.onnx, the same ONNX Runtime library) on
bundles of every kind and task, PNG and JPEG files at odd sizes and CSV rows with missing values; bad input is one message
and exit status 1, also under AddressSanitizer; `xdeploy cpp --build` runs with an empty environment; the Qt app shows the label."""
import json, math, os, shutil, subprocess, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from conftest import run, shapes_frame, tiny_unet
from fastai.vision.all import (BCEWithLogitsLossFlat, ColReader, ColSplitter, DataBlock, ImageBlock,
                             ImageDataLoaders, Learner, MSELossFlat, MultiCategoryBlock, PILImageBW, CategoryBlock,
                             RegressionBlock, Resize, ResizeMethod)
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from xdeploy_nb.data import load_penguins, make_image_folder
from xdeploy_nb.export import export_bundle
from xdeploy_nb.hosts.cpp import host_build
from xdeploy_nb.pregraph import photo_like
from xdeploy_nb.runtime import KINDS, Predictor, items_from_paths
from xdeploy_nb.train import tiny_cnn

pytestmark = pytest.mark.slow(seconds=90)  # with the C++ builds cached in the data home; building the three first adds 2-4 minutes

@pytest.fixture(scope='session')
def dist(): return host_build()

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    path = make_image_folder(tmp_path_factory.mktemp('cppshapes')/'shapes', n_train=4, n_valid=2, size=28)
    df = shapes_frame(path)
    return path,df

def _export(learn, d:Path)->Path:
    "An untrained Learner's bundle (answers need not be right to be compared between hosts); ONNX only."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_bundle(learn, d, formats=('onnx',), n_items=4)
    return d

def _image_learner(path, df, blocks=(ImageBlock, CategoryBlock), get_y=ColReader('label'), tfm=Resize(20), n_in=3, **kw):
    dls = DataBlock(blocks, get_x=ColReader('fname', pref=f'{path}/'), get_y=get_y, splitter=ColSplitter('is_valid'),
                    item_tfms=tfm).dataloaders(df, bs=8)
    return Learner(dls, tiny_cnn(dls.c, n_in), **kw)

@pytest.fixture(scope='module')
def bundles(shapes, tmp_path_factory):
    "One bundle per kind, task, mode and resize method the C++ host serves."
    path,df = shapes
    d,b = tmp_path_factory.mktemp('cppbundles'),{}
    for method in ('crop', 'pad', 'squish'):
        b[f'rgb-{method}'] = _export(_image_learner(path, df, tfm=Resize((20, 14), method=method)), d/f'rgb-{method}')
    b['gray'] = _export(_image_learner(path, df, blocks=(ImageBlock(PILImageBW), CategoryBlock), tfm=Resize(18, method='pad', pad_mode='zeros'), n_in=1), d/'gray')
    b['multi'] = _export(_image_learner(path, df, blocks=(ImageBlock, MultiCategoryBlock), get_y=ColReader('tags', label_delim=' '),
                                        loss_func=BCEWithLogitsLossFlat(thresh=0.45)), d/'multi')
    b['regression'] = _export(_image_learner(path, df, blocks=(ImageBlock, RegressionBlock(n_out=2)), get_y=ColReader(['x', 'y']),
                                             loss_func=MSELossFlat()), d/'regression')
    b['segmentation'] = _export(tiny_unet(n=8, size=24, bs=4), d/'segmentation')
    pen = load_penguins()
    tdls = TabularDataLoaders.from_df(pen, y_names='species', cat_names=['island', 'sex'], cont_names=['bill_length_mm', 'bill_depth_mm', 'body_mass_g'],
                                      procs=[Categorify, FillMissing, Normalize], valid_idx=list(range(0, len(pen), 5)), bs=64)
    b['tabular'] = _export(tabular_learner(tdls, layers=[8]), d/'tabular')
    from fastai.collab import CollabDataLoaders, collab_learner
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame(dict(user=rng.integers(0, 20, 200), item=[f'm{i}' for i in rng.integers(0, 12, 200)], rating=rng.uniform(1, 5, 200)))
    b['collab'] = _export(collab_learner(CollabDataLoaders.from_df(ratings, bs=64, seed=0), n_factors=4, y_range=(0.5, 5.5)), d/'collab')
    return b

@pytest.fixture(scope='module')
def images(shapes, tmp_path_factory):
    "PNG and JPEG files at odd sizes, in the modes Pillow opens (RGB, RGBA, L, LA, P, 1-bit, 16-bit gray), and a CMYK JPEG."
    d = tmp_path_factory.mktemp('cppimages')
    files = []
    for i,(h,w) in enumerate([(37, 51), (17, 9), (333, 517), (5, 4), (64, 20)]):
        img = photo_like(h, w, seed=i)
        img.save(d/f'photo{i}.png'); img.save(d/f'photo{i}.jpg', quality=90); files += [d/f'photo{i}.png', d/f'photo{i}.jpg']
    img = photo_like(29, 41, seed=9)
    for mode in ('RGBA', 'L', 'LA', 'P', '1'): img.convert(mode).save(d/f'mode_{mode}.png'); files.append(d/f'mode_{mode}.png')
    img.convert('L').save(d/'gray.jpg', quality=85); files.append(d/'gray.jpg')
    img.convert('CMYK').save(d/'cmyk.jpg', quality=90); files.append(d/'cmyk.jpg')
    Image.fromarray((np.asarray(img.convert('L')).astype(np.uint16)*3)).save(d/'gray16.png'); files.append(d/'gray16.png')
    img.save(d/'progressive.jpg', quality=75, progressive=True); files.append(d/'progressive.jpg')
    return files + sorted(shapes[0].rglob('*.png'))[:2]

def cpp(dist:Path, *args, env=None, timeout=120)->subprocess.CompletedProcess:
    "Run `xdeploy-predict` with an empty environment (the $ORIGIN rpath finds the library)."
    return subprocess.run([str(dist/'bin'/'xdeploy-predict'), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env or {})

def python_json(bundle:Path, items:list, format:str='auto')->list:
    "What `xdeploy predict BUNDLE ITEMS --json --preprocess graph` prints, as data (in this process: quicker than a subprocess)."
    m = json.loads((bundle/'manifest.json').read_text())
    p = Predictor(bundle, device='cpu', format=format, preprocess='graph' if m['preprocessing']['kind'] == 'image' else 'pillow')
    xs = items_from_paths(p.manifest, [str(i) for i in items])
    names = KINDS[p.manifest['preprocessing']['kind']].names(xs)
    return json.loads(json.dumps([dict(item=n, **d) for n,d in zip(names, p.predict_batch(xs))]))

def assert_same(got:list, want:list, atol:float=1e-6):
    "Same items, keys, labels and masks; every number within `atol`."
    assert len(got) == len(want)
    for g,w in zip(got, want):
        assert list(g) == list(w), (list(g), list(w))
        for k in w:
            if k in ('probs', 'value') and isinstance(w[k], (list, float)):
                assert np.allclose(g[k], w[k], rtol=0, atol=atol), (g['item'], k, g[k], w[k])
            elif k == 'classes':
                assert list(g[k]) == list(w[k]) and np.allclose(list(g[k].values()), list(w[k].values()), rtol=0, atol=atol)
            else: assert g[k] == w[k], (g['item'], k)

IMAGE_BUNDLES = ['rgb-crop', 'rgb-pad', 'rgb-squish', 'gray', 'multi', 'regression', 'segmentation']

@pytest.mark.parametrize('name', IMAGE_BUNDLES)
def test_images_as_python(dist, bundles, images, name):
    r = cpp(dist, bundles[name], *images, '--json')
    assert r.returncode == 0, r.stderr + r.stdout
    got = json.loads(r.stdout)
    assert_same(got, python_json(bundles[name], images))
    print(f"\n{name}: {len(images)} PNG/JPEG files, answers equal to the Python Predictor's")

def test_json_text_is_pythons(dist, bundles, images):
    "The very text `xdeploy predict --json --preprocess graph` prints (numbers as Python's repr writes them)."
    b = bundles['rgb-crop']
    want = run('xdeploy', 'predict', b, *images[:4], '--json', '--preprocess', 'graph').stdout
    assert cpp(dist, b, *images[:4], '--json').stdout == want

def test_a_folder_of_images(dist, bundles, shapes):
    b,folder = bundles['rgb-crop'],shapes[0]/'valid'
    r = cpp(dist, b, folder, '--json')
    assert r.returncode == 0, r.stderr + r.stdout
    assert_same(json.loads(r.stdout), python_json(b, [folder]))
    lines = cpp(dist, b, folder).stdout.splitlines()
    assert len(lines) == len(list(folder.rglob('*.png'))) and '%)' in lines[0]

@pytest.fixture(scope='module')
def csvs(tmp_path_factory):
    "A penguins CSV file with missing values (empty cells) in category and continuous columns, and a ratings CSV with unseen users."
    d = tmp_path_factory.mktemp('cppcsv')
    pen = load_penguins().drop(columns='species').head(40).copy()
    pen.loc[3, 'sex'] = None; pen.loc[5, 'bill_length_mm'] = None; pen.loc[7, 'island'] = 'Atlantis'
    pen.to_csv(d/'penguins.csv', index=False)
    pd.DataFrame(dict(user=[0, 3, 19, 999, None], item=['m1', 'm2', 'unseen', 'm0', 'm3'])).to_csv(d/'ratings.csv', index=False)
    return dict(tabular=d/'penguins.csv', collab=d/'ratings.csv')

@pytest.mark.parametrize('name', ['tabular', 'collab'])
def test_rows_as_python(dist, bundles, csvs, name):
    r = cpp(dist, bundles[name], csvs[name], '--json')
    assert r.returncode == 0, r.stderr + r.stdout
    assert_same(json.loads(r.stdout), python_json(bundles[name], [csvs[name]]))

def _bad_images(d:Path, good:Path)->list:
    "The project's bad images (tests/test_fuzz.py's test_bad_images), as files: cut PNGs and JPEGs, noise, a bomb, not files."
    png,rng,out = good.read_bytes(),np.random.default_rng(2),[]
    photo_like(40, 30).save(d/'ok.jpg', quality=90); jpg = (d/'ok.jpg').read_bytes()
    for k in (0, 8, 16, 33, 60, len(png)//2): (d/f'cut{k}.png').write_bytes(png[:k]); out.append(d/f'cut{k}.png')
    for k in (2, 100, len(jpg)//2, len(jpg) - 2): (d/f'cut{k}.jpg').write_bytes(jpg[:k]); out.append(d/f'cut{k}.jpg')
    (d/'noise.png').write_bytes(rng.bytes(500)); (d/'header.png').write_bytes(b'\x89PNG\r\n\x1a\n' + rng.bytes(200))
    (d/'header.jpg').write_bytes(b'\xff\xd8\xff' + rng.bytes(300)); (d/'text.png').write_text('not an image')
    Image.new('L', (20_000, 20_000)).save(d/'bomb.png')  # 400 Mpx: refused from its header
    Image.new('RGB', (8, 8)).save(d/'bitmap.bmp'); (d/'emptydir').mkdir(); os.mkfifo(d/'fifo.png')  # a FIFO: refused, not waited on
    return out + [d/n for n in ('noise.png', 'header.png', 'header.jpg', 'text.png', 'bomb.png', 'bitmap.bmp', 'nowhere.png', 'emptydir', 'fifo.png')]

def _bad_bundles(d:Path, src:Path)->list:
    "Bundles the host must refuse: a tampered model, a newer or malformed manifest, a symlinked model, a text bundle, no graph."
    def copy(name, change):
        b = d/name; shutil.copytree(src, b); change(b); return b
    def edit(f): return lambda b: (b/'manifest.json').write_text(json.dumps(f(json.loads((b/'manifest.json').read_text()))))
    def flip(b): data = bytearray((b/'model.onnx').read_bytes()); data[len(data)//2] ^= 1; (b/'model.onnx').write_bytes(bytes(data))
    def link(b): (b/'model.onnx').rename(d/'outside.onnx'); (b/'model.onnx').symlink_to(d/'outside.onnx')
    return [copy('tampered', flip), copy('newer', edit(lambda m: {**m, 'schema_version': 2})), copy('text', edit(lambda m: {**m, 'preprocessing': {**m['preprocessing'], 'kind': 'text'}})),
            copy('nograph', edit(lambda m: {**m, 'preprocessing': {**m['preprocessing'], 'graph': None, 'graph_unavailable': 'the resample filter LANCZOS has no ONNX Resize'}})),
            copy('malformed', lambda b: (b/'manifest.json').write_text('{"schema": ')), copy('nomodel', lambda b: (b/'model.onnx').unlink()),
            copy('symlink', link), copy('labels', edit(lambda m: {**m, 'labels': m['labels'][:-1]})), d/'nobundle']

def _bad_csvs(d:Path)->list:
    "The project's bad rows (tests/test_fuzz.py's test_bad_rows and test_cli_never_shows_a_traceback) as CSV files."
    head = 'island,sex,bill_length_mm,bill_depth_mm,body_mass_g\n'
    cases = dict(inf='Dream,male,inf,18,3800\n', big='Dream,male,1e999,18,3800\n', f32='Dream,male,1e39,18,3800\n', text='Dream,male,long,18,3800\n',
                 minf='Dream,male,40,-inf,3800\n', wide='Dream,male,40,18,3800,extra\n', quote='"Dream,male,40,18,3800\n',
                 huge='x'*200_000 + ',male,40,18,3800\n')
    out = []
    for k,v in cases.items(): (d/f'{k}.csv').write_text(head + v); out.append(d/f'{k}.csv')
    (d/'nocol.csv').write_text('island,sex\nDream,male\n'); (d/'norows.csv').write_text(head)
    (d/'latin1.csv').write_bytes((head + 'D\xe9ream,male,40,18,3800\n').encode('latin-1')); (d/'rows.txt').write_text(head)
    return out + [d/'nocol.csv', d/'norows.csv', d/'latin1.csv', d/'rows.txt', d/'nowhere.csv']

@pytest.fixture(scope='module')
def bad_cases(bundles, tmp_path_factory):
    "(bundle, item) pairs that must each give one error message and exit status 1."
    d = tmp_path_factory.mktemp('cppbad')
    img,tab = bundles['rgb-crop'],bundles['tabular']
    good = next((img.parent/'..').glob('**/*.png'), None) or next(Path(img).parent.parent.rglob('*.png'))
    for sub in ('imgs', 'bundles', 'csvs'): (d/sub).mkdir()
    return ([(img, f) for f in _bad_images(d/'imgs', Path(good))] + [(b, good) for b in _bad_bundles(d/'bundles', img)]
            + [(tab, f) for f in _bad_csvs(d/'csvs')])

def _check_refusals(dist, cases, env=None)->int:
    for b,item in cases:
        r = cpp(dist, b, item, env=env, timeout=120)
        assert r.returncode == 1, (b.name, item, r.returncode, r.stdout, r.stderr[-2000:])
        lines = r.stderr.splitlines()
        assert lines[0].startswith('xdeploy-predict: ') and len(lines) == 2 and lines[1].startswith('Fix: '), (b.name, item, r.stderr[-2000:])
        j = cpp(dist, b, item, '--json', env=env, timeout=120)
        assert j.returncode == 1 and len(j.stdout.splitlines()) == 1 and set(json.loads(j.stdout)) == {'error', 'fix', 'command'}, (item, j.stdout)
    return len(cases)

def test_bad_input_is_one_message(dist, bad_cases):
    n = _check_refusals(dist, bad_cases)
    print(f"\n{n} bad images, bundles and CSV files: one message and exit status 1 each, no crash")

def test_bad_input_under_sanitizers(bad_cases, bundles, images):
    "An AddressSanitizer + UBSan build runs the bad-input set and a good prediction without a report."
    asan = host_build(sanitize=True)
    env = dict(ASAN_OPTIONS='detect_leaks=1:abort_on_error=0:exitcode=23', UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1:exitcode=24')
    _check_refusals(asan, bad_cases, env)
    for name,items in (('segmentation', images[:4]), ('gray', images), ('rgb-pad', images)):  # every decoder path, good input
        r = cpp(asan, bundles[name], *items, '--json', env=env, timeout=300)
        assert r.returncode == 0 and 'Sanitizer' not in r.stderr, r.stderr[-3000:]
    r = cpp(asan, bundles['tabular'], next(f for b,f in bad_cases if f.name == 'inf.csv'), env=env)
    assert r.returncode == 1 and 'Sanitizer' not in r.stderr

def test_xdeploy_cpp_build_runs_with_an_empty_environment(dist, bundles, images, tmp_path):
    b = bundles['rgb-pad']
    run('xdeploy', 'cpp', b, tmp_path/'app', '--build')
    app = tmp_path/'app'
    for f in ('CMakeLists.txt', 'include/xdeploy/predictor.hpp', 'cli/xdeploy_predict.cpp', 'qt/main.cpp', 'bundle/manifest.json',
              'third_party/onnxruntime/include/onnxruntime_cxx_api.h', 'third_party/onnxruntime/lib/libonnxruntime.so.1',
              'dist/bin/xdeploy-predict', 'dist/lib/libonnxruntime.so.1', 'dist/bundle/model.onnx'): assert (app/f).is_file(), f
    r = subprocess.run(['env', '-i', str(app/'dist'/'bin'/'xdeploy-predict'), str(app/'dist'/'bundle'), *map(str, images[:3]), '--json'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    want = python_json(b, images[:3])
    assert_same(json.loads(r.stdout), want)
    assert run('xdeploy', 'cpp', b, app, check=False).returncode == 1  # exists: refused without --overwrite
    bad = tmp_path/'nograph'; shutil.copytree(b, bad)
    m = json.loads((bad/'manifest.json').read_text())
    m['preprocessing'].update(graph=None, graph_unavailable='the resample filter LANCZOS has no ONNX Resize mode')
    (bad/'manifest.json').write_text(json.dumps(m))
    r = run('xdeploy', 'cpp', bad, tmp_path/'never', check=False)
    assert r.returncode == 1 and 'LANCZOS' in r.stderr and not (tmp_path/'never').exists(), r.stderr

def test_qt_app_shows_the_label(dist, bundles, images, tmp_path):
    qt = dist/'bin'/'xdeploy-qt'
    if not qt.is_file(): pytest.fail("xdeploy-qt was not built: install Qt 6 (Debian: qt6-base-dev), as tools/test.sh does")
    b,img = bundles['rgb-crop'],images[1]
    want = json.loads(cpp(dist, b, img, '--json').stdout)[0]
    r = subprocess.run([str(qt), str(b), str(img), '--screenshot', str(tmp_path/'shot.png')], capture_output=True, text=True, timeout=60,
                       env=dict(QT_QPA_PLATFORM='offscreen', HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr + r.stdout
    first = r.stdout.splitlines()[0]
    assert first == f"{want['label']}  {want['probs'][want['index']]*100:.1f}%", (first, want)
    shot = np.asarray(Image.open(tmp_path/'shot.png').convert('RGB'))
    assert shot.shape[0] >= 256 and len(np.unique(shot.reshape(-1, 3), axis=0)) > 50, "the screenshot is blank"
    print(f"\nQt app shows {first!r}; screenshot {shot.shape[1]}x{shot.shape[0]}")

def test_expected_bundle_digest(dist, bundles, images):
    "--expect-digest: the sha256 of manifest.json's bytes (hex, or 'sha256:hex'); any other bundle is refused."
    import hashlib
    b = bundles['rgb-squish']
    digest = hashlib.sha256((b/'manifest.json').read_bytes()).hexdigest()
    for d in (digest, f'sha256:{digest}', digest.upper()): assert cpp(dist, b, images[0], '--expect-digest', d).returncode == 0
    r = cpp(dist, b, images[0], '--expect-digest', 'sha256:' + '0'*64)
    assert r.returncode == 1 and digest in r.stderr and r.stderr.count('\n') == 2, r.stderr
    assert json.loads(cpp(dist, b, '--describe').stdout)['manifest'] == f'sha256:{digest}'

def _decoded(dist:Path, f:Path, mode:str)->np.ndarray:
    r = subprocess.run([str(dist/'bin'/'xdeploy-predict'), '--decode', str(f), '--mode', mode], capture_output=True, timeout=60, env={})
    assert r.returncode == 0, r.stderr
    import io
    return np.asarray(Image.open(io.BytesIO(r.stdout)))

def test_decoded_pixels_equal_pillows(dist, images):
    "PNG (every mode) and JPEG (baseline, progressive, gray, CMYK) files: libpng and libjpeg-turbo give Pillow's pixels exactly."
    counts = dict(png=0, jpeg=0)
    for f in images:
        for mode in ('RGB', 'L'):
            want = np.asarray(Image.open(f).convert(mode))
            got = _decoded(dist, f, mode)
            assert got.shape == want.shape and np.array_equal(got, want), (f.name, mode, int(np.abs(got.astype(int) - want).max()))
            counts['png' if f.suffix == '.png' else 'jpeg'] += 1
    print(f"\ndecoded pixels equal to Pillow's: {counts['png']} PNG and {counts['jpeg']} JPEG decodes (RGB and L), max difference 0")

def test_qt_app_passes_pixels(dist, bundles, images, tmp_path):
    "--pixels: Qt decodes the image and the app passes its pixels (rows copied from padded RGB888 scanlines): the same answer."
    qt = dist/'bin'/'xdeploy-qt'
    if not qt.is_file(): pytest.fail("xdeploy-qt was not built: install Qt 6 (Debian: qt6-base-dev), as tools/test.sh does")
    env = dict(QT_QPA_PLATFORM='offscreen', HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    for name in ('rgb-crop', 'gray'):
        for img in (images[0], images[4]):  # PNG files of odd widths (51, 517 pixels: padded RGB888 rows)
            want = json.loads(cpp(dist, bundles[name], img, '--json').stdout)[0]
            r = subprocess.run([str(qt), str(bundles[name]), str(img), '--pixels', '--screenshot', str(tmp_path/'s.png')],
                               capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 0 and r.stdout.splitlines()[0] == f"{want['label']}  {want['probs'][want['index']]*100:.1f}%", (name, img, r.stdout, r.stderr)

def test_manifest_mutations_never_crash(dist, bundles, images, tmp_path):
    """tests/test_fuzz.py's structured manifest mutations: each either predicts or gives one message and exit status 1, never a
    crash; where both hosts predict, they agree, and the mutations only the C++ host accepts are counted."""
    from test_fuzz import _mutate
    from xdeploy_nb.core import XDeployError
    import random
    src = bundles['rgb-crop']
    base = json.loads((src/'manifest.json').read_text())
    d = tmp_path/'b'; shutil.copytree(src, d)
    rng,counts,laxer = random.Random(0),dict(refused=0, predicted=0),[]
    for i in range(200):
        m,kind,path = _mutate(base, rng)
        (d/'manifest.json').write_text(json.dumps(m))
        r = cpp(dist, d, images[0], '--json', timeout=60)
        if r.returncode == 1 and set(json.loads(r.stdout)) == {'error', 'fix', 'command'}: counts['refused'] += 1; continue
        assert r.returncode == 0, (i, kind, path, r.returncode, r.stdout[-1500:], r.stderr[-1500:])
        counts['predicted'] += 1
        try: want = python_json(d, [images[0]])
        except XDeployError: laxer.append((kind, path)); continue
        assert_same(json.loads(r.stdout), want)
    print(f"\n200 manifest mutations: {counts}, crashes 0; accepted by the C++ host alone: {len(laxer)} {sorted(set(laxer))[:8]}")

def test_executorch_model_pte(dist, shapes, images, tmp_path):
    "A build with ExecuTorch (the executorch wheel's C++ SDK) runs model.pte and gives the Python Predictor's ExecuTorch answers."
    et = host_build(executorch=True)
    path,df = shapes
    b = tmp_path/'pte'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_bundle(_image_learner(path, df, tfm=Resize(20, method='pad')), b, formats=('onnx', 'executorch'), n_items=4)
    r = cpp(et, b, *images, '--format', 'executorch', '--json')
    assert r.returncode == 0 and not r.stderr, r.stderr + r.stdout
    assert_same(json.loads(r.stdout), python_json(b, images, format='executorch'))
    r = cpp(et, b, images[0], '--format', 'executorch', '--max-pixels', '10')
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 2, r.stderr  # ExecuTorch logs nothing: one message
    r = cpp(dist, b, images[0], '--format', 'executorch')  # the build without it says how to get it
    assert r.returncode == 1 and 'without ExecuTorch' in r.stderr and len(r.stderr.splitlines()) == 2, r.stderr
