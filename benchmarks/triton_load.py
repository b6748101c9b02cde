#!/usr/bin/env python
"""The Triton server under load, against the in-process `Predictor`, measured side by side in one run.

A closed-loop client: at each concurrency level C, C threads each send one image file at a time to the bundle's
python-backend model (`benchmarks/triton_target.py`: gRPC, a client per thread), sending the next as soon as the answer
comes, until `--requests` answers or `--seconds` have passed. It prints p50/p95/p99 latency and throughput per level, and
the throughput against the in-process `Predictor.predict_batch` on the same files (the best of batches of 8 and 64),\nmeasured in the same run before and after the load (the better of the two is the baseline).
The answers are checked against the `Predictor`'s. The model: `--arch` (default tiny) trained on the generated shapes at
`--size` px (cached by `trained_learner`).
Usage: python benchmarks/triton_load.py [--levels 1 4 16 32] [--requests 2000] [--seconds 20] [--instances 1] [--max-batch-size 32] [--arch tiny] [--size 64]"""
import argparse, sys, tempfile, threading, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from triton_target import triton_target

def closed_loop(send, n_items:int, concurrency:int, requests:int, seconds:float)->dict:
    "Latencies (s) of a closed loop of `concurrency` threads, bounded by `requests` answers and `seconds`; with the wall time."
    lock,lat,errors,count = threading.Lock(),[],[],iter(range(requests))
    deadline = time.perf_counter() + seconds
    def worker():
        while time.perf_counter() < deadline:
            with lock: i = next(count, None)
            if i is None: return
            t0 = time.perf_counter()
            try: send(i % n_items)
            except Exception as e:
                with lock: errors.append(repr(e))
                continue
            with lock: lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads: t.start()
    for t in threads: t.join(seconds + 60)
    return dict(lat=sorted(lat), wall=time.perf_counter() - t0, errors=errors)

def pct(xs:list, q:float)->float: return xs[min(len(xs) - 1, int(q*len(xs)))]*1e3

def in_process(bundle, files, seconds:float=3)->float:
    "Items per second of `Predictor.predict_batch(files, batch_size=b)`, the best over b in (8, 64) and repeated runs for `seconds`."
    from xdeploy_nb.runtime import Predictor
    p,best = Predictor(bundle, device='cpu'),0.
    p.predict_batch(files[:8])
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for b in (8, 64):
            t0 = time.perf_counter(); p.predict_batch(files, batch_size=b)
            best = max(best, len(files)/(time.perf_counter() - t0))
    return best

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--levels', type=int, nargs='+', default=[1, 4, 16, 32]); ap.add_argument('--requests', type=int, default=2000)
    ap.add_argument('--seconds', type=float, default=20); ap.add_argument('--instances', type=int, default=1)
    ap.add_argument('--max-batch-size', type=int, default=32); ap.add_argument('--arch', default='tiny'); ap.add_argument('--size', type=int, default=64)
    args = ap.parse_args()
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb.runtime import Predictor
    from xdeploy_nb.train import image_dls, trained_learner
    import onnxruntime
    tmp = Path(tempfile.mkdtemp(prefix='triton-load-'))
    learn = trained_learner(image_dls(make_image_folder(size=args.size), size=args.size), arch=args.arch, epochs=3)
    bundle = export_bundle(learn, tmp/'bundle', formats=('onnx',)).path
    files = sorted((make_image_folder(size=args.size)/'valid').rglob('*.png'))[:64]
    base = in_process(bundle, files)
    want = Predictor(bundle, device='cpu').predict_batch(files)
    print(f"bundle: {args.arch} at {args.size} px; {len(files)} validation files; onnxruntime {onnxruntime.__version__}")
    rows = []
    with triton_target(bundle, files, max_batch_size=args.max_batch_size, instances=args.instances) as send:
        for i,f in enumerate(files[:8]): assert send(i)['label'] == want[i]['label'], f  # the served answers are the Predictor's
        for c in args.levels:
            r = closed_loop(send, len(files), c, args.requests, args.seconds)
            n = len(r['lat'])
            rows.append((c, n, len(r['errors']), pct(r['lat'], .5), pct(r['lat'], .95), pct(r['lat'], .99), n/r['wall']))
            if r['errors']: print(f"concurrency {c}: {len(r['errors'])} errors, e.g. {r['errors'][0]}")
    after = in_process(bundle, files)  # again after the load, on the same machine state: the better of the two is the baseline
    print(f"in-process Predictor.predict_batch (best of batches of 8 and 64): {base:,.0f} items/s before the load, {after:,.0f} after")
    base = max(base, after)
    print(f"\nTriton 2.51 python backend (max_batch_size {args.max_batch_size}, {args.instances} instance(s)), gRPC, one item per request:")
    print(f"{'concurrency':>11} {'answers':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'items/s':>9} {'vs in-process':>14}")
    for c,n,e,p50,p95,p99,tput in rows: print(f"{c:>11} {n:>8} {e:>6} {p50:>8.2f} {p95:>8.2f} {p99:>8.2f} {tput:>9.0f} {tput/base:>13.2f}x")
    best = max(rows, key=lambda r: r[-1])
    print(f"\nbest: concurrency {best[0]}, {best[-1]:.0f} items/s = {best[-1]/base:.2f}x the in-process batch throughput (target >= 0.8x)")

if __name__ == '__main__': main()
