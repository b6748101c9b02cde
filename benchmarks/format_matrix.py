#!/usr/bin/env python
"""Every format from fastai's standard constructors (issue 24), as a printed matrix: `vision_learner(resnet18 and
resnet34, pretrained=False)` with fastai's default head (AdaptiveConcatPool2d), `unet_learner(resnet18)`,
`tabular_learner` and `text_classifier_learner(AWD_LSTM)`, each fit one cycle on tiny data (32 px images) and exported
in every format it can be held in. Each artifact is checked at export against the eager graph and verified against the
Learner; the script prints, per Learner and format, the export seconds, the max diff from the eager graph and from the
Learner, and the agreement, all from one run. tests/test_formats_matrix.py runs the same builders (resnet34 left out:
it adds minutes and no operator resnet18 lacks).
Usage: python benchmarks/format_matrix.py [--cases 'vision_learner(resnet34)' ...] [--out DIR]"""
import argparse, tempfile, time, warnings
from pathlib import Path

ALL = ('onnx', 'ort', 'torchscript', 'torch.export', 'executorch')
TEXT_CANNOT = ('torch.export', 'executorch')  # torch.export (and ExecuTorch, capturing with it) fixes an LSTM's length

def quiet_fit(learn):
    "`learn` fit one cycle on its tiny data, quietly."
    import torch
    torch.manual_seed(0)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn.fit_one_cycle(1, 1e-3)
    return learn

def vision(root:Path, arch:str='resnet18'):
    "`vision_learner(arch, pretrained=False)` on 3 classes of generated shapes at 32 px."
    from fastai.vision.all import ImageDataLoaders, Resize, vision_learner, resnet18, resnet34
    from xdeploy_nb.data import make_image_folder
    path = make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=40)
    dls = ImageDataLoaders.from_folder(path, train='train', valid='valid', item_tfms=Resize(32), bs=8)
    return quiet_fit(vision_learner(dls, dict(resnet18=resnet18, resnet34=resnet34)[arch], pretrained=False))

def unet(root:Path):
    "`unet_learner(resnet18, pretrained=False)` on generated segmentation images at 32 px."
    from fastai.vision.all import Resize, SegmentationDataLoaders, get_image_files, resnet18, unet_learner
    from xdeploy_nb.data import make_segmentation_folder
    path = make_segmentation_folder(root/'seg', n=12)
    codes = (path/'codes.txt').read_text().split()
    dls = SegmentationDataLoaders.from_label_func(path, get_image_files(path/'images'), lambda o: path/'labels'/o.name,
                                                  codes=codes, item_tfms=Resize(32), bs=4, valid_pct=0.25, seed=0)
    return quiet_fit(unet_learner(dls, resnet18, pretrained=False, n_out=len(codes)))

def tabular(root:Path):
    "`tabular_learner` on the penguins, with Categorify, FillMissing and Normalize."
    from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
    from xdeploy_nb.data import load_penguins
    df = load_penguins()
    dls = TabularDataLoaders.from_df(df, y_names='species', cat_names=['island', 'sex'],
                                     procs=[Categorify, FillMissing, Normalize],
                                     cont_names=['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g'],
                                     valid_idx=list(range(0, len(df), 5)), bs=64)
    return quiet_fit(tabular_learner(dls, layers=[16]))

def reviews(n:int=120, seed:int=0):
    "A DataFrame of `n` short filler-word reviews, each with a few sentiment words, and its 'pos'/'neg' label."
    import numpy as np, pandas as pd
    rng = np.random.default_rng(seed)
    pos,neg = 'good great lovely superb fine'.split(),'bad awful terrible poor boring'.split()
    filler = "the movie was and it a plot acting I really think story film".split()
    words = [list(rng.choice(filler, rng.integers(3, 10))) + list(rng.choice(pos if i % 2 else neg, rng.integers(1, 3)))
             for i in range(n)]
    return pd.DataFrame(dict(review=[' '.join(rng.permutation(w)) for w in words],
                             label=['pos' if i % 2 else 'neg' for i in range(n)]))

def text(root:Path):
    "`text_classifier_learner(AWD_LSTM, pretrained=False)`, two small layers, fastai's default tokenizer."
    from fastai.text.all import AWD_LSTM, TextDataLoaders, awd_lstm_clas_config, text_classifier_learner
    dls = TextDataLoaders.from_df(reviews(), text_col='review', label_col='label', valid_pct=0.2, seed=0, bs=32,
                                  seq_len=8)
    return quiet_fit(text_classifier_learner(dls, AWD_LSTM, pretrained=False, seq_len=8,
                                             config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=32,
                                                         n_layers=2)))

CASES = {'vision_learner(resnet18)': (vision, ALL),
         'vision_learner(resnet34)': (lambda r: vision(r, 'resnet34'), ('onnx', 'executorch')),  # deeper, same ops
         'unet_learner(resnet18)': (unet, ALL),
         'tabular_learner': (tabular, ALL),
         'text_classifier_learner(AWD_LSTM)': (text, tuple(f for f in ALL if f not in TEXT_CANNOT))}

def export_case(case:str, root:Path)->tuple:
    "`(learn, bundle, rows)`: `case`'s Learner built under `root` and exported in its formats; a row per artifact."
    from xdeploy_nb.export import export_bundle
    make,formats = CASES[case]
    learn = make(root)
    b = export_bundle(learn, root/'bundle', formats=formats)
    rows = []
    for a in b.manifest['artifacts']:
        v = b.report.result(a['file'])
        eager = max(a['eager_max_abs_diff'].values())
        rows.append((case, a['format'], a['seconds'], eager, v['max_abs_diff'], v['agreement']))
    return learn,b,rows

def print_matrix(rows:list):
    "The matrix: a line per Learner and format."
    print(f"{'learner':36} {'format':13} {'export s':>8} {'vs eager':>9} {'vs Learner':>10} {'agreement':>9}")
    for r in rows: print(f"{r[0]:36} {r[1]:13} {r[2]:8.1f} {r[3]:9.2g} {r[4]:10.2g} {r[5]:9.1%}")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cases', nargs='*', default=list(CASES), choices=list(CASES))
    ap.add_argument('--out', default=None)
    args = ap.parse_args()
    import xdeploy_nb.train  # fastai, quietly
    out,rows = Path(args.out or tempfile.mkdtemp()),[]
    for i,case in enumerate(args.cases):
        t0 = time.perf_counter()
        _,b,r = export_case(case, out/str(i))
        secs = time.perf_counter() - t0
        print(f"{case}: built, exported and verified in {secs:.1f} s (passed: {b.report.passed})", flush=True)
        rows += r
    print_matrix(rows)

if __name__ == '__main__': main()
