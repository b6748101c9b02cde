import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

@pytest.fixture(scope='session')
def root(): return ROOT

def run(*args, cwd=ROOT, env=None, timeout=600, check=True):
    "Run a command, returning the CompletedProcess; on failure show what it printed."
    r = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check and r.returncode: pytest.fail(f"{' '.join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r

def tiny_image_learner(root:Path):
    "A 3-class shapes classifier at 16 px, trained for 2 epochs under `root`: small and quick, for the format tests."
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, trained_learner
    return trained_learner(image_dls(make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=24), size=16, bs=8),
                           epochs=2, cache=False)

def import_blocker(*names)->str:
    "Python source to run first in a subprocess: after it, importing any of the top-level packages `names` fails."
    return f'''import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in {tuple(names)!r}: raise ImportError(f"{{name}} is blocked in this test")
sys.meta_path.insert(0, Block())
'''

def pytest_configure(config):
    config.addinivalue_line('markers', "slow(seconds): a test module that starts servers, clusters or processes (Chromium, Triton, Ray, "
                            "torchrun); `seconds` is about how long the module takes on an idle 2-core machine. The test command runs them all; "
                            "`pytest -m 'not slow'` leaves them out while you work.")

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    "Keep each phase's report on the test item (`item.rep_call`), for fixtures that act on failures."
    rep = (yield).get_result()
    setattr(item, f'rep_{rep.when}', rep)
