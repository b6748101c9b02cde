"The `xdeploy` console script, run as a user runs it: a separate process."
import shutil, sys
from conftest import run
import xdeploy_nb

def xdeploy(*args, **kw): return run(shutil.which('xdeploy') or sys.exit("xdeploy is not on PATH"), *args, **kw)

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
