"""Triton as a target of the serving load benchmark (`benchmarks/serve_load.py`'s `TARGETS` take it as `triton`).

`triton_target(bundle, items=None)` writes the bundle's Triton repository into a temporary folder, runs `tritonserver`
on 127.0.0.1 ports with its python-backend model (the bundle's full preprocessing, served by `Predictor`), yields
`send(i)`: item `i` (modulo the number of items; default items: `serve_load.bench_items(bundle)`, as every target of
`serve_load.py` sends) in one request over gRPC, its prediction dict returned, and stops the server when the block
ends. `send` is thread-safe: each thread has its own gRPC client (tritonclient.http's client is not thread-safe, and
one gRPC channel per thread also spreads the load over connections).

With `noop=True` (`serve_load.py`), the server also runs `noop_python`, a python-backend model with the same config
that answers constants (`NOOP_MODEL`): Triton's own ceiling. It then yields `(served, ceiling)`, each `f(i, k)` sending
items `i*k .. i*k+k-1` as one `[k, 1]` BYTES request (`served` returns their prediction dicts)."""
import contextlib, json, tempfile, threading
from pathlib import Path
import numpy as np

def _raw_items(bundle:Path, items:list)->list:
    "`items` as the python model's `item` elements: an image's file bytes, or a JSON row (the kind's `item_encoding`)."
    from xdeploy_nb.core import KINDS, read_manifest
    enc = KINDS[read_manifest(bundle)['preprocessing']['kind']].item_encoding
    if enc == 'json': return [json.dumps(r).encode() for r in items]
    return [o if isinstance(o, bytes) else Path(o).read_bytes() for o in items]

NOOP_MODEL = '''"""The ceiling of Triton's python backend: answers each request with constants, one per item."""
import json, os, sys
sys.path[:0] = [p for p in os.environ.get('XDEPLOY_TRITON_PATH', '').split(os.pathsep) if p and p not in sys.path]
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args): self.width = int(json.loads(args['model_config'])['output'][1]['dims'][0])
    def execute(self, requests):
        out = []
        for r in requests:
            n = pb_utils.get_input_tensor_by_name(r, 'item').as_numpy().shape[0]
            text = np.full((n, 1), b'{}', dtype=np.object_)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor('prediction', text),
                                                   pb_utils.Tensor('probs', np.zeros((n, self.width), np.float32))]))
        return out
'''

def _noop_model(bundle:Path, repo:Path, max_batch_size:int, instances:int):
    "Write `repo/noop_python`: the bundle's python model's config (batching included) with `NOOP_MODEL` as its model."
    from xdeploy_nb.core import read_manifest
    from xdeploy_nb.hosts.triton import pbtxt, python_config
    (repo/'noop_python'/'1').mkdir(parents=True)
    cfg = python_config(read_manifest(bundle), 'noop_python', max_batch_size, instances)
    (repo/'noop_python'/'config.pbtxt').write_text(pbtxt(cfg) + '\n')
    (repo/'noop_python'/'1'/'model.py').write_text(NOOP_MODEL)

@contextlib.contextmanager
def triton_target(bundle, # The bundle directory
                  items:list=None, # Image files (paths or bytes) or table rows (dicts); None: `serve_load.bench_items`
                  max_batch_size:int=32, # Largest batch Triton's dynamic batcher gathers
                  instances:int=1, # Instances of the python model
                  threads:int=None, # onnxruntime threads of each instance; None: one per CPU
                  timeout:float=120, # Seconds to wait for the server
                  noop:bool=False # Yield `(served, ceiling)` (serve_load.py's targets), with a no-op model beside
                 ):
    "Yield a thread-safe `send(i)`, item `i`'s prediction from a local Triton server; with `noop`, `(served, ceiling)`."
    import tritonclient.grpc as grpcclient
    from xdeploy_nb.hosts.triton import triton_repository, tritonserver
    if items is None:
        from serve_load import bench_items  # benchmarks/serve_load.py, which imports this module
        items = bench_items(bundle)
    raw,local = _raw_items(Path(bundle), items),threading.local()
    with tempfile.TemporaryDirectory(prefix='xdeploy-triton-load-') as tmp:
        repo = Path(tmp)/'repo'
        triton_repository(bundle, repo, name='model', max_batch_size=max_batch_size, instances=instances,
                          **({} if threads is None else dict(threads=threads)))
        if noop: _noop_model(Path(bundle), repo, max_batch_size, instances)
        with tritonserver(repo, models=['model_python', *(['noop_python'] if noop else [])], timeout=timeout) as server:
            def infer(model:str, i:int, k:int):
                "Items `i*k .. i*k+k-1` (modulo the number of items) in one request to `model`."
                if not hasattr(local, 'client'): local.client = grpcclient.InferenceServerClient(server.grpc)
                x = grpcclient.InferInput('item', [k, 1], 'BYTES')
                batch = np.array([raw[(i*k + j) % len(raw)] for j in range(k)], dtype=np.object_)
                x.set_data_from_numpy(batch.reshape(k, 1))
                return local.client.infer(model, [x], client_timeout=60).as_numpy('prediction')
            served = lambda i, k: [json.loads(s) for s in infer('model_python', i, k).reshape(-1)]
            if noop: yield served,lambda i, k: (infer('noop_python', i, k), None)[1]
            else: yield lambda i: served(i, 1)[0]
