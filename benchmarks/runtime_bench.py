#!/usr/bin/env python
"""The runtime against its baselines and its ceilings, measured side by side in one run, on a resnet18 bundle at 64 px.

Parts (`--part`, one or more; default all of them):
- `start`: a new process -> its first prediction: `Predictor(bundle).predict(file)` against a bare onnxruntime script
  (same file, same decode and resize), the two run alternately, `--starts` times each; prints the best and the median
  of each and their ratio (target: best <= 1.15x). The child processes may write bytecode, as an installed package has.
  Also prints what the Predictor's check of the model file (read once, sha256 against the manifest) costs alone.
- `call`: one image file -> label, `Predictor.predict` against a hand-written onnxruntime loop doing the same decode and
  resize, each in a process of its own (two sessions in one process slow each other: their idle threads spin on the
  same cores), alternated over `--rounds` rounds of 8 files x 20 calls each, every call timed; prints the ratio of the
  median calls (target <= 1.05x), and the median and range of the per-round ratio.
- `file`: file -> answer for PNG files of 64x64 and of twice the model's size, at batch 1 and 64: `t_model` (the model
  alone on the prepared batch, a bare session with the Predictor's threads), `t_decode` (bare Pillow decode of the same
  files), a hand-written Pillow + onnxruntime loop, end-to-end by the Pillow path and by the graph path
  (`preprocess='graph'`), all per item, each in a process of its own, alternated over `--file-rounds` rounds.
  ceiling = t_model / (t_model + t_decode), the share of model-only throughput left once decoding competes with the
  model for the cores; prints end-to-end / model-only and its share of the ceiling (target >= 0.95).
- `fastai`: fastai's `learn.predict` and `load_learner` beside the Predictor (one file -> label; new process -> first
  prediction), a batch of 64 against torch eager on the same graph and threads, resident memory after loading; also for
  the bundle's int8-static variant where the export kept it. Trains the resnet18 5 epochs (the other parts use random
  weights: speed does not depend on them).
Usage: python benchmarks/runtime_bench.py [--part start call file fastai] [--starts 9] [--rounds 10] [--file-rounds 3]
                                          [--files 40] [--runs 3]
Start, per-call and file -> answer alone (no training): python benchmarks/runtime_bench.py --part start call file"""
import argparse, os, statistics, subprocess, sys, tempfile, textwrap, time, warnings
from pathlib import Path
import numpy as np

PARTS = ('start', 'call', 'file', 'fastai')

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

def bare_code(model:Path, f:str, size:int, rss:bool=False)->str:
    "A bare onnxruntime script: open `model`, decode and resize `f` as the Pillow path does, run once."
    return textwrap.dedent(f"""
        import numpy as np, onnxruntime as ort
        from PIL import Image
        s = ort.InferenceSession({str(model)!r}, providers=['CPUExecutionProvider'])
        img = Image.open({f!r}).convert('RGB').resize(({size}, {size}), Image.BILINEAR)
        x = np.asarray(img).transpose(2, 0, 1)[None]
        s.run(None, {{'image': np.ascontiguousarray(x)}})
        """) + (RSS if rss else '')

def by_hand_loop(model:Path, labels:list, threads:int, size:int):
    "`f(file) -> label`: the hand-written onnxruntime loop, with the same decode and resize as the Pillow path."
    import onnxruntime as ort
    from PIL import Image
    opts = ort.SessionOptions(); opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(model), opts, providers=['CPUExecutionProvider'])
    def by_hand(f):
        img = Image.open(f); img.load()
        x = np.asarray(img.convert('RGB').resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)[None]
        return labels[int(sess.run(None, {'image': np.ascontiguousarray(x)})[0].argmax())]
    return by_hand

def timed(f)->float:
    "Seconds `f()` takes."
    t0 = time.perf_counter(); f()
    return time.perf_counter() - t0

def start_part(bundle:Path, f:str, size:int, starts:int):
    "New process -> first prediction: the Predictor against a bare onnxruntime script, alternately."
    ours = f"from xdeploy_nb.runtime import Predictor\nPredictor({str(bundle)!r}{{}}).predict({f!r})"
    # device='auto' (the default) registers the installed plug-in EPs to consider them; device='cpu' loads none
    codes = dict(Predictor=ours.format(''), cpu=ours.format(", device='cpu'"),
                 bare=bare_code(bundle/'model.onnx', f, size))
    env = {k: v for k,v in os.environ.items() if k != 'PYTHONDONTWRITEBYTECODE'}  # as installed: bytecode cached
    def once(code):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, '-c', code], check=True, env=env)
        return time.perf_counter() - t0
    for c in codes.values(): once(c)  # warm-up: the file cache, the bytecode
    times = {k: [] for k in codes}
    for i in range(starts):
        for k in (list(codes) if i % 2 == 0 else list(codes)[::-1]): times[k].append(once(codes[k]))
    best,med = {k: min(v) for k,v in times.items()},{k: statistics.median(v) for k,v in times.items()}
    print(f"start: new process -> first prediction (s), {starts} runs each, alternated: "
          f"Predictor best {best['Predictor']:.3f} median {med['Predictor']:.3f}; "
          f"Predictor(device='cpu') best {best['cpu']:.3f} median {med['cpu']:.3f}; "
          f"bare onnxruntime best {best['bare']:.3f} median {med['bare']:.3f}")
    for k,what in (('Predictor', "Predictor (device='auto')"), ('cpu', "Predictor(device='cpu')")):
        print(f"   {what} / bare: best {best[k]/best['bare']:.2f}x (target <= 1.15x), "
              f"median {med[k]/med['bare']:.2f}x", flush=True)
    import json
    from xdeploy_nb.core import read_checked
    a = json.loads((bundle/'manifest.json').read_text())['artifacts'][0]
    check = min(timed(lambda: read_checked(bundle, a)) for _ in range(5))
    print(f"   of which the model's read and sha256 check, which the bare script skips: {check:.3f} s, "
          f"{check/best['bare']:.2f}x of the bare start ({a['size']/1e6:.0f} MB)", flush=True)

def worker(spec:dict)->list:
    "Runs in a process of its own (one onnxruntime session per process): seconds per call, or per item, of `spec`."
    from PIL import Image
    from xdeploy_nb.runtime import Predictor
    bundle,files,key,reps = Path(spec['bundle']),spec['files'],spec['key'],spec['reps']
    if spec['part'] == 'call':
        p = Predictor(bundle, device='cpu')
        f = p.predict if key == 'Predictor' else by_hand_loop(bundle/'model.onnx', p.manifest['labels'],
                                                                 p.describe()['threads'], spec['size'])
        for x in files: f(x)  # warm-up
        return [timed(lambda: f(x)) for _ in range(reps) for x in files]
    bs,n = spec['bs'],len(files)
    if key == 'model':
        import onnxruntime as ort
        opts = ort.SessionOptions(); opts.intra_op_num_threads,opts.inter_op_num_threads = spec['threads'],1
        sess = ort.InferenceSession(str(bundle/'model.onnx'), opts, providers=['CPUExecutionProvider'])
        x = Predictor(bundle, device='cpu').prepare(files[:bs])  # its session is made and left idle
        run = lambda: [sess.run(None, x) for _ in range(n//bs)]
    elif key == 'hand':  # the hand-written loop: decode, resize, stack, run, by Pillow and onnxruntime alone
        import onnxruntime as ort
        opts = ort.SessionOptions(); opts.intra_op_num_threads,opts.inter_op_num_threads = spec['threads'],1
        sess,s = ort.InferenceSession(str(bundle/'model.onnx'), opts, providers=['CPUExecutionProvider']),spec['size']
        def run():
            for i in range(0, n, bs):
                xs = [np.asarray(Image.open(f).convert('RGB').resize((s, s), Image.BILINEAR)) for f in files[i:i+bs]]
                sess.run(None, {'image': np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2))})
    elif key == 'decode':
        def run():
            for f in files:
                with Image.open(f) as im: im.load()
    else:
        p = Predictor(bundle, device='cpu', preprocess='graph' if key == 'graph' else 'pillow')
        run = (lambda: [p.predict(f) for f in files]) if bs == 1 else (lambda: p.predict_batch(files, batch_size=bs))
    run()  # warm-up
    return [timed(run)/n for _ in range(reps)]

def in_worker(**spec)->list:
    "`worker(spec)` in a new process: two sessions in one process slow each other (their idle threads spin)."
    import json
    code = f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import runtime_bench as rb; " \
           f"print(json.dumps(rb.worker(json.loads({json.dumps(spec)!r}))))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])

def call_part(bundle:Path, files:list, size:int, rounds:int):
    "Per-call overhead: `Predictor.predict` against the hand-written loop, each in its own process, alternated."
    calls,ratios = {'Predictor': [], 'hand': []},[]
    for r in range(rounds):
        med = {}
        for k in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            ts = in_worker(part='call', key=k, bundle=str(bundle), files=files, size=size, reps=20)
            calls[k] += ts; med[k] = statistics.median(ts)
        ratios.append(med['Predictor']/med['hand'])
    m = {k: statistics.median(v) for k,v in calls.items()}
    print(f"call: one image file -> label, {rounds} alternated rounds of a process each timing "
          f"{len(files)} files x 20; "
          f"median ms per call: Predictor.predict {m['Predictor']*1e3:.3f}, "
          f"hand-written onnxruntime {m['hand']*1e3:.3f}")
    print(f"   Predictor / hand-written: {m['Predictor']/m['hand']:.3f}x over all calls (target <= 1.05x); per round: "
          f"median {statistics.median(ratios):.3f}x, range {min(ratios):.3f}-{max(ratios):.3f}", flush=True)

def file_part(bundle:Path, tmp:Path, size:int, rounds:int):
    "File -> answer against its ceiling t_model / (t_model + t_decode), at batch 1 and 64, by both image paths."
    from xdeploy_nb.accel import usable_cpus
    from xdeploy_nb.pregraph import photo_like
    threads = usable_cpus()
    print(f"file: file -> answer, resnet18 at {size} px, {threads} threads; each figure from a process of its own; "
          f"medians of {rounds} alternated rounds (ms per item)")
    print(f"{'PNG files':10} {'batch':>5} {'t_model':>8} {'t_decode':>8} {'pillow':>8} {'graph':>8} {'ceiling':>8} "
          f"{'pillow/model':>12} {'graph/model':>11} {'hand/ceil':>9} {'pillow/ceil':>11} {'graph/ceil':>10}")
    for side in (64, 2*size):
        d = tmp/f'png{side}'; d.mkdir(exist_ok=True)
        files = [str(d/f'{i}.png') for i in range(64)]
        for i,f in enumerate(files): photo_like(side, side, seed=i).save(f)
        for bs in (1, 64):
            stream = [files[i % 64] for i in range(64 if bs == 1 else 256)]  # 64 files, or four batches of 64
            keys = ('model', 'decode', 'hand', 'pillow', 'graph')
            t = {k: [] for k in keys}
            for r in range(rounds):
                for k in (keys if r % 2 == 0 else keys[::-1]):
                    t[k].append(statistics.median(in_worker(part='file', key=k, bundle=str(bundle), files=stream,
                                                            bs=bs, threads=threads, size=size, reps=3)))
            share = {k: statistics.median((m + dd)/e for m,dd,e in zip(t['model'], t['decode'], t[k]))
                     for k in ('hand', 'pillow', 'graph')}
            m = {k: statistics.median(v) for k,v in t.items()}
            ceil = m['model']/(m['model'] + m['decode'])
            print(f"{f'{side}x{side}':10} {bs:5} {m['model']*1e3:8.3f} {m['decode']*1e3:8.3f} {m['pillow']*1e3:8.3f} "
                  f"{m['graph']*1e3:8.3f} {ceil:8.2f} {m['model']/m['pillow']:12.2f} {m['model']/m['graph']:11.2f} "
                  f"{share['hand']:9.2f} {share['pillow']:11.2f} {share['graph']:10.2f}", flush=True)
    print("   x/ceil: end-to-end throughput / model-only / ceiling = (t_model + t_decode) / t_end_to_end, "
          "the median of the rounds' (target >= 0.95); hand: a hand-written Pillow + onnxruntime loop, what the "
          "ceiling leaves out (resizing, one call after the other) included")

def fastai_part(learn, tmp:Path, b, files:list, runs:int):
    "fastai's `learn.predict` and `load_learner` beside the Predictor, torch eager at batch 64, resident memory."
    import torch
    from xdeploy_nb.export import deploy_graph, spec_from_learner
    from xdeploy_nb.runtime import Predictor
    int8 = Predictor(tmp/'bundle', variant='int8-static') if len(b.artifacts) > 1 else None
    learn.export(tmp/'learner.pkl')
    p = Predictor(tmp/'bundle')
    threads = p.describe()['threads']

    # 1. one file -> label
    by_hand = by_hand_loop(tmp/'bundle'/'model.onnx', p.manifest['labels'], threads, 64)
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fastai_s = per_item(lambda f: learn.predict(f), files, runs)
    ours_s,hand_s = per_item(p.predict, files, runs),per_item(by_hand, files, runs)
    int8_s = per_item(int8.predict, files, runs) if int8 else None

    # 2. new process -> first prediction (and 4. resident memory after loading)
    f0 = files[0]
    fastai_code = textwrap.dedent(f"""
        import warnings; warnings.simplefilter('ignore')
        from fastai.learner import load_learner
        l = load_learner({str(tmp/'learner.pkl')!r})
        with l.no_bar(): l.predict({f0!r})
        {RSS}""")
    ours_code = f"from xdeploy_nb.runtime import Predictor\nPredictor({str(tmp/'bundle')!r}).predict({f0!r})\n{RSS}"
    bare = bare_code(tmp/'bundle'/'model.onnx', f0, 64, rss=True)
    codes = (fastai_code, ours_code, bare)
    (fastai_p,fastai_mb),(ours_p,ours_mb),(bare_p,bare_mb) = [in_new_process(c, runs) for c in codes]

    # 3. batch of 64, same graph, same threads
    feeds = p.prepare(files[:8]*8)
    graph = deploy_graph(learn, spec_from_learner(learn)).eval()
    torch.set_num_threads(threads)
    x = torch.from_numpy(feeds['image'])
    def eager():
        with torch.no_grad(): graph(x)
    onnx_s,eager_s = [per_item(lambda _: f(), [None], runs*3) for f in (lambda: p.run(feeds), eager)]
    int8_b = per_item(lambda _: int8.run(feeds), [None], runs*3) if int8 else None

    print(f"fastai: resnet18 bundle, 64 px, CPU, {threads} threads; medians of {runs} runs over {len(files)} files")
    print(f"1. one image file -> label (ms/file): learn.predict {fastai_s*1e3:.2f}, "
          f"Predictor.predict {ours_s*1e3:.2f}, hand-written onnxruntime {hand_s*1e3:.2f}")
    print(f"   Predictor is {fastai_s/ours_s:.1f}x faster than learn.predict (target >= 10x) and "
          f"{ours_s/hand_s:.2f}x the hand-written loop's time (see --part call)")
    acc = b.artifacts[-1]['accuracy']
    if int8: print(f"   int8-static: Predictor.predict {int8_s*1e3:.2f} ms, {fastai_s/int8_s:.1f}x faster than "
                   f"learn.predict (validation accuracy {acc['value']:.1%}, fp32 {acc['fp32_value']:.1%})")
    else: print(f"   int8-static: left out by the export: {b.manifest['rejected'][0]['reason']}")
    print(f"2. new process -> first prediction (s): load_learner+predict {fastai_p:.2f}, Predictor {ours_p:.2f}, "
          f"bare onnxruntime {bare_p:.2f}")
    print(f"   Predictor is {fastai_p/ours_p:.1f}x faster than load_learner (target >= 10x), {ours_p/bare_p:.2f}x bare "
          "onnxruntime (see --part start)")
    print(f"3. batch of 64 (items/s): onnxruntime {64/onnx_s:.0f}, torch eager {64/eager_s:.0f}: {eager_s/onnx_s:.2f}x "
          "(target >= 1.4x)")
    if int8: print(f"   int8-static: {64/int8_b:.0f} items/s, {eager_s/int8_b:.2f}x torch eager, "
                   f"{onnx_s/int8_b:.2f}x fp32 onnxruntime")
    print(f"4. resident memory after loading and one prediction (MB): load_learner {fastai_mb:.0f}, "
          f"Predictor {ours_mb:.0f}, bare onnxruntime {bare_mb:.0f}", flush=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--part', nargs='+', choices=PARTS, default=list(PARTS))
    ap.add_argument('--starts', type=int, default=9); ap.add_argument('--rounds', type=int, default=10)
    ap.add_argument('--file-rounds', type=int, default=3)
    ap.add_argument('--files', type=int, default=40); ap.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    learn = image_learner(image_dls(make_image_folder(size=64), size=64), arch='resnet18')
    if 'fastai' in args.part:
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(5, 1e-2)
    tmp = Path(tempfile.mkdtemp())
    b = export_bundle(learn, tmp/'bundle', formats=('onnx',), n_items=64 if 'fastai' in args.part else 16,
                      variants=('int8-static',) if 'fastai' in args.part else ())
    files = [str(f) for f in learn.dls.valid_ds.items[:args.files]]
    if 'start' in args.part: start_part(tmp/'bundle', files[0], 64, args.starts)
    if 'call' in args.part: call_part(tmp/'bundle', files[:8], 64, args.rounds)
    if 'file' in args.part: file_part(tmp/'bundle', tmp, 64, args.file_rounds)
    if 'fastai' in args.part: fastai_part(learn, tmp, b, files, args.runs)

if __name__ == '__main__': main()
