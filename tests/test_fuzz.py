"""Fuzzing, as an attacker and a careless user would: thousands of structured mutations of real manifests, bad table rows,
bad images and bad command lines, with fixed seeds. Anything but the project's own errors (`XDeployError`) fails the
test; so does an accepted manifest whose missing or mistyped preprocessing value changed the answer, and a prediction made
from non-finite numbers. Each test prints its counts (cases, refused, accepted, crashes, silent wrong answers)."""
import io, json, math, random, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, pytest
from PIL import Image
import xdeploy_nb.train  # fastai, quietly
from conftest import console_script
from xdeploy_nb.core import XDeployError
from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
from xdeploy_nb.train import image_dls, image_learner, tabular_dls, tabular_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor

@pytest.fixture(scope='module')
def bundles(tmp_path_factory):
    "An image bundle and a tabular bundle of tiny trained models, and a valid item for each."
    d = tmp_path_factory.mktemp('fuzz')
    folder = make_image_folder(d/'shapes', classes=3, n_train=12, n_valid=6, size=24)
    learn = image_learner(image_dls(folder, size=16, bs=6))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)
    export_bundle(learn, d/'image', formats=('onnx',))
    pen = load_penguins()
    tlearn = tabular_learner(tabular_dls(pen, 'species', PENGUIN_CATS, PENGUIN_CONTS))
    with tlearn.no_bar(), tlearn.no_logging(): tlearn.fit_one_cycle(1, 1e-2)
    export_bundle(tlearn, d/'tabular', formats=('onnx',))
    row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k,v in pen.drop(columns='species').iloc[0].to_dict().items()}
    return dict(image=(d/'image', str(learn.dls.valid_ds.items[0])), tabular=(d/'tabular', row), root=d)

POOL = [None, True, False, 0, -1, 1, 3, 2**63, 1e39, -0.5, 0.5, float('nan'), float('inf'), '', 'x', 'RGB', 'YCbCr', 'crop',
        'batch', 'softmax', '../model.onnx', 'a'*300, [], [1], ['x'], [[[]]], {}, {'op': 'resize'}, {'a': 1}]

def _paths(obj, path=()):
    "Every path into a JSON value."
    yield path
    if isinstance(obj, dict):
        for k,v in obj.items(): yield from _paths(v, path + (k,))
    elif isinstance(obj, list):
        for i,v in enumerate(obj): yield from _paths(v, path + (i,))

def _mutate(m:dict, rng:random.Random)->tuple:
    "A copy of `m` with one structured mutation, and `(kind, path)` of it."
    m = json.loads(json.dumps(m))
    path = rng.choice([p for p in _paths(m) if p])
    parent = m
    for k in path[:-1]: parent = parent[k]
    key,op = path[-1],rng.random()
    if op < 0.3 and isinstance(parent, dict): del parent[key]; kind = 'delete'
    elif op < 0.4 and isinstance(parent, list): parent.insert(key, parent[key]); kind = 'duplicate'
    elif op < 0.5 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = parent[key] + rng.choice([-1, 1, 1e-3, -1e9]); kind = 'nudge'
    else: parent[key] = rng.choice(POOL); kind = 'replace'
    return m,kind,path

def _at(m, path):
    for k in path: m = m[k]
    return m

def _answer(p, item):
    d = p.predict(item)
    assert all(math.isfinite(v) for v in d.get('probs', [])), d
    return d.get('index'),np.round(d.get('probs', []), 5).tolist()

@pytest.mark.parametrize('which,n', [('image', 1500), ('tabular', 1200)])
def test_manifest_mutations(bundles, tmp_path, which, n):
    src,item = bundles[which]
    base = json.loads((src/'manifest.json').read_text())
    want = _answer(Predictor(src, device='cpu'), item)
    d = tmp_path/'b'; shutil.copytree(src, d)
    rng,counts,silent,t0 = random.Random(0),dict(refused=0, accepted=0, same=0),[],time.perf_counter()
    for i in range(n):
        m,kind,path = _mutate(base, rng)
        (d/'manifest.json').write_text(json.dumps(m))
        try:
            got = _answer(Predictor(d, device='cpu'), item)
        except XDeployError: counts['refused'] += 1; continue
        except Exception as e: pytest.fail(f"case {i}: {kind} at {path} crashed: {type(e).__name__}: {e}")
        counts['accepted'] += 1
        if got == want: counts['same'] += 1
        elif path[0] in ('preprocessing', 'inputs', 'outputs') and kind in ('delete', 'replace') and path[2:3] != ('categories',):
            silent.append((kind, path, m))  # a vocabulary is data: a different one gives different answers, as it says
    print(f"\n{which}: {n} manifest mutations in {time.perf_counter()-t0:.1f} s: {counts}, crashes 0, silent wrong answers {len(silent)}")
    assert not silent, sorted({(k, p, repr(_at(m, p))) for k,p,m in silent})

def test_raw_manifest_damage(bundles, tmp_path):
    "Truncated, deeply nested, non-JSON and huge manifests: refused with `ManifestError`."
    src,_ = bundles['image']
    text = (src/'manifest.json').read_text()
    d = tmp_path/'b'; shutil.copytree(src, d)
    cuts = [text[:k] for k in range(0, len(text.rstrip()), max(1, len(text)//200))]  # every cut short of the closing brace
    cases = cuts + ['[' * 100_000 + ']' * 100_000, '{"schema": ' * 50_000,
                    '\xff\xfe garbage', 'null', '[]', '"x"', text.replace('"model.onnx"', '"' + 'm'*5000 + '"')]
    for i,c in enumerate(cases):
        (d/'manifest.json').write_bytes(c.encode('utf-8', 'surrogateescape') if isinstance(c, str) else c)
        try: Predictor(d, device='cpu')
        except XDeployError: continue
        pytest.fail(f"damaged manifest {i} accepted: {c[:120]!r}...{c[-120:]!r} ({len(c)} characters)")
    print(f"\n{len(cases)} damaged manifest files: all refused, crashes 0")

def _bad_value(rng):
    return rng.choice([None, float('nan'), float('inf'), -float('inf'), '1e999', 1e39, -1e39, '', 'x', '12', 12, -0.0, True,
                       [1], {'a': 1}, b'bytes', object(), 10**30, np.float32(1), np.int64(3), np.nan])

def test_bad_rows(bundles):
    import pandas as pd
    p,(_,row) = Predictor(bundles['tabular'][0], device='cpu'),bundles['tabular']
    rng,counts = random.Random(1),dict(refused=0, predicted=0)
    for i in range(1500):
        r = dict(row)
        for c in rng.sample(list(r), rng.randint(1, 3)):
            if rng.random() < 0.1: del r[c]
            else: r[c] = rng.choice([pd.NA, _bad_value(rng)])
        try: d = p.predict(r)
        except XDeployError: counts['refused'] += 1; continue
        except Exception as e: pytest.fail(f"row {r}: {type(e).__name__}: {e}")
        assert d['label'] in p.manifest['labels'] and all(math.isfinite(v) for v in d['probs']), (r, d)
        counts['predicted'] += 1
    for bad in (5, 'rows', [[1, 2]], [None], b'x', {'a': [1, 2]}):
        with pytest.raises(XDeployError): p.predict_batch(bad)
    print(f"\n1500 bad rows: {counts}, crashes 0, labels from non-finite values 0")

def test_bad_images(bundles, tmp_path):
    p,(_,good) = Predictor(bundles['image'][0], device='cpu'),bundles['image']
    rng,cases = np.random.default_rng(2),[]
    for dtype in (np.uint8, np.float32, np.int64, np.bool_, np.float16):
        for shape in ((), (5,), (0, 4), (4, 0, 3), (8, 8), (8, 8, 2), (8, 8, 5), (3, 8, 8), (1, 2, 8, 8)):
            cases.append(rng.integers(0, 255, shape).astype(dtype) if shape else np.array(1, dtype))
    png = Path(good).read_bytes()
    cases += [png[:k] for k in (0, 8, 16, 33, 60, len(png)//2)] + [rng.bytes(500), b'\x89PNG\r\n\x1a\n' + rng.bytes(200)]
    big = tmp_path/'bomb.png'
    Image.new('L', (20_000, 20_000)).save(big)  # 400 Mpx: refused from its header
    cases += [str(big), str(tmp_path/'nowhere.png'), str(tmp_path), 12, None, [1, 2], Image.new('CMYK', (8, 8)), Image.new('I;16', (8, 8))]
    for c in cases:
        try: d = p.predict(c)
        except XDeployError: continue
        except Exception as e: pytest.fail(f"{type(c).__name__} {getattr(c, 'shape', '')}: {type(e).__name__}: {e}")
        assert math.isfinite(sum(d['probs']))
    print(f"\n{len(cases)} bad images: crashes 0")

def test_cli_never_shows_a_traceback(bundles, tmp_path):
    xdeploy = console_script('xdeploy')
    img,tab = bundles['image'][0],bundles['tabular'][0]
    (tmp_path/'empty').mkdir(); (tmp_path/'x.csv').mkdir()
    (tmp_path/'latin1.csv').write_bytes('island,sex\nD\xe9ream,male\n'.encode('latin-1'))
    (tmp_path/'wide.csv').write_text('island,sex\n' + 'x'*200_000 + ',male\n')
    (tmp_path/'notpickle.pkl').write_text('hello')
    bad_manifest = tmp_path/'badm'; shutil.copytree(img, bad_manifest); (bad_manifest/'manifest.json').write_text('{')
    cases = [['predict', img, tmp_path/'empty'], ['predict', tab, tmp_path/'x.csv'], ['predict', tab, tmp_path/'latin1.csv'],
             ['predict', tab, tmp_path/'wide.csv'], ['predict', bad_manifest, tmp_path/'empty'], ['predict', img, tmp_path/'nowhere.png'],
             ['export', tmp_path/'notpickle.pkl', tmp_path/'out', '--items', tmp_path/'empty'], ['export', tmp_path/'none.pkl', tmp_path/'out'],
             ['bench', tmp_path/'nowhere'], ['predict', bad_manifest, tmp_path/'empty', '--json']]
    for argv in cases:
        r = subprocess.run([xdeploy, *map(str, argv)], capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and 'Traceback' not in r.stderr + r.stdout, (argv, r.stdout, r.stderr)
        if '--json' in argv: assert 'error' in json.loads(r.stdout), r.stdout
        else: assert r.stderr.startswith('xdeploy ') and 'Fix:' in r.stderr, (argv, r.stderr)
    print(f"\n{len(cases)} bad command lines: one message each, no traceback")
