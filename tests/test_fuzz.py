"""Fuzzing, as an attacker and a careless user would: thousands of structured mutations of real manifests, bad table rows,
bad images and bad command lines, with fixed seeds. Anything but the project's own errors (`XDeployError`) fails the
test; so does an accepted manifest whose missing or mistyped preprocessing value changed the answer, and a prediction made
from non-finite numbers. Each test prints its counts (cases, refused, accepted, crashes, silent wrong answers)."""
import base64, io, json, math, os, random, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pytest
from PIL import Image
import xdeploy_nb.train  # fastai, quietly
from conftest import console_script
from xdeploy_nb.core import XDeployError, bundle_digest
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

# ---------------------------------------------------------------- every host, the same corpus
# A host is a function: (cases) -> one verdict per case, {'verdict': 'answer', 'answers': [...]} | {'verdict': 'refused',
# 'error'} (the kit's error) | {'verdict': 'raw', 'error'} (anything else: a bug) | {'verdict': 'hang'}. A case is
# {id, bundle, items, options, reuse}, its items JSON with tags for what JSON cannot say (see xdeploy_nb/js/fuzz/host.mjs).
# A third host (the C++ command-line host, `xdeploy-predict BUNDLE ITEMS --json`) plugs in as one more entry of HOSTS: a
# function that runs it per case (bundle dir + items written as files) and maps its JSON answer or error line to a verdict,
# with {'verdict': 'skip'} for the cases it cannot take (pixel objects, rows it has no syntax for).
JS_DIR = Path(__file__).resolve().parent.parent/'xdeploy_nb'/'js'

def _untag(v):
    "A tagged JSON item as the Python value it stands for (a pixel object that no uint8 array can be: a dict, not an image)."
    if isinstance(v, list): return [_untag(x) for x in v]
    if not isinstance(v, dict): return v
    tag = v.get('$')
    if tag in ('nan', 'inf', '-inf'): return float(tag)
    if tag == 'undefined': return None
    if tag == 'bigint': return int(v['v'])
    if tag == 'bytes': return __import__('base64').b64decode(v['b64'])
    if tag == 'pixels':
        raw = np.frombuffer(__import__('base64').b64decode(v.get('b64', '')), np.uint8)
        w,h,c = v.get('width'),v.get('height'),v.get('channels', 4)
        ok = all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (w, h, c)) and raw.size == w*h*c
        dt = {'u8': np.uint8, 'u8c': np.uint8, 'u16': np.uint16, 'f32': np.float32, 'i32': np.int32}.get(v['type'])
        if not ok or dt is None: return dict(data=v['type'], width=w, height=h)
        a = raw.astype(dt).reshape(h, w, c)
        return a[..., 0] if c == 1 else a
    return {k: _untag(x) for k,x in v.items()}

def _answers(preds):
    return [dict(label=d.get('label'), index=d.get('index'), probs=np.round(d.get('probs', []), 5).tolist()) for d in preds]

def python_host(cases):
    "The Python Predictor (the image bundles' preprocessing graph: what the other hosts run) on each case."
    out,cache = [],{}
    for c in cases:
        key = json.dumps([c['bundle'], c.get('options', {})])
        try:
            p = cache.get(key) if c.get('reuse') else None
            if p is None:
                kw = dict(c.get('options', {}))
                p = Predictor(c['bundle'], device='cpu', preprocess=c.get('preprocess', 'pillow'), **kw)
                if c.get('reuse'): cache[key] = p
            out.append(dict(verdict='answer', answers=[] if c.get('items') is None else _answers(p.predict_batch(_untag(c['items'])))))
        except XDeployError as e: out.append(dict(verdict='refused', error=str(e)))
        except Exception as e: out.append(dict(verdict='raw', error=f"{type(e).__name__}: {e}"))
    return out

def node_host(cases, limit_ms=10_000):
    "The JS module under Node (onnxruntime-node, sharp): one process, each case with a time limit."
    f = Path(tempfile.mkdtemp())/'cases.json'
    f.write_text(json.dumps(dict(cases=cases, limit_ms=limit_ms)))
    try: r = subprocess.run(['node', 'fuzz/host.mjs', str(f)], cwd=JS_DIR, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e: r = e
    got = {d['id']: d for d in map(json.loads, (r.stdout or '').splitlines() if isinstance(r.stdout, str) else [])}
    return [got.get(c['id'], dict(verdict='hang', error=(r.stderr or '')[-300:] if isinstance(r.stderr, str) else '')) for c in cases]

HOSTS = dict(python=python_host, node=node_host)

def _bundle_copy(src:Path, d:Path, manifest=None, raw:bytes=None)->str:
    "A bundle folder `d` with `src`'s files hard-linked (regular files, no copies) and its own manifest.json."
    d.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != 'manifest.json': os.link(f, d/f.name)
    (d/'manifest.json').write_bytes(raw if raw is not None else json.dumps(manifest).encode())
    return str(d)

def _px(arr=None, type='u8', width=None, height=None, channels=None, b64=None):
    "A tagged pixel object: `arr` (HxWxC uint8) as {data, width, height, channels}, or the fields given."
    if arr is not None: height,width,channels,b64 = *arr.shape,base64.b64encode(arr.tobytes()).decode()
    return {'$': 'pixels', 'type': type, 'b64': b64 or '', 'width': width, 'height': height, 'channels': channels}

def _cause_cases(bundles, root:Path)->list:
    "A case for each cause of issue 27: (name, case) pairs."
    img,png = Path(bundles['image'][0]),bundles['image'][1]
    tab,row = Path(bundles['tabular'][0]),bundles['tabular'][1]
    m = json.loads((img/'manifest.json').read_bytes())
    text = (img/'manifest.json').read_text()
    cases,n = [],iter(range(10**6))
    def add(name, bundle, items=None, **options):
        cases.append((name, dict(bundle=str(bundle), items=items, options=options, cause=True, preprocess='pillow' if bundle == tab else 'graph')))
    def edited(f): d = json.loads(json.dumps(m)); f(d); return _bundle_copy(img, root/f'c{next(n)}', d)
    def raw(b:bytes): return _bundle_copy(img, root/f'c{next(n)}', raw=b)
    def linked(name, target):
        d = Path(_bundle_copy(img, root/f'c{next(n)}', m)); (d/name).unlink()
        os.symlink(target, d/name) if target != 'fifo' else os.mkfifo(d/name)
        return str(d)
    arr = np.asarray(Image.open(png).convert('RGB'))
    add('manifest.json -> /dev/zero', linked('manifest.json', '/dev/zero'))
    add('model.onnx -> /dev/urandom', linked('model.onnx', '/dev/urandom'))
    add('model.onnx a FIFO', linked('model.onnx', 'fifo'))
    add('manifest.json a FIFO', linked('manifest.json', 'fifo'))
    add('model.onnx: a symlink out of the bundle', linked('model.onnx', img/'model.onnx'))
    add('inputs[0].shape[0] = 100000', edited(lambda d: d['inputs'][0]['shape'].__setitem__(0, 100_000)), [_px(arr)])
    add('inputs[0].shape[0] = 2**31', edited(lambda d: d['inputs'][0]['shape'].__setitem__(0, 2**31)), [_px(arr)])
    for k in ('constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'):
        add(f'{k!r} in a closed object', raw(text.replace('"op": "resize"', f'"{k}": 1, "op": "resize"', 1).encode()), [_px(arr)])
    add('NaN in manifest.json', raw(text.replace('"size":', '"size": NaN, "x":', 1).encode()))
    add('Infinity in manifest.json', raw(text.replace('"size":', '"size": Infinity, "x":', 1).encode()))
    add('manifest.json truncated', raw(text[:len(text)//2].encode()))
    add('deeply nested', raw(b'[' * 100_000 + b']' * 100_000))
    add('duplicate key', raw(text.replace('{', '{"task": "multi_label", ', 1).encode()))
    add('invalid UTF-8 in a label', raw(text.replace(f'"{m["labels"][0]}"', '"\\u0000"', 1).encode().replace(b'\\u0000', b'\xff\xfe')))
    add('a BOM before the JSON', raw(b'\xef\xbb\xbf' + text.encode()))
    add('nested 70 deep in an open object', raw(text.replace('"provenance": {', '"provenance": {"deep": ' + '[' * 70 + ']' * 70 + ',', 1).encode()))
    big = Path(raw(b'')); os.truncate(big/'manifest.json', 64 * 2**20 + 1)  # sparse: a manifest.json past the cap
    add('manifest.json over MANIFEST_MAX_BYTES', big)
    for k in range(0, len(text), len(text) // 40): add('manifest.json cut short (40 places)', raw(text[:k].encode()))
    add('a wrong output name', edited(lambda d: d['outputs'][0].__setitem__('name', 'nope')), [_px(arr)])
    add('pixels: Float32Array in 0..1', img, [_px(arr, type='f32')])
    add('pixels: Uint16Array', img, [_px(arr, type='u16')])
    add('pixels: plain Array', img, [_px(arr, type='array')])
    add('pixels: values above 255 (plain Array)', img, [{**_px(arr, type='array'), 'scale': 2}])
    add('pixels: a string', img, [_px(arr, type='string')])
    add('pixels: an array-like {length}', img, [_px(arr, type='arraylike')])
    add('pixels: width 1.5', img, [_px(width=1.5, height=2, channels=3, b64=base64.b64encode(bytes(9)).decode())])
    add('pixels: 1x1, 1 channel', img, [_px(np.zeros((1, 1, 1), np.uint8))])
    add('pixels: RGBA', img, [_px(np.zeros((4, 4, 4), np.uint8))])
    add('pixels: RGB', img, [_px(arr)])
    add('rows: a BigInt category', tab, [{**row, 'sex': {'$': 'bigint', 'v': '3'}}])
    add('rows: a huge BigInt number', tab, [{**row, 'bill_length_mm': {'$': 'bigint', 'v': str(10**400)}}])
    add('rows: an Infinity cell', tab, [{**row, 'bill_length_mm': {'$': 'inf'}}])
    add('image file: PNG path', img, [str(png)])
    add('image file: PNG bytes', img, [{'$': 'bytes', 'b64': base64.b64encode(Path(png).read_bytes()).decode()}])
    add('image file: truncated PNG', img, [{'$': 'bytes', 'b64': base64.b64encode(Path(png).read_bytes()[:60]).decode()}])
    for k in (0, 8, 16, 33, 60, len(Path(png).read_bytes()) // 2):
        add('image file: PNG cut short (6 places)', img, [{'$': 'bytes', 'b64': base64.b64encode(Path(png).read_bytes()[:k]).decode()}])
    add('image file: random bytes', img, [{'$': 'bytes', 'b64': base64.b64encode(random.Random(3).randbytes(300)).decode()}])
    add('image file: no such file', img, [str(root/'nowhere.png')])
    add('image file: a folder', img, [str(root)])
    perm = json.loads(json.dumps(m)); perm['labels'] = perm['labels'][1:] + perm['labels'][:1]
    permuted = _bundle_copy(img, root/'permuted', perm)
    digest = bundle_digest(img)
    add('labels permuted, digest pinned', permuted, [_px(arr)], digest=digest)
    add('labels permuted, no digest', permuted, [_px(arr)])
    add('the pinned bundle', img, [_px(arr)], digest=digest)
    add('a digest that is not one', img, [_px(arr)], digest='md5:x')
    return cases

def _corpus(bundles, root:Path, n_mut=500, n_rows=400)->list:
    "(name, case) pairs: the causes of issue 27, manifest mutations of both bundles, bad rows and bad pixel objects."
    cases = _cause_cases(bundles, root)
    rng = random.Random(5)
    for which in ('image', 'tabular'):
        src,item = Path(bundles[which][0]),bundles[which][1]
        base = json.loads((src/'manifest.json').read_bytes())
        good = [_px(np.asarray(Image.open(item).convert('RGB')))] if which == 'image' else [item]
        for i in range(n_mut):
            mm,kind,path = _mutate(base, rng)
            try: d = _bundle_copy(src, root/f'{which}{i}', mm)
            except ValueError: continue  # NaN/inf from the pool: no JSON
            cases.append((f'{which}: {kind} at {path}', dict(bundle=d, items=good, mutation=[which, kind, list(path)],
                                                                 preprocess='graph' if which == 'image' else 'pillow')))
    tab,row = bundles['tabular']
    tag = lambda v: {'$': 'nan'} if isinstance(v, float) and math.isnan(v) else {'$': 'inf' if v > 0 else '-inf'} \
        if isinstance(v, float) and math.isinf(v) else {'$': 'bigint', 'v': str(v)} if isinstance(v, int) and abs(v) > 2**53 else v
    for i in range(n_rows):
        r = dict(row)
        for c in rng.sample(list(r), rng.randint(1, 3)):
            if rng.random() < 0.1: del r[c]
            else: r[c] = tag(rng.choice([None, float('nan'), float('inf'), -float('inf'), '1e999', 1e39, -1e39, '', 'x', '12', 12,
                                         -0.0, True, [1], {'a': 1}, 10**30, 3, 'Biscoe', 'male']))
        cases.append((f'row {i}: {r}', dict(bundle=str(tab), items=[r], reuse=True)))
    img = bundles['image'][0]
    g = np.random.default_rng(2)
    for t in ('u8', 'u8c', 'f32', 'u16', 'i32', 'string', 'arraylike', 'array'):
        for shape in ((8, 8, 3), (8, 8, 1), (8, 8, 4), (8, 8, 2), (3, 8, 8), (1, 1, 3), (0, 4, 3)):
            cases.append((f'pixels {t} {shape}', dict(bundle=str(img), items=[_px(g.integers(0, 255, shape).astype(np.uint8), type=t)],
                                                                 reuse=True, preprocess='graph')))
    for i,(_, c) in enumerate(cases): c['id'] = i
    return cases

def _same(a:dict, b:dict)->bool:
    "Two verdicts alike: both refused, or the same labels with probabilities within 1e-4."
    if a['verdict'] != b['verdict']: return False
    if a['verdict'] != 'answer': return True
    return len(a['answers']) == len(b['answers']) and all(x['label'] == y['label'] and np.allclose(x['probs'], y['probs'], atol=1e-4)
                                                          for x,y in zip(a['answers'], b['answers']))

def test_every_host_same_verdicts(bundles, tmp_path):
    """The corpus through every host: 0 raw errors, 0 hangs, and each host's verdict Python's (refused, or the same answer);
    where they differ, a mutated manifest one host answers must answer as the unmutated bundle does (else it is a silent
    wrong answer), and the difference fails the test too. Prints cases, verdict counts and seconds per host."""
    corpus = _corpus(bundles, tmp_path/'corpus')
    cases = [c for _,c in corpus]
    got = {}
    for name,host in HOSTS.items():
        t0 = time.perf_counter(); got[name] = host(cases)
        counts = {v: sum(g['verdict'] == v for g in got[name]) for v in ('answer', 'refused', 'raw', 'hang')}
        print(f"\n{name}: {len(cases)} cases in {time.perf_counter()-t0:.1f} s: {counts}")
    base = {w: python_host([dict(id=0, bundle=str(bundles[w][0]), items=c['items'], preprocess=c['preprocess'])])[0] for w in ('image', 'tabular')
            for c in [next(c for _,c in corpus if c.get('mutation', [None])[0] == w)]}
    bad,differ = [],[]
    for (name_,c),py in zip(corpus, got['python']):
        for host,res in got.items():
            r = res[c['id']]
            if r['verdict'] == 'skip': continue  # a case this host cannot take (a command-line host: pixel objects)
            if r['verdict'] in ('raw', 'hang'): bad.append((host, name_, r)); continue
            if host == 'python' or _same(r, py): continue
            differ.append(f"{host} {r['verdict']}, python {py['verdict']}: {name_}: {(r.get('error') or py.get('error') or '')[:160]!r}")
            if c.get('mutation') and r['verdict'] != 'answer': continue  # refused where Python answered: clear, not wrong
            if c.get('mutation') and _same(r, base[c['mutation'][0]]): continue  # the unmutated bundle's answer
            bad.append((host, name_, r, py))
    causes = {}
    for name_,c in corpus:
        if c.get('cause'): causes.setdefault(name_, set()).add(tuple(f"{h} {got[h][c['id']]['verdict']}" for h in got))
    print('\n' + '\n'.join(f"  {k}: {', '.join(map(' / '.join, v))}" for k,v in causes.items()))
    print(f"verdicts that differ from Python's: {len(differ)}; raw errors, hangs and silent wrong answers: {len(bad)}"
          + ''.join(f"\n  {d}" for d in differ[:10]))
    assert not bad and not differ, "\n".join(map(str, bad[:20] + differ[:20]))
    js = (JS_DIR/'xdeploy.mjs').read_text()  # the limits every host shares
    from xdeploy_nb.core import MANIFEST_MAX_BYTES, MAX_JSON_DEPTH
    assert f'MANIFEST_MAX_BYTES = 64 * 1024 * 1024;' in js and MANIFEST_MAX_BYTES == 64 * 1024 * 1024
    assert f'MAX_JSON_DEPTH = {MAX_JSON_DEPTH};' in js
