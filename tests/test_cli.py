"The `xdeploy` console script, run as a user runs it: a separate process."
from conftest import run, console_script
import xdeploy_nb

def xdeploy(*args, **kw): return run(console_script('xdeploy'), *args, **kw)

def test_help_lists_commands():
    out = xdeploy('--help').stdout
    assert 'version' in out and 'demo' in out

def test_version():
    assert xdeploy('version').stdout.strip() == xdeploy_nb.__version__

def test_unknown_command_fails_with_usage():
    r = xdeploy('frobnicate', check=False)
    assert r.returncode == 2 and 'invalid choice' in r.stderr

def test_demo_trains_better_than_chance(tmp_path):
    out = xdeploy('demo', env={'XDEPLOY_DATA': str(tmp_path)}).stdout
    acc = float(out.split('validation accuracy ')[1].split('%')[0])
    assert acc > 80, out
    assert list(tmp_path.glob('shapes-*/train/circle/*.png')), "the demo should generate its sample images"

def test_export_and_predict_from_a_saved_learner(tmp_path):
    "The whole command-line path: a learn.export() pickle -> xdeploy export -> xdeploy predict --json."
    import json
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    data = make_image_folder(tmp_path/'shapes', n_train=10, n_valid=3, size=40)
    learn = image_learner(image_dls(data, size=32))
    learn.export(tmp_path/'learner.pkl')
    out = xdeploy('export', tmp_path/'learner.pkl', tmp_path/'bundle', '--items', data/'valid', '--formats', 'onnx', 'torchscript').stdout
    assert out.count('faithful') == 2 and 'NOT' not in out, out
    digest = xdeploy('digest', tmp_path/'bundle').stdout.strip()  # what an app pins: printed at export too
    assert digest.startswith('sha256:') and f"digest {digest}" in out, out
    preds = json.loads(xdeploy('predict', tmp_path/'bundle', data/'valid', '--json').stdout)
    assert len(preds) == 9 and preds[0]['label'] in ('circle', 'square', 'triangle')
    r = xdeploy('export', tmp_path/'learner.pkl', tmp_path/'bundle', '--items', data/'valid', check=False)
    assert r.returncode == 1 and 'already exists' in r.stderr and 'Traceback' not in r.stderr
