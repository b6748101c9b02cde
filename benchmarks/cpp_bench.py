"""The C++ host against the Python Predictor, side by side in one run, on one bundle (a tiny image classifier, exported here):
per-image latency (both preprocess with preprocess.onnx: `Predictor(preprocess='graph')`, one image at a time, warm, in-process
medians), process start to
first answer (a fresh process each: `xdeploy predict` vs `xdeploy-predict`), and the size of what an app ships (OUT/dist).
Targets: latency C++ / Python <= 1.0; start to first answer C++ / Python <= 0.5.
Run: python benchmarks/cpp_bench.py [--runs N]"""
import argparse, resource, shutil, statistics, subprocess, sys, tempfile, time, warnings
from pathlib import Path
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.export import export_bundle
from xdeploy_nb.hosts.cpp import cpp_project
from xdeploy_nb.pregraph import photo_like
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.train import image_dls, trained_learner

def _cpu(children:bool=False)->float:
    "CPU seconds (user + system) of this process, or of its finished children."
    r = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def _timed(cmd:list, env=None)->tuple:
    "`(wall seconds, CPU seconds)` of running `cmd` to its end."
    t0,c0 = time.perf_counter(),_cpu(True); r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt,dc = time.perf_counter() - t0,_cpu(True) - c0
    if r.returncode: sys.exit(f"{cmd[0]} failed: {r.stderr}{r.stdout}")
    return dt,dc

def main(runs:int=5):
    with tempfile.TemporaryDirectory() as tmp: return _bench(Path(tmp), runs)

def _bench(tmp:Path, runs:int)->dict:
    "The measurements, with the bundle, the images and the project in `tmp`."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn = trained_learner(image_dls(make_image_folder(classes=3, n_train=8, n_valid=4, size=64), size=64, bs=8), epochs=2)
        export_bundle(learn, tmp/'bundle', formats=('onnx',))
    files = []
    for i,(h,w) in enumerate([(480, 640), (333, 517), (720, 1280), (64, 64)]):
        photo_like(h, w, seed=i).save(tmp/f'photo{i}.jpg', quality=90); files.append(tmp/f'photo{i}.jpg')
    app = cpp_project(tmp/'bundle', tmp/'app', build=True)
    exe,bundle = app/'dist'/'bin'/'xdeploy-predict',app/'dist'/'bundle'
    # per image, warm: the median over the items, each predicted on its own (read, decode, preprocess.onnx, model), in one process
    # each: the Python Predictor in this one, the C++ host with --time (it times each item itself); interleaved, best of `runs`
    items,one,lat = files*25,[str(exe), str(bundle), str(files[0])],{}
    for threads in (None, 1):  # the model's intra-op threads: one per CPU (both hosts' default), and one
        p,rows = Predictor(bundle, device='cpu', preprocess='graph', threads=threads),[]
        for f in files: p.predict(f)
        for _ in range(runs):
            ms = []
            for f in items: t0 = time.perf_counter(); p.predict(f); ms.append(time.perf_counter() - t0)
            r = subprocess.run([str(exe), str(bundle), *map(str, items), '--time', *(['--threads', str(threads)] if threads else [])],
                               capture_output=True, text=True, env={})
            if r.returncode: sys.exit(f"xdeploy-predict failed: {r.stderr}")
            t = r.stderr.split()
            rows.append((statistics.median(ms), float(t[t.index('per_item_ms') + 1])/1e3))
        lat[threads] = (min(r[0] for r in rows), min(r[1] for r in rows))
    py,cpp = lat[None]
    # process start to first answer: a fresh process each, `xdeploy predict` against `xdeploy-predict`, interleaved
    starts = [(_timed([shutil.which('xdeploy'), 'predict', str(bundle), str(files[0]), '--preprocess', 'graph'])[0], _timed(one, env={})[0])
              for _ in range(runs)]
    py_start,cpp_start = min(s[0] for s in starts),min(s[1] for s in starts)
    size = sum(f.stat().st_size for f in (app/'dist').rglob('*') if f.is_file())
    lib = (app/'dist'/'lib'/'libonnxruntime.so.1').stat().st_size
    print(f"bundle: tiny CNN at 64x64, photo-like JPEGs {', '.join(f'{w}x{h}' for h,w in [(480, 640), (333, 517), (720, 1280), (64, 64)])}; best of {runs}")
    for threads,(py_t,cpp_t) in lat.items():
        print(f"per image (read, decode, preprocess.onnx, model; one at a time, median), {threads or 'one per CPU'} model thread(s): "
              f"Python {py_t*1e3:.2f} ms, C++ {cpp_t*1e3:.2f} ms: C++ / Python = {cpp_t/py_t:.2f} (target <= 1.0)")
    print(f"process start to first answer: Python {py_start*1e3:.0f} ms, C++ {cpp_start*1e3:.0f} ms: C++ / Python = {cpp_start/py_start:.3f} (target <= 0.5)")
    print(f"what an app ships (OUT/dist): {size/1e6:.1f} MB, of which ONNX Runtime {lib/1e6:.1f} MB, the bundle "
          f"{sum(f.stat().st_size for f in bundle.iterdir())/1e6:.2f} MB, xdeploy-predict {exe.stat().st_size/1e6:.2f} MB")
    return dict(latency_ratio=cpp/py, latency_ratio_1_thread=lat[1][1]/lat[1][0], start_ratio=cpp_start/py_start, dist_bytes=size)

if __name__ == '__main__':
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0]); a.add_argument('--runs', type=int, default=5)
    main(a.parse_args().runs)
