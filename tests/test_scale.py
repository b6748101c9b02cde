"""Ray (`xdeploy_nb.hosts.ray`): batch prediction with Ray Data and an HTTP service with Ray Serve, on a local Ray cluster of
2 CPUs started once for the module (and shut down after it). Every prediction is compared with the `Predictor` in this
process; bad input gets a 4xx. Every test runs under a time limit (SIGALRM), so a Ray deadlock fails instead of hanging;
all traffic goes to 127.0.0.1. (`xdeploy serve` in a process of its own: tests/test_scale_cli.py.)"""
import json, signal, socket, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
import numpy as np, pytest

import pandas as pd, ray  # the serve extra, which dev includes
from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
from xdeploy_nb.train import image_dls, tabular_dls, trained_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.hosts.ray import predict_dataset, serve, start_ray
from xdeploy_nb.cli import main
from conftest import one_sided_tabular

pytestmark = pytest.mark.slow(seconds=50)  # about how long this module takes (measured on an idle 2-core machine)

LIMITS = dict(test_predict_dataset_images=150, test_predict_dataset_table=90, test_predict_dataset_one_sided_tables=120,
              test_cli_predict_ray=90, test_serve=180, test_text_and_collab_on_ray=150)  # seconds, a loaded 2-CPU machine's

@contextmanager
def time_limit(seconds:float, what:str):
    "Raise TimeoutError in the main thread after `seconds` (SIGALRM): a Ray call that never returns fails the test."
    def expired(signum, frame): raise TimeoutError(f"{what} ran over its limit of {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try: yield
    finally: signal.setitimer(signal.ITIMER_REAL, 0); signal.signal(signal.SIGALRM, old)

@pytest.fixture(autouse=True)
def limit(request):
    with time_limit(LIMITS.get(request.node.originalname, 60), request.node.name): yield

@pytest.fixture(scope='module')
def cluster():
    with time_limit(150, 'ray.init'):  # `ray.init(num_cpus=2, include_dashboard=False, ...)`, tried again if its raylet is slow to register
        start_ray(num_cpus=2)
    yield ray
    with time_limit(60, 'ray.shutdown'):
        from ray import serve as rs
        rs.shutdown(); ray.shutdown()

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny image bundle, 300 generated images (as files), and a tabular bundle of the penguins."
    root = tmp_path_factory.mktemp('scale')
    learn = trained_learner(image_dls(make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=24), size=16, bs=8), epochs=2)
    export_bundle(learn, root/'image', formats=('onnx',))
    images = sorted(str(f) for f in make_image_folder(root/'many', classes=3, n_train=0, n_valid=100, size=24).rglob('*.png'))
    penguins = load_penguins()
    export_bundle(trained_learner(tabular_dls(penguins, 'species', PENGUIN_CATS, PENGUIN_CONTS), epochs=2), root/'tabular', formats=('onnx',))
    return dict(root=root, image=root/'image', images=images, tabular=root/'tabular', penguins=penguins)

def _preds(df:pd.DataFrame)->list:
    "The prediction dicts of a predictions table, in its row order, as `Predictor` returns them."
    return [{k: v.tolist() if hasattr(v, 'tolist') else v for k,v in r.items() if k not in ('item', 'error')} for r in df.to_dict('records')]

def test_predict_dataset_images(cluster, data, tmp_path):
    "300 images through an actor pool equal the Predictor's predictions exactly; a broken file gets its error, in Parquet too."
    t0 = time.perf_counter()
    got = predict_dataset(data['image'], data['images'], batch_size=32).to_pandas().sort_values('item')
    assert got['item'].tolist() == data['images'] and got['error'].isna().all()
    assert _preds(got) == Predictor(data['image']).predict_batch(data['images'])
    bad = tmp_path/'broken.png'; bad.write_bytes(b'not a png')
    out = predict_dataset(data['image'], [*data['images'][:5], bad], out=tmp_path/'preds.parquet', actors=1)
    written = pd.read_parquet(out).set_index('item')
    assert 'Pillow cannot identify this as an image' in written.loc[str(bad), 'error'] and pd.isna(written.loc[str(bad), 'label'])
    assert written.loc[data['images'][:5], 'error'].isna().all()
    print(f"300 images in {time.perf_counter() - t0:.1f} s")

def test_predict_dataset_table(cluster, data, tmp_path):
    "The penguins, from a DataFrame and from a CSV file (written as CSV), equal the Predictor's predictions."
    penguins = data['penguins']
    want = Predictor(data['tabular']).predict_batch(penguins)
    got = predict_dataset(data['tabular'], penguins, actors=1).to_pandas().sort_values('item')
    assert got['item'].tolist() == list(range(len(penguins))) and _preds(got) == want
    penguins.to_csv(tmp_path/'penguins.csv', index=False)
    out = predict_dataset(data['tabular'], tmp_path/'penguins.csv', out=tmp_path/'preds.csv', actors=1)
    csv = pd.concat(pd.read_csv(f) for f in out.glob('*.csv')).sort_values('item')
    assert csv['label'].tolist() == [d['label'] for d in want]
    assert np.abs(np.array([json.loads(p) for p in csv['probs']]) - np.array([d['probs'] for d in want])).max() <= 1e-12

def _text_and_collab(root:Path)->tuple:
    "A tiny text classifier (fastai's BaseTokenizer, a one-layer AWD_LSTM) and a collab model, exported; texts and rows for them."
    from fastai.collab import CollabDataLoaders, collab_learner
    from fastai.text.all import AWD_LSTM, BaseTokenizer, TextDataLoaders, awd_lstm_clas_config, text_classifier_learner
    rng = np.random.default_rng(0)
    texts = [' '.join(rng.choice(['good', 'bad', 'film', 'the', 'plot', 'great', 'awful'], rng.integers(2, 9))) for _ in range(60)]
    df = pd.DataFrame(dict(review=texts, label=['pos' if 'good' in t or 'great' in t else 'neg' for t in texts]))
    dls = TextDataLoaders.from_df(df, text_col='review', label_col='label', valid_pct=0.3, seed=0, bs=16, seq_len=8, tok_tfm=BaseTokenizer())
    learn = text_classifier_learner(dls, AWD_LSTM, pretrained=False, config=dict(awd_lstm_clas_config, emb_sz=8, n_hid=8, n_layers=1))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    export_bundle(learn, root/'text', formats=('onnx',))
    ratings = pd.DataFrame(dict(user=rng.integers(0, 20, 300), item=[f'm{i}' for i in rng.integers(0, 12, 300)], rating=rng.uniform(1, 5, 300)))
    learn = collab_learner(CollabDataLoaders.from_df(ratings, bs=64, seed=0), n_factors=4, y_range=(0.5, 5.5))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    export_bundle(learn, root/'collab', formats=('onnx',))
    rows = [dict(user=0, item='m1'), dict(user=3, item='m2'), dict(user=999, item='unseen'), dict(user=None, item='m3')]
    return root/'text',texts[:24] + ['', 'UNSEEN words'],root/'collab',rows

def test_text_and_collab_on_ray(cluster, tmp_path):
    """Text and collab bundles go through Ray as their kinds' `item_encoding` says (text: strings; collab: JSON rows, as
    tabular): predict_dataset equals the Predictor; a text request body is parsed as the service parses it."""
    from xdeploy_nb.hosts.ray import ray_kind
    text,texts,collab,rows = _text_and_collab(tmp_path)
    got = predict_dataset(text, texts, actors=1).to_pandas().sort_values('item')
    assert got['error'].isna().all() and _preds(got) == Predictor(text).predict_batch(texts)
    (tmp_path/'a.txt').write_text(texts[0])
    assert _preds(predict_dataset(text, tmp_path/'a.txt', actors=1).to_pandas()) == Predictor(text).predict_batch(texts[:1])
    kind = ray_kind(Predictor(text).manifest)
    assert kind.from_body('a good film'.encode(), 'text/plain') == (['a good film'], False)
    assert kind.from_body(b'["a", "b"]', 'application/json') == (['a', 'b'], True)
    got = predict_dataset(collab, rows, actors=1).to_pandas().sort_values('item')
    want = Predictor(collab).predict_batch(rows)
    assert got['error'].isna().all() and np.abs(got['value'].to_numpy() - [d['value'] for d in want]).max() <= 1e-6

def test_predict_dataset_one_sided_tables(cluster, tmp_path):
    "Tables without category columns, and without continuous ones (a zero-width input): Ray Data's predictions are the Predictor's."
    for which in ('cont', 'cat'):
        learn,df = one_sided_tabular(which)
        export_bundle(learn, tmp_path/which, formats=('onnx',))
        got = predict_dataset(tmp_path/which, df, actors=1).to_pandas().sort_values('item')
        assert _preds(got) == Predictor(tmp_path/which).predict_batch(df) and got['error'].isna().all(), which

def test_cli_predict_ray(cluster, data, tmp_path, capsys):
    "`xdeploy predict --engine ray` prints what the local engine prints, and writes Parquet with --out."
    files = data['images'][:12]
    main(['predict', str(data['image']), *files, '--json']); local = json.loads(capsys.readouterr().out)
    main(['predict', str(data['image']), *files, '--json', '--engine', 'ray']); remote = json.loads(capsys.readouterr().out)
    assert remote == local
    main(['predict', str(data['image']), *files, '--engine', 'ray', '--out', str(tmp_path/'p.parquet')])
    assert f"wrote 12 predictions to {tmp_path/'p.parquet'}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match='already exists'):
        main(['predict', str(data['image']), *files, '--engine', 'ray', '--out', str(tmp_path/'p.parquet')])

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def call(url:str, data:bytes=None, method:str=None, content_type:str='application/octet-stream')->tuple:
    "`(status, JSON body)` of one request."
    req = urllib.request.Request(url, data=data, method=method, headers={'Content-Type': content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r: return r.status,json.loads(r.read())
    except urllib.error.HTTPError as e: return e.code,json.loads(e.read())

def form(files:list, boundary:str='xdeploy-test')->tuple:
    "`(body, content type)` of a multipart/form-data request with one part per file, as `curl -F file=@...` sends it."
    part = lambda j, f: (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{j}.png"\r\n'
                         'Content-Type: image/png\r\n\r\n').encode() + f + b'\r\n'
    return b''.join(part(j, f) for j,f in enumerate(files)) + f'--{boundary}--\r\n'.encode(),f'multipart/form-data; boundary={boundary}'

def _multi_item_requests(url:str, files:list, want:list):
    """Several images per request (multipart/form-data), from concurrent clients with single-item requests between them:
    each request's answers in its parts' order; a bad part refuses its request whole (nothing answered for the others),
    and neither a concurrent request nor the next one is touched."""
    reqs = [files[i:i+5] for i in range(0, len(files), 5)]
    sends = [(form(r), i) for i,r in enumerate(reqs)] + [((f, 'image/png'), None) for f in files[:6]]
    with ThreadPoolExecutor(6) as ex: got = list(ex.map(lambda a: call(url + '/predict', a[0][0], content_type=a[0][1]), sends))
    assert got[:len(reqs)] == [(200, want[i:i+5]) for i in range(0, len(files), 5)]
    assert got[len(reqs):] == [(200, w) for w in want[:6]]
    with ThreadPoolExecutor(2) as ex:
        bad,good = ex.map(lambda fs: call(url + '/predict', form(fs)[0], content_type=form(fs)[1]),
                          [[files[0], b'not an image', files[1]], files[:3]])
    assert bad[0] == 400 and 'Item 1' in bad[1]['error'] and 'Pillow cannot identify' in bad[1]['error'] and bad[1]['fix'], bad
    assert set(bad[1]) == {'error', 'fix'} and good == (200, want[:3])
    body,ctype = form(files[:2])
    for data,ct,msg in [(body[:-10], ctype, 'cut short'), (body, 'multipart/form-data', 'names no boundary'),
                        (form([])[0], ctype, 'no parts')]:
        status,out = call(url + '/predict', data, content_type=ct)
        assert status == 400 and msg in out['error'] and out['fix'], (msg, status, out)

def test_serve(cluster, data):
    """Served on 127.0.0.1: the validation items (sent by 8 concurrent clients, so batched) and table rows are answered
    as the Predictor answers them; metadata and health; bad input is a 4xx with a message, and the service goes on."""
    valid = sorted(str(f) for f in (data['root']/'shapes'/'valid').rglob('*.png'))
    want = Predictor(data['image']).predict_batch(valid)
    s = serve(data['image'], port=free_port(), max_batch_size=4, batch_wait_ms=20, max_body_mb=1)
    try:
        assert s.url.startswith('http://127.0.0.1:')
        with ThreadPoolExecutor(8) as ex: got = list(ex.map(lambda f: call(s.url + '/predict', Path(f).read_bytes(), content_type='image/png'), valid*2))
        assert got == [(200, d) for d in want*2]
        status,meta = call(s.url + '/metadata')
        assert status == 200 and meta['labels'] == Predictor(data['image']).manifest['labels'] and meta['max_batch_size'] == 4
        assert call(s.url + '/health') == (200, dict(status='ok', device='cpu'))
        for args,code,msg in [((b'not an image',), 400, 'Pillow cannot identify'), ((b'{"a": 1}', None, 'application/json'), 415, 'not application/json'),
                              ((b'', 'POST'), 400, 'no body'), ((None, 'GET'), 405, 'answers POST'), ((b'x'*(2*2**20),), 413, 'over')]:
            status,body = call(s.url + '/predict', *args)
            assert status == code and msg in body['error'] and body['fix'], (args[:1], status, body)
        assert call(s.url + '/nowhere')[0] == 404
        assert call(s.url + '/predict', Path(valid[0]).read_bytes()) == (200, want[0])
        _multi_item_requests(s.url, [Path(f).read_bytes() for f in valid], want)
    finally: s.stop()
    rows = data['penguins'].iloc[:20]
    want = json.loads(json.dumps(Predictor(data['tabular']).predict_batch(rows), allow_nan=False))
    s = serve(data['tabular'], port=free_port())
    try:
        records = json.loads(rows.to_json(orient='records'))
        assert [call(s.url + '/predict', json.dumps(r).encode(), content_type='application/json') for r in records[:5]] == [(200, d) for d in want[:5]]
        assert call(s.url + '/predict', json.dumps(records).encode(), content_type='application/json') == (200, want)
        status,body = call(s.url + '/predict', json.dumps({'island': 'Dream'}).encode(), content_type='application/json')
        assert status == 400 and "has no column" in body['error'], body
        assert call(s.url + '/predict', b'{nonsense', content_type='application/json')[0] == 400
    finally: s.stop()
