#!/usr/bin/env python
"""Export + verification time of a resnet18 at 64 px on 3 classes, per format, next to plain `learn.export()`.

Prints a table of seconds and ratios measured side by side in this one run (target: the whole export with
verification under 60 s on 2 cores). Usage: python benchmarks/export_bench.py [--repeats 2]"""
import argparse, shutil, tempfile, time
from pathlib import Path
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.train import image_dls, image_learner
from xdeploy_nb.export import export_bundle

def timed(f):
    t0 = time.perf_counter(); f(); return time.perf_counter() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=2, help="runs per cell; the best is reported")
    args = p.parse_args()
    learn = image_learner(image_dls(make_image_folder(size=64), size=64), arch='resnet18')
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3)
    tmp = Path(tempfile.mkdtemp())
    best = lambda f: min(timed(f) for _ in range(args.repeats))
    base = best(lambda: learn.export(tmp/'learner.pkl'))
    rows = [('learn.export() (pickle)', base)]
    for fmt in ('onnx', 'torchscript', 'torch.export'):
        rows.append((f'export_bundle {fmt} + verify', best(lambda: export_bundle(learn, tmp/fmt, formats=(fmt,), overwrite=True))))
    rows.append(('export_bundle all three + verify', best(lambda: export_bundle(learn, tmp/'all', formats=('onnx', 'torchscript', 'torch.export'), overwrite=True))))
    n = len(learn.dls.valid_ds)
    print(f"resnet18, 64 px, 3 classes, verified on {n} validation images, best of {args.repeats}")
    print(f"{'what':<38}{'seconds':>10}{'x learn.export()':>20}")
    for name,s in rows: print(f"{name:<38}{s:>10.2f}{s/base:>20.1f}")
    shutil.rmtree(tmp)

if __name__ == '__main__': main()
