#!/usr/bin/env python
"""End-to-end throughput of the two image paths against the model alone, measured side by side in one run.

A resnet18 at 64 px (as benchmarks/runtime_bench.py; random weights: speed does not depend on them), exported to a bundle.
On the same CPU threads: the model alone on a prepared batch (`Predictor.run`), and `predict_batch` from PNG files (64x64
shapes, the sample data) with `preprocess='pillow'` (decode + Pillow item steps, one thread) and `preprocess='graph'`
(decode + `preprocess.onnx` in a thread pool, the next batch prepared while the model runs), at batch 64 (640 files, ten
batches) and 1; --photos adds the same with 640x480 photo-like JPEGs (a resize that does real work). Prints items/s and the
ratios end-to-end / model-only (target at batch 64: graph >= 0.95).
Usage: python benchmarks/pregraph_bench.py [--min-time 2] [--photos]"""
import argparse, tempfile
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--min-time', type=float, default=2.0); ap.add_argument('--photos', action='store_true')
    ap.add_argument('--arch', default='resnet18')
    args = ap.parse_args()
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb.runtime import Predictor
    from xdeploy_nb.bench import time_runs
    from xdeploy_nb.pregraph import photo_like
    folder = make_image_folder(size=64)
    learn = image_learner(image_dls(folder, size=64, method='crop'), arch=args.arch)
    tmp = Path(tempfile.mkdtemp())
    export_bundle(learn, tmp/'bundle', formats=('onnx',), n_items=16)
    pil,gr = Predictor(tmp/'bundle', device='cpu'),Predictor(tmp/'bundle', device='cpu', preprocess='graph')
    sets = {'64x64 PNG': [str(f) for f in sorted((folder/'valid').rglob('*.png'))][:64]}
    if args.photos:
        for i in range(64): photo_like(480, 640, seed=i).save(tmp/f"p{i}.jpg", quality=90)
        sets['640x480 JPEG'] = [str(tmp/f"p{i}.jpg") for i in range(64)]
    t = lambda f: 1e3/time_runs(f, args.min_time, 5)['p50_ms']  # runs per second, at the median
    print(f"{args.arch} at 64 px, {pil.describe()['threads']} threads, graph path: {gr._pool._max_workers} decode threads")
    print(f"{'items':14} {'batch':>5} {'model only':>11} {'pillow':>9} {'graph':>9} {'pillow/model':>13} {'graph/model':>12} {'graph/pillow':>13}")
    for name,files in sets.items():
        stream = [files[i % len(files)] for i in range(640)]  # batch 64: ten batches in a row, as a stream of files is served
        for bs in (64, 1):
            x = pil.prepare(files[:bs])
            model = t(lambda: pil.run(x))*bs
            if bs == 1: rp,rg = t(lambda: pil.predict(files[0])),t(lambda: gr.predict(files[0]))
            else: rp,rg = (t(lambda: p.predict_batch(stream, batch_size=bs))*len(stream) for p in (pil, gr))
            print(f"{name:14} {bs:5} {model:11.0f} {rp:9.0f} {rg:9.0f} {rp/model:13.2f} {rg/model:12.2f} {rg/rp:13.2f}", flush=True)
    print("(items/s; ratios of throughput measured in this run)")

if __name__ == '__main__': main()
