"""The four registries are the only extension points: a toy artifact format and a toy task, registered from this
file alone, go through export, verification, prediction and the benchmark by the public API, and a toy input kind
(vectors of numbers) through validation and prediction, with no change to xdeploy_nb/. (The benchmark runs each cell in a process of its own, which imports the modules that registered
entries, so this module is imported there too: it registers them at import when `TOY_PLUGIN` is set, as the
fixture sets it, so that the other test modules never see them.)"""
import json, os
import numpy as np, pytest
import onnxruntime as ort
import xdeploy_nb.train  # imports fastai quietly
from xdeploy_nb.core import FORMATS, KINDS, TASKS, Format, Kind, ManifestError, Runner, Task, read_manifest
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.train import image_dls, image_learner
from xdeploy_nb.export import export_bundle, export_onnx
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.bench import bench

# A toy format: the ONNX graph saved under another name, run with onnxruntime on the CPU.
def toy_export(module, example_inputs, path, dynamic_batch=True, opset=18, check=(1, 3, 8), atol=1e-4, rtol=1e-5):
    return dict(export_onnx(module, example_inputs, path, dynamic_batch=dynamic_batch, opset=opset, check=check, atol=atol, rtol=rtol),
                format='toy', exporter='toy: the ONNX graph under another name')

def toy_runner(path, m, a, data, device='auto', threads=None):
    sess = ort.InferenceSession(data, providers=['CPUExecutionProvider'])  # `data`: the file's bytes, checked against the manifest
    out = m['outputs'][0]['name']
    return Runner(lambda feeds: sess.run([out], feeds)[0], 'cpu', 'the toy format runs on the CPU', ['CPUExecutionProvider'], 1)


# A toy task: a softmax classifier whose results are its two most probable labels.
def top2(outputs, labels, output): return [dict(top2=[labels[i] for i in np.argsort(-r)[:2]], probs=r.tolist()) for r in outputs]
def top2_agree(ref, out, output, atol, rtol):
    same = (np.sort(np.argsort(-ref, 1)[:, :2], 1) == np.sort(np.argsort(-out, 1)[:, :2], 1)).all(1)
    return same,np.zeros(len(ref), bool)
def top2_accuracy(outputs, targets, output): return float((np.argsort(-outputs, 1)[:, :2] == targets.reshape(-1, 1)).any(1).mean())

# A toy kind: each item is a vector of numbers, fed as the float32 input `x`.
def vector_check(m):
    if [i['name'] for i in m['inputs']] != ['x']: raise ManifestError("a vector bundle has one input, x.", "Use the vector kind.")
def vector_prepare(m, items, max_pixels=None, first=0): return {'x': np.asarray(items, np.float32).reshape(len(items), -1)}

def register():
    FORMATS['toy'] = Format('model.toy', runner=toy_runner, export=toy_export)
    KINDS['vector'] = Kind(check=vector_check, prepare=vector_prepare, as_list=list, one=lambda item: item)
    TASKS['top2'] = Task('softmax', top2, top2_agree, 'top2_accuracy', top2_accuracy, fits=lambda n, n_labels: n == n_labels,
                         labels=lambda learn, n_out=None: [str(o) for o in learn.dls.vocab])

if os.environ.get('TOY_PLUGIN'): register()

@pytest.fixture(scope='module', autouse=True)
def toys():
    "The toy format and task, registered for this module's tests (and a bench cell's process) only."
    os.environ['TOY_PLUGIN'] = '1'; register()
    yield
    del FORMATS['toy'], TASKS['top2'], KINDS['vector'], os.environ['TOY_PLUGIN']

@pytest.fixture(scope='module')
def learn():
    learn = image_learner(image_dls(make_image_folder(classes=3, n_train=12, n_valid=6, size=40), size=32, bs=6))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    return learn

def test_toy_format_and_task(learn, tmp_path):
    b = export_bundle(learn, tmp_path/'toy', formats=('onnx', 'toy'), task='top2')
    assert b.report.passed, b.report
    m = read_manifest(tmp_path/'toy')
    assert m['task'] == 'top2' and [a['file'] for a in m['artifacts']] == ['model.onnx', 'model.toy']
    toy = next(a for a in m['artifacts'] if a['format'] == 'toy')
    assert toy['exporter'].startswith('toy') and toy['verification']['passed'] and toy['accuracy']['metric'] == 'top2_accuracy'
    p = Predictor(tmp_path/'toy', format='toy')
    assert p.device == 'cpu' and 'toy' in p.describe()['why']
    files = learn.dls.valid_ds.items[:4]
    preds = p.predict_batch(files)
    ref = Predictor(tmp_path/'toy').predict_batch(files)
    assert [d['top2'] for d in preds] == [d['top2'] for d in ref] and all(len(d['top2']) == 2 for d in preds)
    assert json.dumps(p.predict(files[0]))
    r = bench(tmp_path/'toy', formats=['toy'], devices=['cpu'], batch_sizes=(1, 4), min_time=0.05, min_runs=2, progress=False)
    rows = [row for row in r.rows if row['format'] == 'toy']
    assert len(rows) == 2 and all(row['error'] is None and row['p50_ms'] > 0 for row in rows), rows

def test_unknown_names_are_refused_with_what_is_registered(learn, tmp_path):
    from xdeploy_nb.core import XDeployError
    with pytest.raises(XDeployError, match="Unknown artifact format 'tflite'"): export_bundle(learn, tmp_path/'x', formats=('tflite',))
    with pytest.raises(XDeployError, match="Unknown task 'ranking'"): export_bundle(learn, tmp_path/'x', task='ranking')
    assert not (tmp_path/'x').exists()

def test_toy_kind(tmp_path):
    "A bundle of the toy kind (an ONNX graph on vectors, written here) validates and predicts through the public API."
    from onnx import TensorProto, helper, save
    from xdeploy_nb.core import SCHEMA_NAME, SCHEMA_VERSION, file_sha256, validate_manifest
    (d := tmp_path/'vector').mkdir()
    w = helper.make_tensor('W', TensorProto.FLOAT, [3, 3], np.eye(3, dtype=np.float32)[::-1].flatten().tolist())
    g = helper.make_graph([helper.make_node('MatMul', ['x', 'W'], ['z']), helper.make_node('Softmax', ['z'], ['output'], axis=1)],
                          'vector', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 3])],
                          [helper.make_tensor_value_info('output', TensorProto.FLOAT, ['batch', 3])], [w])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 18)], ir_version=9), f := d/'model.onnx')
    m = dict(schema=SCHEMA_NAME, schema_version=SCHEMA_VERSION, task='single_label',
             inputs=[dict(name='x', dtype='float32', shape=['batch', 3])], preprocessing=dict(kind='vector', steps=[], spec={}),
             outputs=[dict(name='output', dtype='float32', shape=['batch', 3], activation='softmax')], labels=['a', 'b', 'c'],
             artifacts=[dict(format='onnx', file=f.name, sha256=file_sha256(f), size=f.stat().st_size, precision='fp32')],
             provenance=dict(created='2026-12-07T12:00:00+00:00', versions={}))
    validate_manifest(m)
    (d/'manifest.json').write_text(json.dumps(m))
    p = Predictor(d, device='cpu')
    assert [r['label'] for r in p.predict_batch([[1., 0., 0.], [0., 0., 5.]])] == ['c', 'a']
    (d/'manifest.json').write_text(json.dumps(dict(m, inputs=[dict(name='y', dtype='float32', shape=['batch', 3])])))
    with pytest.raises(ManifestError, match="one input, x"): Predictor(d, device='cpu')  # the kind's own check
