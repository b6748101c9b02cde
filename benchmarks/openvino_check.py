#!/usr/bin/env python
"""Bundles on OpenVINO beside the CPU: each ONNX variant answered by `Predictor(device='openvino')` (every node on
OpenVINO: CPU fallback disabled) against `Predictor(device='cpu')`, and timed side by side with the ratio.

It needs an onnxruntime with an OpenVINO device, which the plain `onnxruntime` wheel has not: run it with the Python of
the virtual environment that tools/test.sh makes, `.venv-openvino` (`onnxruntime-openvino`, the full build, which must
not share a venv with `onnxruntime`: it writes the same onnxruntime/ folder), or where the plugin
`onnxruntime-ep-openvino` offers a device (Intel CPUs). It imports only the runtime (onnxruntime, numpy, Pillow):

    .venv-openvino/bin/python benchmarks/openvino_check.py BUNDLE [BUNDLE ...] [--items ITEMS.json] [--bench]
        [--batch-sizes 1 32] [--min-time 0.5] [--device openvino] [--out REPORT.json]

For each bundle and each ONNX variant it has (fp32, fp16, int8-static, ...):
- `Predictor.check()` on OpenVINO: the largest difference from the Learner's outputs on the bundle's sample (a
  variant's: from its own CPU outputs);
- with `--items` (a JSON file: bundle path -> items, image paths or table rows, e.g. the validation set), both
  Predictors' outputs for all of them: the largest difference, and how often the top-1 class agrees;
- with `--bench`: `xdeploy_nb.bench.bench_cell` on 'cpu' and on the device, each in this process one after the other,
  at each batch size, and the ratio of the device's p50 time to the CPU's (below 1: the device is faster). A variant the
  Predictor refuses on the device (its outputs miss the bundle's sample) is timed with plain onnxruntime sessions, every
  node on the device, and its row says so: how fast the answer is that is not given.
It prints one table and one JSON line (the last line of stdout), which tests/test_openvino.py reads. Exit status 0
whatever the rows say, 2 if the device is not here (with the reason), 1 if the script itself breaks.

Make the bundles first, in the main venv (`python benchmarks/openvino_check.py --make DIR` trains two small models,
cached, and exports an image bundle with fp16 and int8-static variants and a tabular one, then writes DIR/items.json).
"""
import argparse, json, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # this checkout's xdeploy_nb

def make(out:Path)->dict:
    "Export the image and tabular bundles the check runs on (the [train] extras: torch, fastai) and their items; return the items."
    from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
    from xdeploy_nb.train import image_dls, tabular_dls, trained_learner, tiny_cnn
    from xdeploy_nb.export import export_bundle
    from fastai.vision.all import Learner, accuracy
    out.mkdir(parents=True, exist_ok=True)
    folder = make_image_folder(classes=3, n_train=30, n_valid=10, size=32)
    dls = image_dls(folder, size=32, bs=16)
    learn = trained_learner(dls, epochs=3)
    export_bundle(learn, out/'image', formats=('onnx',), variants=('fp16', 'int8-static'), overwrite=True, keep_unfaithful=True)
    df = load_penguins()
    tab = trained_learner(tabular_dls(df, 'species', PENGUIN_CATS, PENGUIN_CONTS), epochs=3)
    export_bundle(tab, out/'tabular', formats=('onnx',), variants=('fp16', 'int8-static'), overwrite=True, keep_unfaithful=True)
    rows = tab.dls.valid_ds.items[PENGUIN_CATS + PENGUIN_CONTS].to_dict('records')
    items = {str(out/'image'): [str(f) for f in learn.dls.valid_ds.items],
             str(out/'tabular'): [{k: (None if v != v else v) for k,v in r.items()} for r in rows]}
    (out/'items.json').write_text(json.dumps(items, default=str))
    return items

def compare(bundle:Path, variant:str, device:str, items:list, step:float=None)->dict:
    "One row: the variant of `bundle` on `device` against the CPU, on the sample and on `items`."
    from xdeploy_nb.runtime import Predictor
    import numpy as np
    row = dict(bundle=bundle.name, variant=variant, device=device, error=None)
    try:
        cpu,dev = Predictor(bundle, device='cpu', variant=variant),Predictor(bundle, device=device, variant=variant)
        d = dev.describe()
        row.update(why=d['why'], providers=d['providers'], sample_diff=dev.check(), cpu_sample_diff=cpu.check())
        if items:
            x = cpu.prepare(items)
            a,b = cpu.run(x),dev.run(x)
            row.update(n_items=len(items), max_diff=float(np.abs(a.astype(np.float64) - b).max()))
            if a.ndim == 2 and a.shape[1] > 1 and cpu.manifest['task'] == 'single_label':
                row['top1_agreement'] = float((a.argmax(1) == b.argmax(1)).mean())
    except Exception as e:
        row['error'] = f"{type(e).__name__}: {' '.join(str(e).split())}"
        if items and 'differ from the' in row['error']: row.update(raw(bundle, variant, device, items))
    return row

def raw(bundle:Path, variant:str, device:str, items:list)->dict:
    "For a variant the Predictor refused: its outputs on `items` from plain onnxruntime sessions, on the device (every node there) and on the CPU."
    import numpy as np, onnxruntime as ort
    from xdeploy_nb.accel import providers_for
    from xdeploy_nb.core import read_manifest
    from xdeploy_nb.runtime import Predictor
    cpu = Predictor(bundle, device='cpu', variant=variant)
    x,out = cpu.prepare(items),{}
    for name in ('cpu', device):
        plan,so = providers_for(name),ort.SessionOptions()
        out[name] = ort.InferenceSession(str(bundle/cpu.artifact['file']), so, **plan.apply(so)).run(None, x)[0]
    a,b = out['cpu'],out[device]
    return dict(raw_max_diff=float(np.abs(a.astype(np.float64) - b).max()), raw_top1_agreement=float((a.argmax(1) == b.argmax(1)).mean()) if a.ndim == 2 else None)

def timed(bundle:Path, variant:str, device:str, batch_sizes:list, min_time:float)->dict:
    "The p50 ms of the variant on the CPU and on `device` at each batch size, and their ratio (device / CPU)."
    from xdeploy_nb.bench import bench_cell
    cells = {dv: bench_cell(bundle, 'onnx', dv, variant, batch_sizes=batch_sizes, min_time=min_time) for dv in ('cpu', device)}
    out = {}
    for bs in batch_sizes:
        p = {dv: next((r.get('p50_ms') for r in c['rows'] if r['batch_size'] == bs), None) for dv,c in cells.items()}
        out[bs] = dict(cpu_ms=p['cpu'], device_ms=p[device], ratio=p[device]/p['cpu'] if p['cpu'] and p[device] else None,
                       error=cells[device]['error'] or cells['cpu']['error'])
    return out

def raw_timed(bundle:Path, variant:str, device:str, batch_sizes:list, min_time:float)->dict:
    "For a variant the Predictor refused: `timed`'s figures from plain onnxruntime sessions (every node on the device), marked as such."
    import onnxruntime as ort
    from xdeploy_nb.accel import providers_for
    from xdeploy_nb.bench import sample_batch, time_runs
    from xdeploy_nb.core import read_manifest
    m = read_manifest(bundle)
    a = next(a for a in m['artifacts'] if a['format'] == 'onnx' and a.get('variant', 'fp32') == variant)
    sess = {}
    for name in ('cpu', device):
        plan,so = providers_for(name),ort.SessionOptions()
        sess[name] = ort.InferenceSession(str(bundle/a['file']), so, **plan.apply(so))
    out = {}
    for bs in batch_sizes:
        x = sample_batch(bundle, m, bs)
        p = {n: time_runs(lambda: s.run(None, x), min_time, 5)['p50_ms'] for n,s in sess.items()}
        out[bs] = dict(cpu_ms=p['cpu'], device_ms=p[device], ratio=p[device]/p['cpu'], error=None, raw=True)
    return out

def table(rows:list, batch_sizes:list)->str:
    "The rows as plain text."
    head = ['bundle', 'variant', 'device', 'sample diff', 'items', 'max diff', 'top-1 agree'] + [
        h for bs in batch_sizes for h in (f'cpu ms @{bs}', f'dev ms @{bs}', f'dev/cpu @{bs}')] + ['error']
    f = lambda v, s: '' if v is None else s.format(v)
    lines = []
    for r in rows:
        t = r.get('timing', {})
        lines.append([r['bundle'], r['variant'], r['device'], f(r.get('sample_diff'), '{:.2g}'), f(r.get('n_items'), '{}'),
                      f(r.get('max_diff'), '{:.2g}'), f(r.get('top1_agreement'), '{:.0%}')]
                     + [c for bs in batch_sizes for c in (f(t.get(bs, {}).get('cpu_ms'), '{:.3f}'), f(t.get(bs, {}).get('device_ms'), '{:.3f}'),
                                                          f(t.get(bs, {}).get('ratio'), '{:.2f}'))]
                     + [('refused, timed with plain sessions: ' if any(x.get('raw') for x in t.values()) else '') + (r['error'] or '')[:160]])
    w = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = lambda cs: '  '.join(str(c).ljust(n) for c,n in zip(cs, w)).rstrip()
    return '\n'.join([fmt(head), fmt(['-'*n for n in w])] + [fmt(l) for l in lines])

def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('bundles', nargs='*', type=Path)
    ap.add_argument('--make', type=Path, help="export the bundles into this folder (main venv, [train] extras) and stop")
    ap.add_argument('--items', type=Path, help="JSON: bundle path -> items to compare on")
    ap.add_argument('--device', default='openvino')
    ap.add_argument('--bench', action='store_true', help="also time each variant on the CPU and on the device")
    ap.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 32])
    ap.add_argument('--min-time', type=float, default=0.5)
    ap.add_argument('--out', type=Path, help="also write the report as JSON here")
    args = ap.parse_args(argv)
    if args.make: make(args.make); print(f"wrote {args.make}"); return 0
    if not args.bundles: ap.error("name the bundles (or --make DIR)")
    import onnxruntime as ort
    from xdeploy_nb.core import XDeployError, read_manifest
    from xdeploy_nb.accel import providers_for
    try: plan = providers_for(args.device)
    except XDeployError as e:
        print(' '.join(str(e).split())); print(json.dumps(dict(error=str(e), rows=[]))); return 2
    items = json.loads(args.items.read_text()) if args.items else {}
    t0,rows = time.perf_counter(),[]
    for b in args.bundles:
        for a in read_manifest(b)['artifacts']:
            if a['format'] != 'onnx': continue
            v = a.get('variant', 'fp32')
            row = compare(b, v, args.device, items.get(str(b)))
            if args.bench: row['timing'] = (raw_timed if row['error'] else timed)(b, v, args.device, args.batch_sizes, args.min_time)
            rows.append(row)
            print(f"  {b.name} {v} @{args.device}: {row['error'] or 'ran'}", file=sys.stderr, flush=True)
    meta = dict(onnxruntime=ort.__version__, providers=ort.get_available_providers(), plan=plan.why, cpus=os.cpu_count(),
                seconds=time.perf_counter() - t0, batch_sizes=args.batch_sizes if args.bench else None)
    print(table(rows, args.batch_sizes if args.bench else []))
    print(f"onnxruntime {meta['onnxruntime']} ({', '.join(meta['providers'])}); {args.device}: {plan.why}; {meta['seconds']:.1f} s")
    report = dict(meta=meta, rows=rows)
    if args.out: args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0

if __name__ == '__main__': sys.exit(main())
