"""Every format from fastai's standard constructors (issue 24), with the builders of benchmarks/format_matrix.py:
`vision_learner(resnet18, pretrained=False)` with fastai's default head (AdaptiveConcatPool2d), `unet_learner(resnet18)`
and `tabular_learner` in every format, `text_classifier_learner(AWD_LSTM)` in the formats that hold it; each Learner
fit once for the module (32 px images) and exported once. Each artifact is checked at export against the eager graph
and verified against the Learner; the `.pte` of the resnet is within 1e-4 of the Learner, and ExecuTorch's own runtime
(fed `prepare_inputs` as an app would) agrees with `model.onnx`. A format a model cannot be held in is refused naming
the format, and nothing is written. `pytest -s` prints the matrix; resnet34 is in the benchmark script only."""
import numpy as np, pytest, torch
import xdeploy_nb.train  # fastai, quietly
from xdeploy_nb.core import XDeployError
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor, prepare_inputs
from xdeploy_nb.verify import reference_items
from conftest import load_script

pytestmark = pytest.mark.slow(seconds=110)  # about how long this module takes on an idle 2-core machine

fm = load_script('format_matrix')
CASES = [c for c in fm.CASES if 'resnet34' not in c]  # resnet34: `python benchmarks/format_matrix.py`
ROWS = []  # a row per artifact, printed at the end

@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    "`case -> (learn, bundle)`: each Learner built and exported once for the module, when a test first asks for it."
    done = {}
    def get(case):
        if case not in done:
            learn,b,rows = fm.export_case(case, tmp_path_factory.mktemp('matrix'))
            done[case] = learn,b; ROWS.extend(rows)
        return done[case]
    yield get
    fm.print_matrix(ROWS)

@pytest.mark.parametrize('case', CASES)
def test_every_format(case, exported):
    "Every format the case can be held in is written, checked against the eager graph and within 1e-4 of the Learner."
    learn,b = exported(case)
    assert b.report.passed, b.report
    assert [a['format'] for a in b.manifest['artifacts']] == list(fm.CASES[case][1])
    for a in b.manifest['artifacts']:
        v = b.report.result(a['file'])
        assert v['max_abs_diff'] <= 1e-4, (a['file'], v)

def test_pte_runtime_agrees_with_onnx(exported):
    "ExecuTorch's own runtime, fed `prepare_inputs` as an app following the docs would, agrees with model.onnx."
    from executorch.runtime import Runtime
    learn,b = exported('vision_learner(resnet18)')
    assert b.report.result('model.pte')['max_abs_diff'] <= 1e-4
    p = Predictor(b.path, device='cpu')
    x = prepare_inputs(p.manifest, reference_items(learn, None, 4))
    assert all(v.flags['C_CONTIGUOUS'] for v in x.values())
    method = Runtime.get().load_program(b.path/'model.pte').load_method('forward')
    got = method.execute([torch.from_numpy(x[i['name']]) for i in p.manifest['inputs']])[0].numpy()
    d = float(np.abs(got - p.run(x)).max())
    print(f"ExecuTorch runtime on prepare_inputs vs model.onnx: max diff {d:.2g}")
    assert d <= 1e-4, d

@pytest.mark.parametrize('fmt', fm.TEXT_CANNOT)
def test_text_refuses(fmt, exported, tmp_path):
    "A text classifier cannot be held by torch.export or executorch: refused naming the format, and no bundle written."
    learn,_ = exported('text_classifier_learner(AWD_LSTM)')
    with pytest.raises(XDeployError, match=f"The {fmt} format cannot hold this model .* no bundle was written") as e:
        export_bundle(learn, tmp_path/'c', formats=('onnx', 'ort', fmt))
    assert "Export without" in e.value.fix and not (tmp_path/'c').exists()
