"""Triton model repositories (`xdeploy_nb.hosts.triton`), run by a real `tritonserver` (2.51, from the nvidia-pytriton wheel that
tools/env.sh installs apart from the venv) on 127.0.0.1 ports. The python-backend models of a small image bundle and of a
tabular bundle answer the bundles' validation items over HTTP and gRPC exactly as the `Predictor` does in this process.
That server has no onnxruntime backend, so the onnxruntime_onnx models are checked, not served: their config.pbtxt against
Triton's ModelConfig protobuf and the ONNX model's inputs and outputs. About 35 s on 2 cores (training the two Learners
included)."""
import json, math, shutil, sys
import numpy as np, pytest
import tritonclient.grpc as grpcclient, tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException
from xdeploy_nb.core import XDeployError
from xdeploy_nb.data import PENGUIN_CATS, PENGUIN_CONTS, load_penguins, make_image_folder
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.train import image_dls, tabular_dls, trained_learner
from xdeploy_nb.hosts.triton import check_config, triton_repository, tritonserver
from xdeploy_nb.verify import reference_items
from conftest import one_sided_tabular, run

pytestmark = pytest.mark.slow(seconds=10)  # about how long this module takes (measured on an idle 2-core machine)

@pytest.fixture(scope='module')
def bundles(tmp_path_factory):
    "`{name: (bundle, validation items as the python model takes them, as the Predictor takes them)}`."
    root = tmp_path_factory.mktemp('triton')
    img = trained_learner(image_dls(make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=24), size=16, bs=8), epochs=1, cache=False)
    tab = trained_learner(tabular_dls(load_penguins(), 'species', PENGUIN_CATS, PENGUIN_CONTS), epochs=2)  # cached
    files,rows = reference_items(img, None, 12),reference_items(tab, None, 24)
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, 'item') else v) for k,v in r.items()} for r in rows]
    out = {}
    for name,learn,raw,items in (('shapes', img, [open(f, 'rb').read() for f in files], files), ('penguins', tab, [json.dumps(r).encode() for r in rows], rows)):
        assert export_bundle(learn, root/f'{name}_bundle').report.passed
        out[name] = (root/f'{name}_bundle', raw, items)
    return out

@pytest.fixture(scope='module')
def repo(bundles, tmp_path_factory):
    repo = tmp_path_factory.mktemp('repo')
    for name,(b,_,_) in bundles.items(): assert sorted(triton_repository(b, repo, name=name, max_batch_size=8, instances=1)) == [name, f'{name}_python']
    return repo

@pytest.fixture(scope='module')
def server(repo):
    with tritonserver(repo, models=['shapes_python', 'penguins_python'], timeout=60) as s: yield s
    assert s.process.poll() is not None  # stopped

def _input(module, raw:list):
    x = module.InferInput('item', [len(raw), 1], 'BYTES')
    x.set_data_from_numpy(np.array(raw, dtype=np.object_).reshape(-1, 1))
    return x

def _answers(r)->tuple: return [json.loads(s) for s in r.as_numpy('prediction').reshape(-1)],r.as_numpy('probs')

def test_configs_check_against_protobuf_and_onnx(bundles, repo):
    for name,(b,_,_) in bundles.items():
        cfg,m = check_config(repo/name),Predictor(b).manifest
        assert cfg.platform == 'onnxruntime_onnx' and cfg.max_batch_size == 8 and list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
        assert [i.name for i in cfg.input] == [i['name'] for i in m['inputs']] and cfg.output[0].label_filename == 'labels.txt'
        assert (repo/name/'labels.txt').read_text().split('\n')[:-1] == m['labels']
        py = check_config(repo/f'{name}_python')
        assert py.backend == 'python' and [o.name for o in py.output] == ['prediction', 'probs'] and list(py.output[1].dims) == [len(m['labels'])]
    text = (repo/'shapes'/'config.pbtxt').read_text()
    (repo/'shapes'/'config.pbtxt').write_text(text.replace('dims: [ 3, 16, 16 ]', 'dims: [ 3, 32, 32 ]'))
    with pytest.raises(XDeployError, match=r"input 'image' has dims \[3, 32, 32\] in the config, \[3, 16, 16\] in the model"): check_config(repo/'shapes')
    (repo/'shapes'/'config.pbtxt').write_text(text)

@pytest.mark.parametrize('name', ['shapes', 'penguins'])
def test_http_one_request_at_a_time(server, bundles, name):
    "Each validation item alone (a batch of 1, as `Predictor.predict` runs it): the same dict and the same float32 outputs, bit for bit."
    b,raw,items = bundles[name]
    p,client = Predictor(b, device='cpu'),httpclient.InferenceServerClient(server.http)
    for r,item in zip(raw, items):
        preds,probs = _answers(client.infer(f'{name}_python', [_input(httpclient, [r])]))
        assert preds == [p.predict(item)]
        assert np.array_equal(probs, p.run(p.prepare([item])))

@pytest.mark.parametrize('name', ['shapes', 'penguins'])
def test_grpc_batches(server, bundles, name):
    "Requests of up to max_batch_size items: the `Predictor`'s answers for the same batches, exactly."
    b,raw,items = bundles[name]
    p,client = Predictor(b, device='cpu'),grpcclient.InferenceServerClient(server.grpc)
    assert client.is_model_ready(f'{name}_python') and not client.is_model_ready(name)  # the onnxruntime_onnx model is not loaded here
    for i in range(0, len(raw), 8):
        preds,probs = _answers(client.infer(f'{name}_python', [_input(grpcclient, raw[i:i+8])]))
        assert preds == p.predict_batch(items[i:i+8], batch_size=8)
        assert np.array_equal(probs, p.run(p.prepare(items[i:i+8])))

def test_http_async_burst(server, bundles):
    "All items at once with the HTTP client's async calls (Triton batches them as it likes): the same labels, outputs within tolerance."
    b,raw,items = bundles['shapes']
    p,client = Predictor(b, device='cpu'),httpclient.InferenceServerClient(server.http, concurrency=4)
    pending = [client.async_infer('shapes_python', [_input(httpclient, [r])]) for r in raw]
    got = [_answers(a.get_result(timeout=30)) for a in pending]
    want = p.predict_batch(items)
    assert [g[0][0]['label'] for g in got] == [w['label'] for w in want]
    assert np.abs(np.concatenate([g[1] for g in got]) - np.array([w['probs'] for w in want])).max() <= 1e-5

def test_bad_items_fail_their_own_request(server, bundles):
    client = grpcclient.InferenceServerClient(server.grpc)
    with pytest.raises(InferenceServerException, match='cannot identify this as an image') as e: client.infer('shapes_python', [_input(grpcclient, [b'not an image'])])
    assert 'INVALID_ARG' in str(e.value.status())
    with pytest.raises(InferenceServerException, match='Expecting value'): client.infer('penguins_python', [_input(grpcclient, [b'{"island": '])])
    preds,_ = _answers(client.infer('penguins_python', [_input(grpcclient, bundles['penguins'][1][:2])]))  # still serving
    assert len(preds) == 2

def test_multi_item_requests_with_a_bad_item(server, bundles):
    """Requests of several items sent at once (Triton batches them together): each good request gets the Predictor's
    answers for its items; the one with a bad item is refused whole, naming the item, and answers nothing."""
    b,raw,items = bundles['shapes']
    p,client = Predictor(b, device='cpu'),httpclient.InferenceServerClient(server.http, concurrency=3)
    reqs = [raw[0:4], [raw[4], b'not an image', raw[5]], raw[6:10]]
    pending = [client.async_infer('shapes_python', [_input(httpclient, r)]) for r in reqs]
    with pytest.raises(InferenceServerException, match=r'Item 1 \(12 bytes\): Pillow cannot identify this as an image'):
        pending[1].get_result(timeout=30)
    for a,want in ((pending[0], items[0:4]), (pending[2], items[6:10])):
        preds,probs = _answers(a.get_result(timeout=30))
        assert preds == p.predict_batch(want) and np.array_equal(probs, p.run(p.prepare(want)))

def test_link_out_of_the_bundle_refused(bundles, tmp_path):
    "The python model's copy of the bundle would follow a link out of it: the repository is not written."
    b = tmp_path/'b'; shutil.copytree(bundles['penguins'][0], b)
    (b/'model.onnx').rename(tmp_path/'model.onnx'); (b/'model.onnx').symlink_to(tmp_path/'model.onnx')
    with pytest.raises(XDeployError, match='outside the bundle'): triton_repository(b, tmp_path/'repo')
    assert not (tmp_path/'repo'/'b').exists()

def test_one_sided_tables(tmp_path):
    "Tables without category or continuous columns: the zero-width input is dims [-1] for Triton (which refuses 0); the python models serve them."
    repo,served = tmp_path/'repo',{}
    for which in ('cont', 'cat'):
        learn,df = one_sided_tabular(which)
        assert export_bundle(learn, tmp_path/which, formats=('onnx',)).report.passed
        triton_repository(tmp_path/which, repo, name=f'pen_{which}')
        dims = {i.name: list(i.dims) for i in check_config(repo/f'pen_{which}').input}
        assert dims == ({'x_cat': [-1], 'x_cont': [4]} if which == 'cont' else {'x_cat': [2], 'x_cont': [-1]}), dims
        served[which] = (df.head(8).to_dict('records'), Predictor(tmp_path/which, device='cpu'))
    text = (repo/'pen_cont'/'config.pbtxt').read_text()
    (repo/'pen_cont'/'config.pbtxt').write_text(text.replace('dims: [ -1 ]', 'dims: [ 0 ]', 1))
    with pytest.raises(XDeployError, match=r"'x_cat' has dims \[0\]: Triton takes sizes >= 1"): check_config(repo/'pen_cont')
    with tritonserver(repo, models=['pen_cont_python', 'pen_cat_python'], timeout=60) as s:
        client = httpclient.InferenceServerClient(s.http)
        for which,(rows,p) in served.items():
            preds,probs = _answers(client.infer(f'pen_{which}_python', [_input(httpclient, [json.dumps(r).encode() for r in rows])]))
            assert preds == p.predict_batch(rows) and np.array_equal(probs, p.run(p.prepare(rows))), which

def xdeploy(*args, **kw):
    "The `xdeploy` console script's entry point, run by this Python (the one with tritonclient)."
    return run(sys.executable, '-c', 'import sys; from xdeploy_nb.cli import main; main(sys.argv[1:])', *args, **kw)

def test_cli(bundles, tmp_path):
    out = xdeploy('triton', bundles['penguins'][0], tmp_path/'repo', '--name', 'pen', '--max-batch-size', '4', '--instances', '2', timeout=120).stdout
    assert 'pen: onnxruntime_onnx, max_batch_size 4, 2 instance(s); config.pbtxt checked' in out and 'pen_python: python' in out
    assert 'count: 2' in (tmp_path/'repo'/'pen_python'/'config.pbtxt').read_text()
    again = xdeploy('triton', bundles['penguins'][0], tmp_path/'repo', '--name', 'pen', check=False, timeout=120)
    assert again.returncode == 1 and 'exists' in again.stderr and 'Traceback' not in again.stderr
