"""Triton as a target of the serving load benchmark (`benchmarks/serve_load.py`'s `TARGETS` take it as `triton`).

`triton_target(bundle, items=None)` writes the bundle's Triton repository into a temporary folder, runs `tritonserver` on
127.0.0.1 ports with its python-backend model (the bundle's full preprocessing, served by `Predictor`), yields
`send(i)`: item `i` (modulo the number of items; default items: `serve_load.bench_items(bundle)`, as every target of
`serve_load.py` sends) in one request over gRPC, its prediction dict returned, and stops
the server when the block ends. `send` is thread-safe: each thread has its own gRPC client (tritonclient.http's client is
not thread-safe, and one gRPC channel per thread also spreads the load over connections)."""
import contextlib, json, tempfile, threading
from pathlib import Path
import numpy as np

def _raw_items(bundle:Path, items:list)->list:
    "`items` as the python model's `item` elements: an image's file bytes, or a JSON row (the kind's `item_encoding`)."
    from xdeploy_nb.core import KINDS, read_manifest
    enc = KINDS[read_manifest(bundle)['preprocessing']['kind']].item_encoding
    if enc == 'json': return [json.dumps(r).encode() for r in items]
    return [o if isinstance(o, bytes) else Path(o).read_bytes() for o in items]

@contextlib.contextmanager
def triton_target(bundle, # The bundle directory
                  items:list=None, # Raw items: image files (paths or bytes), or table rows (dicts); None: `serve_load.bench_items(bundle)`
                  max_batch_size:int=32, # Largest batch Triton's dynamic batcher gathers
                  instances:int=1, # Instances of the python model
                  timeout:float=120 # Seconds to wait for the server
                 ):
    "Yield a thread-safe `send(i)` that asks a local Triton server for item `i`'s prediction."
    import tritonclient.grpc as grpcclient
    from xdeploy_nb.hosts.triton import triton_repository, tritonserver
    if items is None:
        from serve_load import bench_items  # benchmarks/serve_load.py, which imports this module
        items = bench_items(bundle)
    raw,local = _raw_items(Path(bundle), items),threading.local()
    with tempfile.TemporaryDirectory(prefix='xdeploy-triton-load-') as tmp:
        triton_repository(bundle, Path(tmp)/'repo', name='model', max_batch_size=max_batch_size, instances=instances)
        with tritonserver(Path(tmp)/'repo', models=['model_python'], timeout=timeout) as server:
            def send(i:int)->dict:
                if not hasattr(local, 'client'): local.client = grpcclient.InferenceServerClient(server.grpc)
                x = grpcclient.InferInput('item', [1, 1], 'BYTES')
                x.set_data_from_numpy(np.array([[raw[i % len(raw)]]], dtype=np.object_))
                return json.loads(local.client.infer('model_python', [x], client_timeout=60).as_numpy('prediction')[0, 0])
            yield send
