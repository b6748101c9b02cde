#!/usr/bin/env python
"""The runtime against its baselines, measured side by side in one run, on a resnet18 bundle at 64 px.

1. one image file -> label: fastai `learn.predict`, `Predictor.predict`, and a hand-written onnxruntime loop
   doing the same decode and resize;
2. a new process -> first prediction: `load_learner` + `predict`, `Predictor`, bare onnxruntime;
3. a batch of 64: the ONNX session against torch eager on the same graph and threads;
4. resident memory after loading: `load_learner` and `Predictor`.
1 and 3 also for the bundle's int8-static variant (`Predictor(variant='int8-static')`), where the export kept it.
Usage: python benchmarks/runtime_bench.py [--files 40] [--runs 3]"""
import argparse, statistics, subprocess, sys, tempfile, textwrap, time, warnings
from pathlib import Path
import numpy as np

def per_item(f, items, runs:int)->float:
    "Median over `runs` of the mean seconds per item of `f(item)`."
    f(items[0])  # warm-up
    def once():
        t0 = time.perf_counter()
        for o in items: f(o)
        return (time.perf_counter() - t0)/len(items)
    return statistics.median(once() for _ in range(runs))

def in_new_process(code:str, runs:int)->tuple:
    "Median wall seconds of a fresh `python -c code`, and the resident MB it prints."
    times,mbs = [],[]
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
        times.append(time.perf_counter() - t0); mbs.append(float(out.split()[-1]))
    return statistics.median(times),statistics.median(mbs)

RSS = "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])/1024)"

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--files', type=int, default=40); ap.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    import torch, onnxruntime as ort
    from PIL import Image
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle, deploy_graph, spec_from_learner
    from xdeploy_nb.runtime import Predictor
    learn = image_learner(image_dls(make_image_folder(size=64), size=64), arch='resnet18')
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(5, 1e-2)
    tmp = Path(tempfile.mkdtemp())
    b = export_bundle(learn, tmp/'bundle', formats=('onnx',), variants=('int8-static',))
    int8 = Predictor(tmp/'bundle', variant='int8-static') if len(b.artifacts) > 1 else None
    learn.export(tmp/'learner.pkl')
    files = [str(f) for f in learn.dls.valid_ds.items[:args.files]]
    p = Predictor(tmp/'bundle')
    threads = p.describe()['threads']

    # 1. one file -> label
    opts = ort.SessionOptions(); opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(tmp/'bundle'/'model.onnx'), opts, providers=['CPUExecutionProvider'])
    labels = p.manifest['labels']
    def by_hand(f):
        img = Image.open(f); img.load()
        x = np.asarray(img.convert('RGB').resize((64, 64), Image.BILINEAR)).transpose(2, 0, 1)[None]
        return labels[int(sess.run(None, {'image': np.ascontiguousarray(x)})[0].argmax())]
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fastai_s = per_item(lambda f: learn.predict(f), files, args.runs)
    ours_s,hand_s = per_item(p.predict, files, args.runs),per_item(by_hand, files, args.runs)
    int8_s = per_item(int8.predict, files, args.runs) if int8 else None

    # 2. new process -> first prediction (and 4. resident memory after loading)
    f0 = files[0]
    fastai_code = textwrap.dedent(f"""
        import warnings; warnings.simplefilter('ignore')
        from fastai.learner import load_learner
        l = load_learner({str(tmp/'learner.pkl')!r})
        with l.no_bar(): l.predict({f0!r})
        {RSS}""")
    ours_code = f"from xdeploy_nb.runtime import Predictor\nPredictor({str(tmp/'bundle')!r}).predict({f0!r})\n{RSS}"
    bare_code = textwrap.dedent(f"""
        import numpy as np, onnxruntime as ort
        from PIL import Image
        s = ort.InferenceSession({str(tmp/'bundle'/'model.onnx')!r}, providers=['CPUExecutionProvider'])
        x = np.asarray(Image.open({f0!r}).convert('RGB').resize((64, 64), Image.BILINEAR)).transpose(2, 0, 1)[None]
        s.run(None, {{'image': np.ascontiguousarray(x)}})
        {RSS}""")
    (fastai_p,fastai_mb),(ours_p,ours_mb),(bare_p,bare_mb) = [in_new_process(c, args.runs) for c in (fastai_code, ours_code, bare_code)]

    # 3. batch of 64, same graph, same threads
    feeds = p.prepare(files[:8]*8)
    graph = deploy_graph(learn, spec_from_learner(learn)).eval()
    torch.set_num_threads(threads)
    x = torch.from_numpy(feeds['image'])
    def eager():
        with torch.no_grad(): graph(x)
    onnx_s,eager_s = [per_item(lambda _: f(), [None], args.runs*3) for f in (lambda: p.run(feeds), eager)]
    int8_b = per_item(lambda _: int8.run(feeds), [None], args.runs*3) if int8 else None

    print(f"resnet18 bundle, 64 px, CPU, {threads} threads; medians of {args.runs} runs over {len(files)} files")
    print(f"1. one image file -> label (ms/file): learn.predict {fastai_s*1e3:.2f}, Predictor.predict {ours_s*1e3:.2f}, "
          f"hand-written onnxruntime {hand_s*1e3:.2f}")
    print(f"   Predictor is {fastai_s/ours_s:.1f}x faster than learn.predict (target >= 10x) and "
          f"{ours_s/hand_s:.2f}x the hand-written loop's time (target <= 1.15x)")
    acc = b.artifacts[-1]['accuracy']
    print(f"   int8-static: " + (f"Predictor.predict {int8_s*1e3:.2f} ms, {fastai_s/int8_s:.1f}x faster than learn.predict (validation accuracy "
          f"{acc['value']:.1%}, fp32 {acc['fp32_value']:.1%})" if int8 else f"left out by the export: {b.manifest['rejected'][0]['reason']}"))
    print(f"2. new process -> first prediction (s): load_learner+predict {fastai_p:.2f}, Predictor {ours_p:.2f}, bare onnxruntime {bare_p:.2f}")
    print(f"   Predictor is {fastai_p/ours_p:.1f}x faster than load_learner (target >= 10x), {ours_p/bare_p:.2f}x bare onnxruntime (target <= 1.5x)")
    print(f"3. batch of 64 (items/s): onnxruntime {64/onnx_s:.0f}, torch eager {64/eager_s:.0f}: {eager_s/onnx_s:.2f}x (target >= 1.4x)")
    if int8: print(f"   int8-static: {64/int8_b:.0f} items/s, {eager_s/int8_b:.2f}x torch eager, {onnx_s/int8_b:.2f}x fp32 onnxruntime")
    print(f"4. resident memory after loading and one prediction (MB): load_learner {fastai_mb:.0f}, Predictor {ours_mb:.0f}, bare onnxruntime {bare_mb:.0f}")

if __name__ == '__main__': main()
