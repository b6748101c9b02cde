#!/usr/bin/env python
"""A bundle on this machine's accelerators: each artifact run on CUDA, TensorRT and torch CUDA, checked against the bundle's sample and timed against the CPU in the same run; one table, one JSON file.

On the device machine (the device tool's `run`), from the repo root, with a bundle made here and carried:

    set -o pipefail; bash benchmarks/device_check.sh .device-bundle 2>&1 | tee $OUT/device_check.log

    run(command=<that line>, carry=['.device-bundle'], timeout_s=540)

It writes $OUT/device_check.json and the log, which the tool brings back. Make the bundle first, here, in the root of the
checkout that the device tool sends (it needs the [train] extras; about 2 minutes on 2 cores, 6 MB; `.device-bundle/` is
git-ignored, so it travels only when `carry` names it):

    python benchmarks/device_check.py .device-bundle --make-bundle --make-only

Usage: python benchmarks/device_check.py BUNDLE [--make-bundle [--make-only] [--arch tiny] [--widths 32 64 128 256]
       [--size 64] [--epochs 6]] [--install [--wheels DIR ...]] [--budget 420] [--devices cuda tensorrt torch:cuda:0]
       [--batch-sizes 1 64] [--min-time 0.5] [--out PATH]

What it does, in order:
1. `--make-bundle`: trains a small CNN (`tiny_cnn` with `--widths`, or an `--arch` of `xdeploy_nb.train.ARCHS`) on the
   generated shapes images and exports BUNDLE with `export_bundle`: the fp32 ONNX model, its fp16 and int8-static
   variants, TorchScript (model.ts) and torch.export (model.pt2). The whole bundle must travel in one call of the device
   tool (64 MiB with the checkout), which rules out resnet18 (45 MB per fp32 artifact); mobilenet_v3_small fits but, from
   random weights at 64 px, gives the same outputs for every image, which would make the checks prove nothing (the script
   warns when a model does that).
2. `--install` (the wrapper passes it): on an NVIDIA machine (one with `nvidia-smi`) gets `onnxruntime-gpu` of the
   installed onnxruntime's version (from a wheel in the `--wheels` folders, whole or split into `*.whl.part*` pieces that
   are joined in name order; else from the package registry), then uninstalls onnxruntime and installs it; installs any
   other wheel in those folders; and installs the torch/torchvision that settings.ini pins if torch sees no CUDA.
   Elsewhere it installs nothing and says so. Each step prints what it did; a step that fails is reported, not fatal.
3. lists the devices (`xdeploy_nb.accel.list_devices()`) and opens `Predictor(BUNDLE, device='auto')`: what it chose
   and why (`describe()['why']`).
4. runs each ONNX variant (fp32, fp16, int8-static) on 'cpu' and on each of `--devices` that is an onnxruntime device
   ('cuda', 'tensorrt'), and model.ts / model.pt2 on 'cpu' and on each torch device ('torch:cuda:0'). A device this
   machine lacks, or whose execution provider does not start, gives a row 'not present' with the reason (with
   onnxruntime's own log lines saying why). Each cell runs in its own process (a crash or a hang loses that cell only):
   - `Predictor.check()`: the largest difference from the Learner's outputs on the bundle's sample (a variant: from its
     own CPU outputs); pass if at most the variant's `sample_tolerance` (`xdeploy_nb.core.VARIANTS`: fp16 1e-2, int8 5e-2,
     fp32 and the torch formats 1e-3);
   - times `Predictor.run` at each batch size (`xdeploy_nb.bench.time_runs` on `sample_batch`): host-to-device copies
     included, as an application sees it. The speed-up is the CPU row's p50 over the row's p50, for the same format,
     variant and batch size.
   Before a CUDA session it calls `onnxruntime.preload_dlls()` (CUDA and cuDNN from the nvidia pip packages, which torch
   brings); `--no-preload` leaves that to the Predictor alone.
5. prints one table and writes the JSON (`--out`; default $OUT/device_check.json where OUT is set, else
   ./device_check.json): `meta` (machine, versions, budget), `install` (what step 2 did), `devices`, `auto`, `rows`.

Statuses: pass, FAIL (ran, but differs by more than the tolerance; or its execution provider leaves nodes to the CPU, which
the Predictor refuses: CPU fallback is disabled for every device but the CPU, so a row is never CPU numbers labelled with
a GPU; the reason says which nodes), not present, not in bundle (the export left the variant out: its reason), error
(anything else: the message), skipped (the `--budget` ran out first).
`--budget` seconds (default 420) bound everything after step 1, so that one call fits in 8 minutes with the install:
a cell gets at most `--cell-timeout` seconds and what is left of the budget. Exit status 0 whatever the rows say; 2 for
a bad argument (no bundle at BUNDLE); 1 only if this script itself breaks.

On the device machine: its python3 has torch with CUDA, onnxruntime (CPU), numpy and Pillow, and no fastai (hence the
bundle made here). Its notes say that no package registry can be reached from it. Then onnxruntime-gpu cannot be
installed there, and its wheel (about 250 MB) is over what one call carries (64 MiB): the 'cuda' and 'tensorrt' rows say
'not present' with the reason, and the torch CUDA rows still run. To bring the wheel anyway, cut it here into
pieces of at most 60 MiB (`split -b 60M <wheel> <wheel>.part` makes <wheel>.partaa, .partab, ...), put each piece in a
git-ignored folder of its own (.whl0, .whl1, ...), and carry one folder per call while the machine stays warm (files
stay there between calls; call K: carry=['.whlK']); the last call carries the bundle too, and --install joins the
pieces it finds in the .whl* folders.
"""
import argparse, configparser, contextlib, glob, io, json, os, platform, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose xdeploy_nb the cells import
ABSENT = ('could not start', 'has no device', 'not installed here')  # what xdeploy_nb says when a device or its EP is missing
FELL_BACK = 'would fall back to the CPU'  # what xdeploy_nb says when the EP started but leaves nodes to the CPU (it refuses the session)
DIFFERS = 'computes this model differently'  # what it says when a device's outputs miss the bundle's sample (it refuses to answer)
REASON_CHARS = 140  # of a row's reason, in the printed table (the JSON has all of it)

# --- child processes ----------------------------------------------------------------------------------------------

def child_env()->dict:
    "The environment of a child process: this checkout's xdeploy_nb first on the path, output unbuffered."
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get('PYTHONPATH', '')) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED='1')

def _tail(text:str, n:int=6)->str:
    "The last `n` non-empty lines of `text`, joined with ' | '."
    return ' | '.join(l.strip() for l in text.strip().splitlines()[-n:] if l.strip())

def run_child(mode:str, # '--probe' or '--cell'
              arg:dict, # What the child works on, passed as JSON
              timeout:float # Seconds it may take
             )->tuple:
    "`(result, stderr)`: this script run with `mode` in a new process; a crash or a timeout becomes `{'error': ...}`."
    cmd = [sys.executable, str(Path(__file__).resolve()), mode, json.dumps(arg)]
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1, timeout), env=child_env())
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors='replace') if isinstance(e.stderr, bytes) else (e.stderr or '')
        return dict(error=f"stopped after {timeout:.0f} s (--cell-timeout or --budget)"),err
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        try: return json.loads(lines[-1]),r.stderr
        except json.JSONDecodeError: pass
    return dict(error=f"the process exited with code {r.returncode}: {_tail(r.stderr, 3) or _tail(r.stdout, 3) or '(no output)'}"),r.stderr

def ort_log(stderr:str)->str:
    "onnxruntime's own error and warning lines in `stderr` (why an execution provider did not start), without colours and times."
    lines = [re.sub(r'\x1b\[[0-9;]*m', '', l).strip() for l in stderr.splitlines()]
    keep = [re.sub(r'^.*?\[([EW]):onnxruntime:[^\]]*\]\s*', r'[\1] ', l) for l in lines
            if re.search(r'\[[EW]:onnxruntime|Failed to (load|create)|cannot open shared object', l)]
    return ' | '.join(dict.fromkeys(keep))[:1500]

def ort_cause(log:str)->str:
    "The line of `ort_log` that says why a provider did not start: the library that failed to load and why, if it says."
    if m := re.search(r'Failed to load library \S*?([^/\s]+\.so\S*) with error: ([^|]+)', log): return f"{m[1]}: {m[2].strip()}"
    return next((l.strip() for l in log.split(' | ') if l.startswith('[E]')), '')

def _preload(on:bool)->str:
    "Load CUDA and cuDNN from the nvidia pip packages (`onnxruntime.preload_dlls`) where onnxruntime has a CUDA provider; what it said."
    import onnxruntime as ort
    if not on or not hasattr(ort, 'preload_dlls') or 'CUDAExecutionProvider' not in ort.get_available_providers(): return ''
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf): ort.preload_dlls()
    except Exception as e: buf.write(f"preload_dlls failed: {type(e).__name__}: {e}")
    return _tail(buf.getvalue()) or 'preload_dlls: loaded'

def _one_line(e:Exception)->str: return ' '.join(str(e).split())

def probe(arg:dict)->dict:
    "In a child: versions, `list_devices()`, whether each of `arg['devices']` is here (else why not), and what 'auto' chooses."
    import onnxruntime as ort
    from xdeploy_nb.core import XDeployError
    from xdeploy_nb.accel import list_devices, providers_for
    preload = _preload(arg['preload'])
    devs = list_devices()
    out = dict(onnxruntime=ort.__version__, providers=ort.get_available_providers(), preload=preload,
               devices=[dict(d) for d in devs], plugins=list(devs.plugins), present={})
    torch = sys.modules.get('torch')  # list_devices imported it, if it is installed
    if torch is not None: out.update(torch=torch.__version__, torch_cuda=torch.version.cuda, torch_sees_cuda=torch.cuda.is_available())
    torch_names = [d['name'] for d in devs if d['kind'] == 'torch']
    for name in arg['devices']:
        if name.startswith('torch:'):
            if name in torch_names: out['present'][name] = None
            elif torch is None: out['present'][name] = "torch is not installed here (a TorchScript or .pt2 artifact runs with torch)."
            else: out['present'][name] = (f"torch {torch.__version__} has no device {name!r}" + (f"; it sees {', '.join(torch_names)}" if torch_names else
                    f": torch.cuda.is_available() is False ({'a CPU-only build' if torch.version.cuda is None else f'built for CUDA {torch.version.cuda}'})") + '.')
            continue
        try: providers_for(name, devs); out['present'][name] = None
        except XDeployError as e: out['present'][name] = _one_line(e)
    from xdeploy_nb.runtime import Predictor
    t0 = time.perf_counter()
    try:
        p = Predictor(arg['bundle'], device='auto')
        d = p.describe()
        out['auto'] = dict(device=p.device, why=d['why'], providers=d['providers'], seconds=time.perf_counter() - t0, error=None)
    except Exception as e: out['auto'] = dict(device=None, why=None, error=_one_line(e), seconds=time.perf_counter() - t0)
    return out

def cell(arg:dict)->dict:
    "In a child: open one artifact on one device with `Predictor`, check it on the bundle's sample, time it at each batch size."
    from xdeploy_nb.bench import sample_batch, time_runs
    res = dict(phase='load', error=None, timings=[])
    try:
        if arg['format'] == 'onnx' and arg['device'] != 'cpu': res['preload'] = _preload(arg['preload'])
        from xdeploy_nb.runtime import Predictor
        t0 = time.perf_counter()
        p = Predictor(arg['bundle'], device=arg['device'], format=arg['format'], variant=arg['variant'], threads=arg.get('threads'),
                      trust_code=True)  # the bundle this script made (or was handed) itself: its TorchScript and .pt2 run on torch
        d = p.describe()
        res.update(load_s=time.perf_counter() - t0, chosen=p.device, why=d['why'], providers=d['providers'], threads=d['threads'], phase='check')
        res['max_diff'] = p.check()
        res['phase'] = 'time'
        for bs in arg['batch_sizes']:
            try:
                x = sample_batch(Path(arg['bundle']), p.manifest, bs)
                res['timings'].append(dict(batch_size=bs, **time_runs(lambda: p.run(x), arg['min_time'], arg['min_runs'])))
            except Exception as e: res['timings'].append(dict(batch_size=bs, error=_one_line(e)))
        res['phase'] = 'done'
    except Exception as e: res['error'] = f"{type(e).__name__}: {_one_line(e)}"
    return res

# --- installing -----------------------------------------------------------------------------------------------------

def _dists()->dict:
    "Installed distributions, normalised name -> version (read fresh: pip may have just changed them)."
    import importlib.metadata as md
    return {re.sub(r'[-_.]+', '-', (d.metadata['Name'] or '')).lower(): d.version for d in md.distributions()}

def _pip(args:list, timeout:float)->tuple:
    "`(ok, last lines)` of `python -m pip args`, stopped after `timeout` seconds."
    cmd = [sys.executable, '-m', 'pip', '--disable-pip-version-check', *args]
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1, timeout))
    except subprocess.TimeoutExpired: return False,f"pip {args[0]} stopped after {timeout:.0f} s"
    return r.returncode == 0,_tail(r.stdout + '\n' + r.stderr, 3)

def _local_wheel(dirs:list, prefix:str, tmp:Path)->Path:
    "A wheel `prefix*.whl` in `dirs`, whole, or joined from its `*.whl.part*` pieces (in name order) into `tmp`; None if neither."
    whole = sorted(f for d in dirs for f in glob.glob(os.path.join(d, f"{prefix}*.whl")))
    if whole: return Path(whole[0])
    parts = sorted((f for d in dirs for f in glob.glob(os.path.join(d, f"{prefix}*.whl.part*"))), key=os.path.basename)
    if not parts: return None
    dst = tmp/re.sub(r'\.part.*$', '', os.path.basename(parts[0]))
    with open(dst, 'wb') as out:
        for p in parts:
            with open(p, 'rb') as f: shutil.copyfileobj(f, out)
    return dst

def torch_pins(settings:Path=ROOT/'settings.ini')->list:
    "The torch and torchvision requirements of the [train] extras in settings.ini, e.g. ['torch>=2.6,<2.15', ...]."
    cfg = configparser.ConfigParser(); cfg.read(settings)
    reqs = [l.split('#')[0].strip() for l in cfg['DEFAULT'].get('train_requirements', '').splitlines()]
    return [r for r in reqs if re.match(r'(torch|torchvision)\b(?![-_])', r)]

def install_ort_gpu(wheels:list, left)->list:
    "Replace onnxruntime with onnxruntime-gpu of the same version, from a wheel in `wheels` or the registry; what was done."
    have = _dists()
    if 'onnxruntime-gpu' in have: return [f"onnxruntime-gpu {have['onnxruntime-gpu']} is installed already: kept"]
    v = have.get('onnxruntime')
    want = f"onnxruntime-gpu=={v}" if v else "onnxruntime-gpu>=1.22"
    tmp = Path(tempfile.mkdtemp(prefix='xdeploy-wheels-'))
    wheel = _local_wheel(wheels, f"onnxruntime_gpu-{v}-" if v else 'onnxruntime_gpu-', tmp)
    log = [f"{want}: the wheel {wheel} (carried)"] if wheel else []
    if wheel is None:
        ok,said = _pip(['download', '--no-deps', '--only-binary=:all:', '--timeout', '15', '--retries', '1', '-d', str(tmp), want], min(300, left()))
        wheel = next(iter(tmp.glob('*.whl')), None) if ok else None
        if wheel is None: return [f"{want}: not installed: the package registry did not give it ({said}); no carried wheel in "
                                  f"{', '.join(wheels) or '(no --wheels folder)'}. The 'cuda' and 'tensorrt' rows will say why they are not present."]
        log.append(f"{want}: downloaded {wheel.name} ({wheel.stat().st_size/2**20:.0f} MiB) from the package registry")
    if v:
        ok,said = _pip(['uninstall', '-y', 'onnxruntime'], 60)
        log.append(f"pip uninstall onnxruntime {v}: {'done' if ok else 'FAILED: ' + said}")
    ok,said = _pip(['install', '--no-deps', '--no-index', str(wheel)], min(300, left()))
    log.append(f"pip install {wheel.name}: {'done' if ok else 'FAILED: ' + said}")
    return log

def install_torch(left)->list:
    "Install the torch and torchvision settings.ini pins if torch is missing or sees no CUDA; what was done."
    code = "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.split()[-1:] == ['True']:
        v,cuda,_ = r.stdout.split()[-3:]
        return [f"torch {v} sees CUDA (built for CUDA {cuda}): kept"]
    pins = torch_pins()
    was = 'torch is not installed' if r.returncode else f"torch {r.stdout.split()[0]} sees no CUDA"
    ok,said = _pip(['install', *([] if r.returncode else ['--force-reinstall']), '--timeout', '15', '--retries', '1', *pins], min(400, left()))
    return [f"{was}: pip install {' '.join(pins)}: {'done' if ok else 'FAILED: ' + said}"]

def install(wheels:list, # Folders of carried wheels
            left # `left()`: seconds of the budget left
           )->list:
    "On an NVIDIA machine: onnxruntime-gpu in place of onnxruntime, the carried wheels, and a CUDA torch if needed; what was done, line by line."
    if not shutil.which('nvidia-smi'): return ["skipped: no `nvidia-smi` here, so no NVIDIA GPU: nothing installed"]
    smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], capture_output=True, text=True)
    log = [f"nvidia-smi: {_tail(smi.stdout) or _tail(smi.stderr)}"]
    for step in (lambda: install_ort_gpu(wheels, left), lambda: _install_other_wheels(wheels, left), lambda: install_torch(left)):
        try: log += step()
        except Exception as e: log.append(f"FAILED: {type(e).__name__}: {e}")
    return log

def _install_other_wheels(wheels:list, left)->list:
    "Install every other wheel in the `wheels` folders (no index, no dependencies); what was done."
    others = sorted(f for d in wheels for f in glob.glob(os.path.join(d, '*.whl')) if not os.path.basename(f).startswith('onnxruntime_gpu-'))
    if not others: return []
    ok,said = _pip(['install', '--no-deps', '--no-index', *others], min(300, left()))
    return [f"pip install {', '.join(map(os.path.basename, others))}: {'done' if ok else 'FAILED: ' + said}"]

# --- making a bundle ------------------------------------------------------------------------------------------------

def make_bundle(path:Path, # Where to write it (replaced if it is a bundle)
                arch:str='tiny', # A name from `xdeploy_nb.train.ARCHS`
                widths=(32, 64, 128, 256), # arch 'tiny': the channels of its stride-2 conv layers (`tiny_cnn`)
                size:int=64, # Image side, pixels
                epochs:int=6, # Training epochs
                n_train:int=100, # Training images per class
                lr:float=1e-2 # Learning rate
               )->dict:
    "Train `arch` on the generated shapes images and export it with fp16 and int8-static variants, TorchScript and torch.export; its manifest."
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner, tiny_cnn
    from xdeploy_nb.export import export_bundle
    t0 = time.perf_counter()
    dls = image_dls(make_image_folder(n_train=n_train, n_valid=20, size=size), size=size)
    if arch == 'tiny' and widths:
        from fastai.vision.all import Learner, accuracy, set_seed
        set_seed(42, reproducible=True)
        learn = Learner(dls, tiny_cnn(dls.c, dls.one_batch()[0].shape[1], tuple(widths)), metrics=accuracy)
    else: learn = image_learner(dls, arch=arch)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr)
        probs,targets = learn.get_preds()
    spread = float(probs.std(0).mean())  # how much the outputs depend on the input
    b = export_bundle(learn, path, formats=('onnx', 'torchscript', 'torch.export'), variants=('fp16', 'int8-static'),
                      overwrite=(Path(path)/'manifest.json').exists())
    total = sum(f.stat().st_size for f in Path(path).iterdir())
    name = f"tiny_cnn{tuple(widths)}" if arch == 'tiny' and widths else arch
    print(f"made {path}: {name} at {size} px, {epochs} epochs, validation accuracy {float((probs.argmax(1) == targets).float().mean()):.1%}, "
          f"{b.manifest.get('flops', 0)/1e6:.0f} MFLOP per item, {total/2**20:.1f} MiB, in {time.perf_counter() - t0:.0f} s")
    for a in b.artifacts: print(f"  {a['file']:<24} {a['format']:<13} {a.get('variant', 'fp32'):<12} {a['size']/2**20:6.1f} MiB")
    for r in b.manifest.get('rejected', []): print(f"  left out {r['variant']}: {r['reason']}")
    if spread < 1e-3: print(f"  WARNING: the model's outputs hardly depend on its input (std over items {spread:.1g}), so checks on it prove "
                            "little: train longer, or choose another --arch")
    if total > 48*2**20: print(f"  note: {total/2**20:.0f} MiB is a lot to carry (the device tool takes 64 MiB a call, the checkout included)")
    return b.manifest

# --- the grid, its rows and the table -------------------------------------------------------------------------------

def tolerance(fmt:str, variant:str)->float:
    "The largest sample difference that passes: the runtime's own tolerance for the variant (`Variant.sample_tolerance`)."
    from xdeploy_nb.core import VARIANTS as registered  # numpy, Pillow, onnxruntime: no torch
    return registered[variant if fmt == 'onnx' else 'fp32'].sample_tolerance

def grid(devices:list, # Accelerators to try: onnxruntime device names, and 'torch:...' names
         m:dict # The bundle's manifest
        )->list:
    "The (format, variant, device) cells: CPU first (the baselines), then each accelerator."
    from xdeploy_nb.core import FORMATS, VARIANTS  # the registries, as `xdeploy_nb` fills them
    made = {a.get('variant', 'fp32') for a in m['artifacts'] if a['format'] == 'onnx'}
    made |= {r['variant'] for r in m.get('rejected', [])}  # left out by the export: a row with its reason
    onnx = [('onnx', v) for v in VARIANTS if v == 'fp32' or v in made]
    torch = [(f, 'fp32') for f,fm in FORMATS.items() if fm.device_kind == 'torch']  # model.ts, model.pt2
    cells = [(f, v, 'cpu') for f,v in onnx + torch]
    for d in devices: cells += [(f, v, d) for f,v in (torch if d.startswith('torch:') else onnx)]
    return cells

def missing(m:dict, fmt:str, variant:str)->str:
    "Why the bundle has no `variant` of `fmt` (the export's reason, if it left it out); None if it has it."
    if any(a['format'] == fmt and a.get('variant', 'fp32') == variant for a in m['artifacts']): return None
    why = next((r['reason'] for r in m.get('rejected', []) if r['variant'] == variant and fmt == 'onnx'), None)
    return ' '.join(why.split()) if why else f"the bundle has no {variant} {fmt} artifact"

def row_from(base:dict, res:dict, stderr:str, tol:float)->dict:
    "A row of the table from a cell's result: its status, difference, timings and reason."
    row = dict(base, tolerance=tol, max_diff=res.get('max_diff'), load_s=res.get('load_s'), chosen=res.get('chosen'),
               why=res.get('why'), providers=res.get('providers'), threads=res.get('threads'), timings=res.get('timings', []),
               preload=res.get('preload'), onnxruntime_log=ort_log(stderr) or None)
    err = res.get('error')
    if err:
        absent = res.get('phase') == 'load' and any(s in err for s in ABSENT)
        failed = FELL_BACK in err or DIFFERS in err  # it ran there, and not as it must: a failed row, never one timed on the CPU
        cause = ort_cause(row['onnxruntime_log'] or '')
        short = re.split(r'\s+Fix: ', re.sub(r'^XDeployError: ', '', err))[0]
        said = 'fell back to the CPU: ' if FELL_BACK in err else 'differs from the sample: ' if DIFFERS in err else ''
        row.update(status='FAIL' if failed else 'not present' if absent else 'error', error=err,
                   reason=said + (f"onnxruntime: {cause}; " if cause and not failed else '') + short)
    else:
        row['status'] = 'pass' if row['max_diff'] <= tol else 'FAIL'
        bad = [f"batch {t['batch_size']}: {t['error']}" for t in row['timings'] if t.get('error')]
        ran = 'the CPU baseline' if base['device'] == 'cpu' else ', '.join(row['providers'] or [])
        if 'CPU fallback disabled' in (row['why'] or ''): ran = f"{row['providers'][0]}, every node (CPU fallback disabled)"
        row['reason'] = '; '.join([ran, *bad] if row['status'] == 'pass' else
                                  [f"differs from the {'Learner' if base['variant'] == 'fp32' else 'CPU'} by {row['max_diff']:.3g} > {tol:g}", *bad])
    return row

def add_speedups(rows:list):
    "Set each accelerator row's speed-up at each batch size: the CPU row's p50 (same format and variant) over its own."
    cpu = {(r['format'], r['variant'], t['batch_size']): t.get('p50_ms') for r in rows if r['device'] == 'cpu' for t in r.get('timings', [])}
    for r in rows:
        for t in r.get('timings', []):
            base = cpu.get((r['format'], r['variant'], t['batch_size']))
            t['speedup'] = base/t['p50_ms'] if r['device'] != 'cpu' and base and t.get('p50_ms') else None

def _cell(v, fmt:str)->str: return '' if v is None else fmt.format(v)

def table(rows:list, batch_sizes:list)->str:
    "The rows as one plain-text table."
    head = ['format', 'variant', 'device', 'status', 'max diff', 'tol'] + [h for bs in batch_sizes for h in (f'p50 ms @{bs}', f'x cpu @{bs}')] + ['reason']
    lines = []
    for r in rows:
        t = {x['batch_size']: x for x in r.get('timings', [])}
        cells = [r['format'], r['variant'], r['device'], r['status'], _cell(r.get('max_diff'), '{:.2g}'), _cell(r.get('tolerance'), '{:g}')]
        for bs in batch_sizes: cells += [_cell(t.get(bs, {}).get('p50_ms'), '{:.3f}'), _cell(t.get(bs, {}).get('speedup'), '{:.2f}x')]
        reason = r.get('reason') or ''
        lines.append(cells + [reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + '...'])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = lambda cells: '  '.join(str(c).ljust(w) for c,w in zip(cells, widths)).rstrip()
    return '\n'.join([fmt(head), fmt(['-'*w for w in widths])] + [fmt(l) for l in lines])

# --- the whole check ------------------------------------------------------------------------------------------------

def default_out()->Path:
    "$OUT/device_check.json where the device tool set OUT, else ./device_check.json."
    return Path(os.environ['OUT'])/'device_check.json' if os.environ.get('OUT') else Path('device_check.json')

def check(args)->dict:
    "Install (if asked), probe, run every cell within the budget; the report (also printed, and written to `args.out`)."
    t0 = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - t0)
    bundle = Path(args.bundle).resolve()
    m = json.loads((bundle/'manifest.json').read_text())
    inst = install(args.wheels, left) if args.install else ['not asked (--install)']
    for l in inst: print(f"install: {l}")
    common = dict(bundle=str(bundle), preload=not args.no_preload)
    info,err = run_child('--probe', dict(common, devices=args.devices), min(180, left()))
    if info.get('error'): info = dict(present={}, auto=dict(error=info['error']), probe_error=info['error'] + (f" onnxruntime said: {ort_log(err)}" if ort_log(err) else ''))
    names = [d['name'] + (f" ({d['detail']})" if d.get('detail') else '') for d in info.get('devices', [])]
    print(f"devices: {'; '.join(names) or info.get('probe_error')}")
    a = info.get('auto', {})
    print(f"Predictor(device='auto'): {a.get('device')}: {a.get('why')}" if a.get('device') else f"Predictor(device='auto') failed: {a.get('error')}")
    out = Path(args.out) if args.out else default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    def save()->dict:
        "Write the report as it stands (after each row, so that a run stopped from outside still leaves one)."
        meta = dict(bundle=str(bundle), bundle_versions=m.get('provenance', {}).get('versions'), host=platform.node(), python=platform.python_version(),
                    cpus=os.cpu_count(), onnxruntime=info.get('onnxruntime'), providers=info.get('providers'), torch=info.get('torch'),
                    torch_cuda=info.get('torch_cuda'), preload=info.get('preload'), budget=args.budget, seconds=time.perf_counter() - t0,
                    batch_sizes=args.batch_sizes, min_time=args.min_time, min_runs=args.min_runs, created=time.strftime('%Y-%m-%dT%H:%M:%S%z'))
        report = dict(meta=meta, install=inst, devices=info.get('devices', []), plugins=info.get('plugins', []), auto=info.get('auto'), rows=rows)
        out.write_text(json.dumps(report, indent=1, default=str))
        return report
    for fmt,variant,dev in grid(args.devices, m):
        base,tol = dict(format=fmt, variant=variant, device=dev),tolerance(fmt, variant)
        why_not = missing(m, fmt, variant)
        absent = None if dev == 'cpu' else info['present'].get(dev, 'the device probe did not say whether it is here')
        if why_not: rows.append(dict(base, tolerance=tol, status='not in bundle', reason=why_not))
        elif dev != 'cpu' and 'probe_error' in info: rows.append(dict(base, tolerance=tol, status='error', reason=f"the device probe failed: {info['probe_error']}"))
        elif absent: rows.append(dict(base, tolerance=tol, status='not present', reason=absent))
        elif left() < args.min_cell: rows.append(dict(base, tolerance=tol, status='skipped', reason=f"the time budget ran out (--budget {args.budget:g} s)"))
        else:
            res,err = run_child('--cell', dict(common, format=fmt, variant=variant, device=dev, batch_sizes=args.batch_sizes,
                                               min_time=args.min_time, min_runs=args.min_runs, threads=args.threads), min(args.cell_timeout, left()))
            rows.append(row_from(base, res, err, tol))
        print(f"  {fmt} {variant} @{dev}: {rows[-1]['status']}", flush=True)
        add_speedups(rows)
        save()
    report = save()
    meta = report['meta']
    print(f"\n{table(rows, args.batch_sizes)}\n")
    print(f"{bundle.name}: onnxruntime {meta['onnxruntime']} ({', '.join(meta['providers'] or [])}), torch {meta['torch'] or 'not installed'}; "
          f"{meta['seconds']:.0f} s of a {args.budget:g} s budget")
    print(f"wrote {out}")
    return report

def parse(argv=None):
    "The command line."
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('bundle', nargs='?', help="the bundle folder (with manifest.json); with --make-bundle, where to write it")
    ap.add_argument('--make-bundle', action='store_true', help="first train a small model and export BUNDLE (needs the [train] extras)")
    ap.add_argument('--make-only', action='store_true', help="with --make-bundle: stop after making it")
    ap.add_argument('--arch', default='tiny', help="--make-bundle: the architecture (xdeploy_nb.train.ARCHS)")
    ap.add_argument('--widths', nargs='*', type=int, default=[32, 64, 128, 256], help="--make-bundle, arch tiny: its conv channels (none: image_learner's)")
    ap.add_argument('--size', type=int, default=64, help="--make-bundle: image side in pixels")
    ap.add_argument('--epochs', type=int, default=6, help="--make-bundle: training epochs")
    ap.add_argument('--n-train', type=int, default=100, help="--make-bundle: training images per class")
    ap.add_argument('--install', action='store_true', help="on an NVIDIA machine, install onnxruntime-gpu (and a CUDA torch if needed) first")
    ap.add_argument('--wheels', nargs='*', default=None, help="folders of carried wheels for --install (default: .whl* in the repo root)")
    ap.add_argument('--devices', nargs='+', default=['cuda', 'tensorrt', 'torch:cuda:0'], help="accelerators to run on, beside the CPU")
    ap.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 64])
    ap.add_argument('--min-time', type=float, default=0.5, help="seconds of timed runs per batch size, at least")
    ap.add_argument('--min-runs', type=int, default=5, help="timed runs per batch size, at least")
    ap.add_argument('--threads', type=int, default=None, help="intra-op threads on the CPU (default: one per CPU)")
    ap.add_argument('--budget', type=float, default=420, help="seconds for everything after --make-bundle")
    ap.add_argument('--cell-timeout', type=float, default=150, help="seconds one cell (artifact x device) may take")
    ap.add_argument('--min-cell', type=float, default=10, help="a cell is not started with fewer seconds of the budget left")
    ap.add_argument('--no-preload', action='store_true', help="do not call onnxruntime.preload_dlls() before opening a CUDA session")
    ap.add_argument('--out', default=None, help="the JSON report (default: $OUT/device_check.json if OUT is set, else ./device_check.json)")
    ap.add_argument('--probe', help=argparse.SUPPRESS)
    ap.add_argument('--cell', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.wheels is None: args.wheels = sorted(str(p) for p in ROOT.glob('.whl*') if p.is_dir())
    return ap,args

def main(argv=None)->int:
    "Run the children's work, or the whole check; the exit status."
    ap,args = parse(argv)
    if str(ROOT) not in sys.path[:1]: sys.path.insert(0, str(ROOT))  # this checkout's xdeploy_nb, as in the cells
    for mode,f in (('probe', probe), ('cell', cell)):
        if getattr(args, mode): print(json.dumps(f(json.loads(getattr(args, mode))), default=str)); return 0
    if not args.bundle: ap.error("name the bundle folder")
    if args.make_bundle:
        make_bundle(Path(args.bundle), args.arch, args.widths, args.size, args.epochs, args.n_train)
        if args.make_only: return 0
    if not (Path(args.bundle)/'manifest.json').is_file():
        ap.error(f"{args.bundle} is not a bundle (no manifest.json): export one, or pass --make-bundle")
    check(args)
    return 0

if __name__ == '__main__': sys.exit(main())
