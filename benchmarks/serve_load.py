#!/usr/bin/env python
"""Load on a served bundle: a closed-loop client at a few concurrency levels against each serving target, with p50/p95/p99
latency and throughput, next to the in-process `Predictor`'s batch throughput on the same items, measured in the same
run. Target: served throughput >= 0.8x in-process at the best concurrency.

    python benchmarks/serve_load.py [BUNDLE] [--targets ray] [--concurrency 1 4 16] [--requests 400] [--seconds 15]

Without BUNDLE, a resnet18 image bundle of 64 px (untrained: throughput does not depend on the weights) is exported to a
temporary folder. Each request is one image file's bytes (PNG); every answer is checked against the in-process
`Predictor`'s prediction for the same item, so a fast wrong server does not count.

A target is an entry of `TARGETS`: a context manager `target(bundle)` that starts a server for the bundle on 127.0.0.1,
yields `send(i)` (sends item `i % len(items)` of `bench_items(bundle)` and returns the prediction dict), and stops the
server on exit. `send` is called from several threads at once. `ray_target` is Ray Serve (`xdeploy_nb.hosts.ray.serve`);
the Triton target (`benchmarks/triton_target.py`, `triton_target(bundle)`) is registered where it and its packages exist.

Every loop is bounded: at most `--requests` requests and `--seconds` seconds per concurrency level."""
import argparse, contextlib, http.client, io, json, socket, sys, tempfile, threading, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

def bench_items(bundle, n:int=64)->list:
    "The items every target sends: `n` generated shape images as PNG bytes, twice the model's input size (so the resize runs)."
    from xdeploy_nb.core import read_manifest
    from xdeploy_nb.data import SHAPES, draw_shape_image
    h,w = read_manifest(Path(bundle))['inputs'][0]['shape'][2:]
    size = (2*h, 2*w) if isinstance(h, int) and isinstance(w, int) else 64
    items = []
    for i in range(n):
        buf = io.BytesIO()
        draw_shape_image(list(SHAPES)[i % 3], size=size, seed=i).save(buf, format='PNG')
        items.append(buf.getvalue())
    return items

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

RAY_OPTIONS = dict(replicas=2, threads=1, max_batch_size=16, batch_wait_ms=2.0)  # --ray-replicas, --ray-threads: 2x1 was the best of 1x2 and 2x1 here

@contextlib.contextmanager
def ray_target(bundle):
    "Ray Serve (`xdeploy_nb.hosts.ray.serve`) on a local Ray cluster: `RAY_OPTIONS` replicas sharing 2 CPUs, each a model on `threads` threads."
    from xdeploy_nb.hosts.ray import serve
    items,port,o = bench_items(bundle),free_port(),RAY_OPTIONS
    s = serve(bundle, port=port, replicas=o['replicas'], max_batch_size=o['max_batch_size'], batch_wait_ms=o['batch_wait_ms'],
              num_cpus=1/o['replicas'], threads=o['threads'])
    conns = threading.local()
    def send(i:int)->dict:
        if not hasattr(conns, 'c'): conns.c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        conns.c.request('POST', '/predict', body=items[i % len(items)], headers={'Content-Type': 'image/png'})
        r = conns.c.getresponse(); body = r.read()
        if r.status != 200: raise RuntimeError(f"HTTP {r.status}: {body[:300]!r}")
        return json.loads(body)
    try: yield send
    finally:
        import ray
        s.stop(); ray.shutdown()

TARGETS = dict(ray=ray_target)
try:
    import importlib.util
    from triton_target import triton_target  # benchmarks/triton_target.py (Triton's python backend over gRPC), where it exists
    if missing := [m for m in ('tritonclient', 'xdeploy_nb.hosts.triton') if importlib.util.find_spec(m) is None]:
        print(f"(no triton target: it needs {', '.join(missing)}; install the triton extra, `pip install \"xdeploy_nb[triton]\"`)", file=sys.stderr)
    else: TARGETS['triton'] = triton_target
except ImportError as e:
    if getattr(e, 'name', None) != 'triton_target': print(f"(no triton target: {e})", file=sys.stderr)

def in_process(bundle, items:list, batch_size:int=64, seconds:float=5.0)->tuple:
    "`(items per second, predictions)` of the in-process Predictor, `predict_batch` over the items (decoding included)."
    from xdeploy_nb.runtime import Predictor
    p = Predictor(bundle, device='cpu')
    preds = p.predict_batch(items, batch_size)  # warm-up, and the reference answers
    work = items*max(1, 256//len(items))
    n,t0 = 0,time.perf_counter()
    while time.perf_counter() - t0 < seconds: p.predict_batch(work, batch_size); n += len(work)
    return n/(time.perf_counter() - t0),preds

def closed_loop(send, n_items:int, concurrency:int, requests:int, seconds:float, want:list)->dict:
    "`concurrency` clients, each sending its next request when the last is answered, until `requests` or `seconds`."
    lat,wrong,lock,count = [],[0],threading.Lock(),iter(range(requests))
    stop = time.perf_counter() + seconds
    def client():
        while time.perf_counter() < stop:
            with lock: i = next(count, None)
            if i is None: return
            t = time.perf_counter(); got = send(i); dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if got != want[i % n_items]: wrong[0] += 1
    for i in range(min(concurrency, 4)): send(i)  # warm-up: connections open, the replica's first batches
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads: t.start()
    for t in threads: t.join(seconds + 120)
    elapsed = time.perf_counter() - t0
    ms = np.array(lat)*1e3
    return dict(concurrency=concurrency, requests=len(lat), wrong=wrong[0], throughput=len(lat)/elapsed,
                **{f'p{q}_ms': float(np.percentile(ms, q)) for q in (50, 95, 99)})

def default_bundle(arch:str, size:int)->Path:
    "An untrained `arch` image bundle of `size` px in a temporary folder (needs the train extra)."
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    tmp = Path(tempfile.mkdtemp())
    learn = image_learner(image_dls(make_image_folder(tmp/'shapes', classes=3, n_train=4, n_valid=4, size=size), size=size, bs=4), arch=arch)
    export_bundle(learn, tmp/'bundle', formats=('onnx',))
    return tmp/'bundle'

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('bundle', nargs='?')
    ap.add_argument('--arch', default='resnet18'); ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--targets', nargs='+', default=list(TARGETS))
    ap.add_argument('--concurrency', nargs='+', type=int, default=[1, 4, 16])
    ap.add_argument('--requests', type=int, default=400, help='most requests per concurrency level')
    ap.add_argument('--seconds', type=float, default=15, help='most seconds per concurrency level')
    ap.add_argument('--ray-replicas', type=int, default=2); ap.add_argument('--ray-threads', type=int, default=1)
    a = ap.parse_args()
    RAY_OPTIONS.update(replicas=a.ray_replicas, threads=a.ray_threads)
    bundle = Path(a.bundle) if a.bundle else default_bundle(a.arch, a.size)
    items = bench_items(bundle)
    base,want = in_process(bundle, items)
    print(f"bundle {bundle}: {len(items)} PNG items; in-process Predictor.predict_batch (batch 64): {base:.1f} items/s")
    print(f"{'target':<8} {'conc':>4} {'requests':>8} {'wrong':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8} {'x in-proc':>9}")
    for name in a.targets:
        best = 0
        with TARGETS[name](bundle) as send:
            for c in a.concurrency:
                r = closed_loop(send, len(items), c, a.requests, a.seconds, want)
                best = max(best, r['throughput'])
                print(f"{name:<8} {c:>4} {r['requests']:>8} {r['wrong']:>5} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                      f"{r['throughput']:>8.1f} {r['throughput']/base:>9.2f}", flush=True)
        print(f"{name}: best served throughput {best:.1f} req/s = {best/base:.2f}x in-process (target >= 0.8x): "
              f"{'met' if best >= 0.8*base else 'NOT met'}")

if __name__ == '__main__': main()
