#!/usr/bin/env python
"""Load on a served bundle, against the engine's own ceiling and the in-process `Predictor`, side by side in one run.

    python benchmarks/serve_load.py [BUNDLE] [--targets ray triton] [--concurrency 1 8 32] [--multi-concurrency 2 8]
                                    [--items-per-request 16] [--seconds 5] [--requests 4000]

Without BUNDLE, an untrained resnet18 image bundle of 64 px is exported to a temporary folder (throughput does not
depend on the weights). The items are 64 generated shape images as PNG bytes, twice the model's input size (so the
resize runs). A closed-loop client (C threads, each sending its next request when the last is answered) sends one item
per request at each concurrency of `--concurrency`, then `--items-per-request` items per request (Ray: one
`multipart/form-data` part per file; Triton: a `[k, 1]` BYTES tensor) at each of `--multi-concurrency`. Every answer of
the served bundle is checked against the in-process `Predictor`'s for the same item: a fast wrong server does not count.

Each target also runs its engine's **ceiling** with the same client, at the same level, just before the served bundle:
- Ray: a no-op Serve deployment (same replicas, CPUs and `max_ongoing_requests` as the bundle's) that reads the body
  and answers a constant: Ray's own cost per request (proxy, routing, replica, response). It does not batch: a no-op
  has nothing to batch, and a batching wait would only lower the ceiling;
- Triton: a python-backend model with the bundle model's config (dynamic batching included) that returns constants.

Printed per level: items/s, p50/p95/p99 latency, and served / min(in-process, ceiling at that level); the in-process
rate is measured before and after the load, and the summary's baseline is the better of the two. The targets:
one item per request, the best served throughput >= 0.8 x min(in-process, best ceiling); `--items-per-request` items
per request, the best served throughput >= 0.8 x in-process. The in-process figure is the better of onnxruntime on one
thread per CPU and on one thread. Where the engine's work and the model's share the same cores (the client's too), the
engine's cost per request is not hidden behind the model's: the summary also gives served / (1/(1/in-process +
1/ceiling)), the rate of the two taking turns on the cores. At 1 or more there, the kit adds nothing measurable beyond
the engine's and the model's own work, and the rest of the gap to min(in-process, ceiling) is the engine's cost.

Takes about 3 minutes with the defaults on a 2-core machine (`--seconds 5`; the export and Ray's and Triton's starts
included).

A target is an entry of `TARGETS`: a context manager `target(bundle, items)` that starts the servers on 127.0.0.1 and
yields `(served, ceiling)`, two functions `f(i, k)` called from several threads at once: `served` sends items
`i*k .. i*k+k-1` (modulo `len(items)`) in one request and returns their prediction dicts; `ceiling` sends the same
request to the no-op and returns nothing. Both servers stop when the block ends. Every loop is bounded: at most
`--requests` requests and `--seconds` seconds per level."""
import argparse, contextlib, http.client, io, json, socket, sys, tempfile, threading, time
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

def bench_items(bundle, n:int=64)->list:
    "The items every target sends: `n` generated shape images as PNG bytes, twice the model's input size (resized)."
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

def request_items(items:list, i:int, k:int)->list:
    "The `k` items of request `i`: items `i*k .. i*k+k-1`, modulo `len(items)`."
    return [items[(i*k + j) % len(items)] for j in range(k)]

def multipart(files:list, boundary:str='xdeploy-bench-boundary')->tuple:
    "`(body, content type)` of a `multipart/form-data` request with one part per file, as `curl -F file=@...` sends it."
    head = lambda j: (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{j}.png"\r\n'
                      'Content-Type: image/png\r\n\r\n').encode()
    body = b''.join(head(j) + f + b'\r\n' for j,f in enumerate(files)) + f'--{boundary}--\r\n'.encode()
    return body,f'multipart/form-data; boundary={boundary}'

# The servers' settings (command-line options): on 2 cores, two model workers of one thread each served more than one
# of two threads, for Ray and Triton alike (a model on two threads loses most when the client and the engine share its
# cores)
RAY_OPTIONS = dict(replicas=2, threads=1, max_batch_size=16, batch_wait_ms=2.0)
TRITON_OPTIONS = dict(instances=2, threads=1, max_batch_size=32)

class NoopServer:
    "Ray Serve's ceiling: a deployment that reads the request's body and answers a constant."
    async def __call__(self, request):
        from starlette.responses import Response
        await request.body()
        return Response(b'{"label": "noop"}', media_type='application/json')

@contextlib.contextmanager
def ray_target(bundle, items:list):
    "Ray Serve (`xdeploy_nb.hosts.ray.serve`) and a no-op deployment (`NoopServer`) on one local Ray cluster and proxy."
    from ray import serve as rs
    from xdeploy_nb.hosts.ray import serve
    port,o = free_port(),RAY_OPTIONS
    s = serve(bundle, port=port, replicas=o['replicas'], max_batch_size=o['max_batch_size'],
              batch_wait_ms=o['batch_wait_ms'], num_cpus=1/o['replicas'], threads=o['threads'])
    noop = rs.deployment(NoopServer, name='noop', num_replicas=o['replicas'], ray_actor_options=dict(num_cpus=0.01),
                         max_ongoing_requests=max(4*o['max_batch_size'], 32))  # as `serve` sets it
    rs.run(noop.bind(), name='noop', route_prefix='/noop')
    conns,bodies = threading.local(),{}
    def body(i:int, k:int)->tuple:
        if k == 1: return items[i % len(items)],'image/png'
        if (i % len(items), k) not in bodies: bodies[i % len(items), k] = multipart(request_items(items, i, k))
        return bodies[i % len(items), k]
    def post(path:str, i:int, k:int)->bytes:
        if not hasattr(conns, 'c'): conns.c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        data,ctype = body(i, k)
        conns.c.request('POST', path, body=data, headers={'Content-Type': ctype})
        r = conns.c.getresponse(); got = r.read()
        if r.status != 200: raise RuntimeError(f"HTTP {r.status}: {got[:300]!r}")
        return got
    def served(i:int, k:int)->list:
        got = json.loads(post('/predict', i, k))
        return [got] if k == 1 else got
    try: yield served,lambda i, k: (post('/noop', i, k), None)[1]
    finally:
        import ray
        s.stop(); ray.shutdown()

TARGETS = dict(ray=ray_target)
try:
    import importlib.util
    from triton_target import triton_target  # benchmarks/triton_target.py (Triton's python backend over gRPC)
    if missing := [m for m in ('tritonclient', 'xdeploy_nb.hosts.triton') if importlib.util.find_spec(m) is None]:
        print(f"(no triton target: it needs {', '.join(missing)}; install the triton extra, "
              '`pip install "xdeploy_nb[triton]"`)', file=sys.stderr)
    else: TARGETS['triton'] = lambda bundle, items: triton_target(bundle, items, noop=True, **TRITON_OPTIONS)
except ImportError as e:
    if getattr(e, 'name', None) != 'triton_target': print(f"(no triton target: {e})", file=sys.stderr)

def in_process(bundle, items:list, batch_size:int=64, seconds:float=4.0)->tuple:
    """`(items per second, predictions, {threads: items per second})` of the in-process Predictor, `predict_batch`
    over the items (decoding included): the better of onnxruntime on one thread per CPU (the default) and on one."""
    from xdeploy_nb.runtime import Predictor
    rates = {}
    for threads in (None, 1):
        p = Predictor(bundle, device='cpu', threads=threads)
        preds = p.predict_batch(items, batch_size)  # warm-up, and the reference answers
        work = items*max(1, 256//len(items))
        n,t0 = 0,time.perf_counter()
        while time.perf_counter() - t0 < seconds/2: p.predict_batch(work, batch_size); n += len(work)
        rates[threads or 'per CPU'] = n/(time.perf_counter() - t0)
    return max(rates.values()),preds,rates

def closed_loop(send, k:int, concurrency:int, requests:int, seconds:float, want:list=None)->dict:
    "`concurrency` clients of `k` items per request, each sending its next when the last is answered, within bounds."
    lat,wrong,errors,lock,count = [],[0],[],threading.Lock(),iter(range(requests))
    def client():
        while time.perf_counter() < stop:
            with lock: i = next(count, None)
            if i is None: return
            t = time.perf_counter()
            try: got = send(i, k)
            except Exception as e:
                with lock: errors.append(repr(e)[:300])
                continue
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                if want is not None and got != request_items(want, i, k): wrong[0] += 1
    for i in range(min(concurrency, 4)): send(i, k)  # warm-up: connections open, the replicas' first batches
    t0 = time.perf_counter(); stop = t0 + seconds
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads: t.start()
    for t in threads: t.join(seconds + 120)
    elapsed,ms = time.perf_counter() - t0,np.array(lat or [np.nan])*1e3
    return dict(k=k, concurrency=concurrency, requests=len(lat), wrong=wrong[0], errors=errors,
                items_s=k*len(lat)/elapsed, **{f'p{q}': float(np.percentile(ms, q)) for q in (50, 95, 99)})

def default_bundle(arch:str, size:int)->Path:
    "An untrained `arch` image bundle of `size` px in a temporary folder (needs the train extra)."
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    tmp = Path(tempfile.mkdtemp())
    folder = make_image_folder(tmp/'shapes', classes=3, n_train=4, n_valid=4, size=size)
    learn = image_learner(image_dls(folder, size=size, bs=4), arch=arch)
    export_bundle(learn, tmp/'bundle', formats=('onnx',))
    return tmp/'bundle'

def run_target(name:str, bundle, items:list, want:list, base:float, levels:list, a)->dict:
    "Each level `(k, concurrency)`: the ceiling, then the served bundle, printed; the best items/s of each, per k."
    best = {}
    with TARGETS[name](bundle, items) as (served, ceiling):
        for k,c in levels:
            top = closed_loop(ceiling, k, c, a.requests, a.seconds)
            r = closed_loop(served, k, c, a.requests, a.seconds, want)
            b = best.setdefault(k, dict(served=0., ceiling=0.))
            b['served'],b['ceiling'] = max(b['served'], r['items_s']),max(b['ceiling'], top['items_s'])
            for what,x in (('ceiling', top), ('served', r)):
                ratio = f"{x['items_s']/min(base, top['items_s']):>8.2f}" if what == 'served' else ''
                print(f"{name:<7} {what:<8} {k:>3} {c:>4} {x['requests']:>8} {x['wrong']:>5} {len(x['errors']):>6} "
                      f"{x['p50']:>8.1f} {x['p95']:>8.1f} {x['p99']:>8.1f} {x['items_s']:>8.1f} {ratio}", flush=True)
                if x['errors']: print(f"   e.g. {x['errors'][0]}")
    return best

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('bundle', nargs='?')
    ap.add_argument('--arch', default='resnet18'); ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--targets', nargs='+', default=list(TARGETS))
    ap.add_argument('--concurrency', nargs='+', type=int, default=[1, 8, 32], help='clients, one item per request')
    ap.add_argument('--multi-concurrency', nargs='*', type=int, default=[2, 8],
                    help='clients, several items per request')
    ap.add_argument('--items-per-request', type=int, default=16)
    ap.add_argument('--requests', type=int, default=4000, help='most requests per level')
    ap.add_argument('--seconds', type=float, default=5, help='most seconds per level (each of ceiling and served)')
    ap.add_argument('--ray-replicas', type=int, default=2); ap.add_argument('--ray-threads', type=int, default=1)
    ap.add_argument('--ray-max-batch-size', type=int, default=64)
    ap.add_argument('--ray-batch-wait-ms', type=float, default=2.0)
    ap.add_argument('--triton-instances', type=int, default=2)
    ap.add_argument('--triton-threads', type=int, default=1, help='0: one per CPU')
    a = ap.parse_args()
    TRITON_OPTIONS.update(instances=a.triton_instances, threads=a.triton_threads or None)
    RAY_OPTIONS.update(replicas=a.ray_replicas, threads=a.ray_threads, max_batch_size=a.ray_max_batch_size,
                       batch_wait_ms=a.ray_batch_wait_ms)
    t0 = time.perf_counter()
    bundle = Path(a.bundle) if a.bundle else default_bundle(a.arch, a.size)
    items = bench_items(bundle)
    base,want,rates = in_process(bundle, items)
    k = a.items_per_request
    levels = [(1, c) for c in a.concurrency] + [(k, c) for c in a.multi_concurrency]
    print(f"bundle {bundle}: {len(items)} PNG items; in-process Predictor.predict_batch (batch 64): {base:.1f} items/s "
          f"(the better of onnxruntime threads: " + ', '.join(f"{t} {r:.1f}" for t,r in rates.items()) + ")")
    print(f"ray: {RAY_OPTIONS}; triton: {TRITON_OPTIONS}")
    print(f"{'target':<7} {'what':<8} {'k':>3} {'conc':>4} {'requests':>8} {'wrong':>5} {'errors':>6} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'items/s':>8} {'x min(in-proc, ceiling)':>8}")
    bests = {name: run_target(name, bundle, items, want, base, levels, a) for name in a.targets}
    after,_,_ = in_process(bundle, items)
    print(f"in-process again after the load: {after:.1f} items/s (before: {base:.1f}; the better of the two is the "
          f"baseline below); {time.perf_counter() - t0:.0f} s in all")
    base = max(base, after)
    for name,best in bests.items():
        one,many = best[1],best.get(k)
        ref = min(base, one['ceiling'])
        turns = 1/(1/base + 1/one['ceiling'])  # the engine's work and the model's taking turns on the same cores
        print(f"{name}, 1 item per request: best {one['served']:.1f} items/s, ceiling {one['ceiling']:.1f}, "
              f"= {one['served']/ref:.2f}x min(in-process, ceiling) (target >= 0.8): "
              f"{'met' if one['served'] >= 0.8*ref else 'NOT met'}; {one['served']/turns:.2f}x the rate "
              f"1/(1/in-process + 1/ceiling) = {turns:.1f} of the two taking turns")
        if many and k > 1: print(
            f"{name}, {k} items per request: best {many['served']:.1f} items/s (ceiling {many['ceiling']:.1f}) = "
            f"{many['served']/base:.2f}x in-process (target >= 0.8): "
            f"{'met' if many['served'] >= 0.8*base else 'NOT met'}")

if __name__ == '__main__': main()
