"""Every format from fastai's standard constructors (issue 24): `vision_learner(resnet18/resnet34, pretrained=False)` with
fastai's default head (AdaptiveConcatPool2d), `unet_learner(resnet18)`, `tabular_learner` and `text_classifier_learner
(AWD_LSTM)`, each fit briefly on tiny data and exported in every format it can be held in. Each artifact is checked at
export against the eager graph and verified against the Learner; the `.pte` of a resnet is within 1e-4 of the Learner, and
ExecuTorch's own runtime (fed `prepare_inputs` as an app would) agrees with `model.onnx`. A format a model cannot be held in
is refused naming the format, and nothing is written. `pytest -s` prints the matrix: export seconds and max diffs."""
import time, warnings
import numpy as np, pytest, torch
from fastai.vision.all import (ImageDataLoaders, Resize, SegmentationDataLoaders, get_image_files, resnet18, resnet34,
                               unet_learner, vision_learner)
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from xdeploy_nb.core import XDeployError
from xdeploy_nb.data import load_penguins, make_image_folder, make_segmentation_folder
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor, prepare_inputs
from xdeploy_nb.verify import reference_items

pytestmark = pytest.mark.slow(seconds=420)  # about how long this module takes on an idle 2-core machine (15 min on a loaded one)

ALL = ('onnx', 'ort', 'torchscript', 'torch.export', 'executorch')
ROWS = []  # (case, format, export s, eager diff, diff vs Learner, agreement): printed at the end

def _quiet(learn):
    "`learn` fit one cycle on its tiny data, quietly."
    torch.manual_seed(0)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit_one_cycle(1, 1e-3)
    return learn

def _vision(root, arch):
    path = make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=40)
    dls = ImageDataLoaders.from_folder(path, train='train', valid='valid', item_tfms=Resize(32), bs=8)
    return _quiet(vision_learner(dls, arch, pretrained=False))

def _unet(root):
    path = make_segmentation_folder(root/'seg', n=12)
    codes = (path/'codes.txt').read_text().split()
    dls = SegmentationDataLoaders.from_label_func(path, get_image_files(path/'images'), lambda o: path/'labels'/o.name, codes=codes,
                                                  item_tfms=Resize(32), bs=4, valid_pct=0.25, seed=0)
    return _quiet(unet_learner(dls, resnet18, pretrained=False, n_out=len(codes)))

def _tabular(root):
    df = load_penguins()
    dls = TabularDataLoaders.from_df(df, y_names='species', cat_names=['island', 'sex'], procs=[Categorify, FillMissing, Normalize],
                                     cont_names=['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g'],
                                     valid_idx=list(range(0, len(df), 5)), bs=64)
    return _quiet(tabular_learner(dls, layers=[16]))

def _text(root):
    from fastai.text.all import AWD_LSTM, TextDataLoaders, awd_lstm_clas_config, text_classifier_learner
    from test_learners import sentiment_frame
    dls = TextDataLoaders.from_df(sentiment_frame(120), text_col='review', label_col='label', valid_pct=0.2, seed=0, bs=32, seq_len=8)
    return _quiet(text_classifier_learner(dls, AWD_LSTM, pretrained=False, seq_len=8,
                                          config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=32, n_layers=2)))

TEXT_CANNOT = ('torch.export', 'executorch')  # torch.export (and ExecuTorch, which captures with it) fixes an LSTM's sequence length
CASES = {'vision_learner(resnet18)': (lambda r: _vision(r, resnet18), ALL),
         'vision_learner(resnet34)': (lambda r: _vision(r, resnet34), ('onnx', 'executorch')),  # deeper, same operators: what a .pte adds
         'unet_learner(resnet18)': (_unet, ALL),
         'tabular_learner': (_tabular, ALL),
         'text_classifier_learner(AWD_LSTM)': (_text, tuple(f for f in ALL if f not in TEXT_CANNOT))}

@pytest.fixture(scope='module', autouse=True)
def matrix_report():
    yield
    print(f"\n{'learner':36} {'format':13} {'export s':>8} {'vs eager':>9} {'vs Learner':>10} {'agreement':>9}")
    for r in ROWS: print(f"{r[0]:36} {r[1]:13} {r[2]:8.1f} {r[3]:9.2g} {r[4]:10.2g} {r[5]:9.1%}")

@pytest.mark.parametrize('case', list(CASES))
def test_every_format(case, tmp_path):
    make,formats = CASES[case]
    learn = make(tmp_path)
    t0 = time.perf_counter()
    b = export_bundle(learn, tmp_path/'b', formats=formats)
    print(f"\n{case}: {formats} exported and verified in {time.perf_counter() - t0:.1f} s")
    assert b.report.passed, b.report
    assert [a['format'] for a in b.manifest['artifacts']] == list(formats)
    for a in b.manifest['artifacts']:
        v = b.report.result(a['file'])
        ROWS.append((case, a['format'], a['seconds'], max(a['eager_max_abs_diff'].values()), v['max_abs_diff'], v['agreement']))
        assert v['max_abs_diff'] <= 1e-4, (a['file'], v)
    if 'executorch' in formats:
        check_pte_runtime(learn, tmp_path/'b')
    for f in (f for f in ALL if f not in formats and case.startswith('text')):
        with pytest.raises(XDeployError, match=f"The {f} format cannot hold this model .* no bundle was written") as e:
            export_bundle(learn, tmp_path/'c', formats=('onnx', 'ort', f))
        assert "Export without" in e.value.fix and not (tmp_path/'c').exists()

def check_pte_runtime(learn, bundle):
    "ExecuTorch's own runtime, fed `prepare_inputs` directly (as an app following the docs would), agrees with model.onnx."
    from executorch.runtime import Runtime
    p = Predictor(bundle, device='cpu')
    x = prepare_inputs(p.manifest, reference_items(learn, None, 4))
    assert all(v.flags['C_CONTIGUOUS'] for v in x.values())
    method = Runtime.get().load_program(bundle/'model.pte').load_method('forward')
    got = method.execute([torch.from_numpy(x[i['name']]) for i in p.manifest['inputs']])[0].numpy()
    d = float(np.abs(got - p.run(x)).max())
    print(f"ExecuTorch runtime on prepare_inputs vs model.onnx: max diff {d:.2g}")
    assert d <= 1e-4, d
