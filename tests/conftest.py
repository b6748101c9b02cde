import importlib.util, os, shutil, subprocess, sys
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

def console_script(name:str)->str:
    "The console script `name` installed beside this Python (the venv's bin/, on PATH or not), else found on PATH; else the test fails."
    f = Path(sys.executable).parent/name  # not resolved: a venv's python is a link to the base interpreter
    if f.is_file(): return str(f)
    return shutil.which(name) or pytest.fail(f"{name} is neither beside {sys.executable} nor on PATH: install the package (`pip install -e .`).")

def load_script(name:str):
    "benchmarks/NAME.py as a module (the benchmark scripts the tests drive)."
    spec = importlib.util.spec_from_file_location(name, ROOT/'benchmarks'/f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def shapes_frame(path:Path):
    "A DataFrame naming the files of the image folder `path`: `fname`, `label`, `tags` (multi-label), two targets `x`, `y`, `is_valid`."
    import numpy as np, pandas as pd
    files = sorted(path.rglob('*.png'))
    df = pd.DataFrame(dict(fname=[f.relative_to(path).as_posix() for f in files], label=[f.parent.name for f in files],
                           is_valid=[f.parts[-3] == 'valid' for f in files]))
    df['tags'] = [l + (' big' if i % 2 else '') for i,l in enumerate(df.label)]
    df['x'],df['y'] = np.linspace(0, 1, len(df)),np.linspace(1, -1, len(df))
    return df

def tiny_unet(n:int, size:int, bs:int):
    "An untrained tiny U-Net (`unet_learner` over a small body) on `SegmentationDataLoaders` of `n` generated shapes and masks."
    import warnings
    from fastai.vision.all import Resize, SegmentationDataLoaders, get_image_files, unet_learner
    from xdeploy_nb.data import make_segmentation_folder
    from xdeploy_nb.train import tiny_cnn
    path = make_segmentation_folder(n=n)
    codes = (path/'codes.txt').read_text().split()
    dls = SegmentationDataLoaders.from_label_func(path, get_image_files(path/'images'), lambda o: path/'labels'/o.name, codes=codes,
                                                  item_tfms=Resize(size), bs=bs, valid_pct=0.25, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return unet_learner(dls, lambda pretrained=False: tiny_cnn(10), pretrained=False, n_out=len(codes))

def tiny_image_learner(root:Path):
    "A 3-class shapes classifier at 16 px, trained for 2 epochs under `root`: small and quick, for the format tests."
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, trained_learner
    return trained_learner(image_dls(make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=24), size=16, bs=8),
                           epochs=2, cache=False)

ONE_SIDED = dict(cont=([], ['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g']), cat=(['island', 'sex'], []))

def one_sided_tabular(which:str)->tuple:
    """`(learn, rows)`: a penguin-species `tabular_learner` built the ordinary fastai way with continuous columns only
    (`which='cont'`: x_cat has width 0) or category columns only (`'cat'`: x_cont has width 0), fit one epoch; and 12
    validation rows (a DataFrame of the model's columns). No missing values, so FillMissing adds no flag columns."""
    import torch
    from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
    from xdeploy_nb.data import load_penguins
    df = load_penguins().dropna().reset_index(drop=True)
    cats,conts = ONE_SIDED[which]
    torch.manual_seed(0)
    dls = TabularDataLoaders.from_df(df, y_names='species', cat_names=cats, cont_names=conts, procs=[Categorify, FillMissing, Normalize],
                                     valid_idx=list(range(0, len(df), 5)), bs=64)
    learn = tabular_learner(dls, layers=[16])
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    return learn,df.iloc[::27].head(12)[cats + conts].reset_index(drop=True)

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
