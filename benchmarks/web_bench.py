#!/usr/bin/env python
"""The browser (ONNX Runtime Web, wasm) against native onnxruntime at batch 1, measured side by side in one run.

An untrained resnet18 bundle (random weights, nothing downloaded) at --size px, with its ORT-format model and the
int8-static and int8-dynamic variants, is written as a site (`xdeploy web`) and served on 127.0.0.1; Debian's Chromium
(Playwright, headless) loads it twice: cross-origin isolated (wasm threads: one per core) and with one thread. Timed, as
medians of --runs runs after a warm-up, in --rounds interleaved rounds:
  model: the model alone on one prepared uint8 image (`predictor.run` in the page, `Predictor.run` natively);
  item:  an image to its answer (`predictor.predict`: decode, preprocessing graph, model, in the page on an ImageData;
         `Predictor.predict` natively on an HWC array).
Native runs with the same thread counts. Then each model a browser can run, alone on one image at batch 1, in the page
(wasm, threads on) and natively (onnxruntime, as many threads): the fp32 ONNX model, its ORT-format copy, a fixed-batch-1
ORT copy (`fix_batch` then ONNX Runtime's converter: written by this script), and the two int8 variants; and which one
`variant: 'auto'` picks. fp32 wasm runs 128-bit SIMD where native onnxruntime uses this CPU's widest vectors (AVX-512 on
the machine these were measured on), so ~4x is the floor for a GEMM-bound fp32 model.
Usage: python benchmarks/web_bench.py [--arch resnet18] [--size 128] [--runs 10] [--rounds 3]   (about 2 minutes)"""
import argparse, base64, json, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np

CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
ROOT = Path(__file__).resolve().parent.parent

def times_ms(f, runs:int)->list:
    "Milliseconds of each of `runs` calls of `f`."
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter(); f(); ts.append((time.perf_counter() - t0)*1e3)
    return ts

# In the page: window.__bench(runs) -> {model: [ms...], item: [ms...]} on one decoded image (an ImageData), after a warm-up.
PAGE_SETUP = """async ([b64, h, w]) => {
  const p = window.xdeploy.predictor, px = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const rgba = new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) { rgba.set(px.subarray(3 * i, 3 * i + 3), 4 * i); rgba[4 * i + 3] = 255; }
  const img = new ImageData(rgba, w, h), feeds = await p.prepare([img]);
  const time = async (f, n) => { const ts = []; for (let i = 0; i < n; i++) { const t = performance.now(); await f(); ts.push(performance.now() - t); } return ts; };
  window.__bench = async n => ({model: await time(() => p.run(feeds), n), item: await time(() => p.predict(img), n)});
  await window.__bench(2);
  return {threads: p.threads, isolated: crossOriginIsolated, device: p.device};
}"""

# In the page: raw sessions of each model file on wasm; window.__models(runs) -> {file: [ms...]} at batch 1, after a warm-up.
MODELS_SETUP = """async ([files, name, shape]) => {
  const ort = window.xdeploy.ort, n = shape.reduce((a, b) => a * b, 1), x = new ort.Tensor('uint8', new Uint8Array(n).fill(128), shape);
  const ss = {};
  for (const f of files) {
    const bytes = new Uint8Array(await (await fetch(`./bundle/${f}`)).arrayBuffer());
    ss[f] = await ort.InferenceSession.create(bytes, {executionProviders: ['wasm'], graphOptimizationLevel: 'all', logSeverityLevel: 3});
    await ss[f].run({[name]: x});
  }
  window.__models = async runs => {
    const out = {};
    for (const f of files) { out[f] = []; for (let i = 0; i < runs; i++) { const t = performance.now(); await ss[f].run({[name]: x}); out[f].push(performance.now() - t); } }
    return out;
  };
  return true;
}"""

# In the page: what `variant: 'auto'` picks on this site, and the candidates' times on one sample item.
AUTO = """async () => {
  const p = await window.xdeploy.load(new URL('./bundle/', location.href), {ort: window.xdeploy.ort, variant: 'auto'});
  return p.describe();
}"""

def fixed_batch_ort(bundle:Path, out:Path)->Path:
    "The bundle's fp32 ONNX model with its batch fixed to 1, in ORT format, at `out` (the formats.ort converter)."
    import tempfile
    from xdeploy_nb.formats.ort import convert_to_ort, fix_batch
    with tempfile.TemporaryDirectory() as t:
        src = fix_batch(bundle/'model.onnx', Path(t)/'model.b1.onnx', 1)
        ort_file,_ = convert_to_ort(src, Path(t)/'ort')
        out.write_bytes(ort_file.read_bytes())
    return out

def native_session(f:Path, threads:int):
    "`run(x)`: one onnxruntime CPU session of the model file `f` (ONNX or ORT format) with `threads` threads."
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads,so.log_severity_level = threads,3
    s = ort.InferenceSession(f.read_bytes(), so, providers=['CPUExecutionProvider'])
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--arch', default='resnet18'); ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--runs', type=int, default=10); ap.add_argument('--rounds', type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT/'tests'))
    from test_web import PlainHandler, _serve  # the tests' server helpers
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb.runtime import Predictor
    from xdeploy_nb.accel import usable_cpus
    from xdeploy_nb.hosts.web import JS_DIR, write_site
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp())
    data = make_image_folder(tmp/'shapes', classes=3, n_train=8, n_valid=2, size=args.size)
    learn = image_learner(image_dls(data, size=args.size, bs=8), arch=args.arch)
    export_bundle(learn, tmp/'bundle', formats=('onnx', 'ort'), variants=('int8-static', 'int8-dynamic'), n_items=6,
                  keep_unfaithful=True)  # random weights: the variants are here to be timed, not to be judged by accuracy
    site = write_site(tmp/'bundle', tmp/'site', ort_web=JS_DIR/'node_modules'/'onnxruntime-web')['path']
    fixed_batch_ort(tmp/'bundle', Path(site)/'bundle'/'model.b1.ort')  # served beside the bundle's files, not in its manifest
    (tmp/'bundle'/'model.b1.ort').write_bytes((Path(site)/'bundle'/'model.b1.ort').read_bytes())
    m = json.loads((tmp/'bundle'/'manifest.json').read_text())
    models = [a['file'] for a in m['artifacts'] if a['format'] in ('onnx', 'ort')] + ['model.b1.ort']
    x1 = np.full([1, *m['inputs'][0]['shape'][1:]], 128, np.uint8)
    from PIL import Image
    arr = np.asarray(Image.open(sorted((data/'valid').rglob('*.png'))[0]).convert('RGB'))
    cpus = usable_cpus()
    natives = {t: Predictor(tmp/'bundle', device='cpu', threads=t, preprocess='graph') for t in (cpus, 1)}
    raw = {f: native_session(tmp/'bundle'/f, cpus) for f in models}
    for f in models: raw[f](x1)  # warm-up
    per_model = {f: dict(native=[], browser=[]) for f in models}
    feeds = {t: p.prepare([arr]) for t,p in natives.items()}
    for t,p in natives.items(): p.run(feeds[t]); p.predict(arr)  # warm-up
    names = {f'native onnxruntime, {cpus} thread(s)': cpus, 'native onnxruntime, 1 thread(s)': 1}
    rows = {n: dict(model=[], item=[], threads=t) for n,t in names.items()}
    iso,plain = _serve(site),_serve(site, PlainHandler)
    b64 = base64.b64encode(arr.tobytes()).decode()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path='/usr/bin/chromium', args=CHROMIUM_ARGS)
            pages = {}
            for name,(_, url) in (('browser wasm, threads on', iso), ('browser wasm, threads off', plain)):
                page = pages[name] = b.new_page(); page.goto(url); page.wait_for_selector('body[data-ready]', timeout=120_000)
                assert page.get_attribute('body', 'data-ready') == 'true', page.inner_text('#status')
                rows[name] = dict(model=[], item=[], **page.evaluate(PAGE_SETUP, [b64, arr.shape[0], arr.shape[1]]))
            page_on = pages['browser wasm, threads on']
            page_on.evaluate(MODELS_SETUP, [models, m['inputs'][0]['name'], list(x1.shape)])
            auto = page_on.evaluate(AUTO)
            for _ in range(args.rounds):  # interleaved, so that every row sees the same load of the machine
                for n,t in names.items():
                    rows[n]['model'] += times_ms(lambda: natives[t].run(feeds[t]), args.runs)
                    rows[n]['item'] += times_ms(lambda: natives[t].predict(arr), args.runs)
                for n,page in pages.items():
                    r = page.evaluate('n => window.__bench(n)', args.runs)
                    rows[n]['model'] += r['model']; rows[n]['item'] += r['item']
                for f in models: per_model[f]['native'] += times_ms(lambda: raw[f](x1), args.runs)
                for f,ts in page_on.evaluate('n => window.__models(n)', args.runs).items(): per_model[f]['browser'] += ts
            b.close()
    finally:
        for srv,_ in (iso, plain): srv.shutdown(); srv.server_close()
    native,native1 = rows[f'native onnxruntime, {cpus} thread(s)'],rows['native onnxruntime, 1 thread(s)']
    med,best = statistics.median,min
    print(f"{args.arch} at {args.size} px, batch 1: {args.rounds} interleaved rounds of {args.runs} runs; {cpus} CPUs; "
          f"{json.loads((tmp/'bundle'/'manifest.json').read_text()).get('flops', 0)/1e6:.0f} MFLOPs; preprocessing graph: yes")
    print(f"{'':30} {'threads':>7} {'model ms (best)':>16} {'item ms (best)':>15} {'model x native':>15} {'item x native':>14}")
    for name,r in rows.items():
        ref = native1 if r['threads'] == 1 else native
        print(f"{name:30} {r['threads']:>7} {med(r['model']):8.2f} ({best(r['model']):5.2f}) {med(r['item']):7.2f} ({best(r['item']):5.2f}) "
              f"{med(r['model'])/med(ref['model']):7.2f} ({best(r['model'])/best(ref['model']):4.2f}) {med(r['item'])/med(ref['item']):6.2f} ({best(r['item'])/best(ref['item']):4.2f})")
    on = rows['browser wasm, threads on']
    ratio = med(on['model'])/med(native['model'])
    print(f"target: browser wasm with threads <= 3x native at batch 1 (medians; best-of in brackets): model {ratio:.2f}x, "
          f"item {med(on['item'])/med(native['item']):.2f}x -> {'met' if ratio <= 3 else 'NOT met'}")
    fp = {k: med(per_model['model.onnx'][k]) for k in ('native', 'browser')}
    print(f"\neach model alone at batch 1, {cpus} thread(s) (browser: wasm, threads on); medians of {args.rounds * args.runs} runs")
    print(f"{'model':26} {'native ms':>9} {'browser ms':>10} {'browser x native':>16} {'browser x browser fp32':>22} {'native x native fp32':>20}")
    for f,r in per_model.items():
        nat,web = med(r['native']),med(r['browser'])
        print(f"{f:26} {nat:9.2f} {web:10.2f} {web/nat:16.2f} {web/fp['browser']:22.2f} {nat/fp['native']:20.2f}")
    print(f"variant 'auto' in the page picks {auto['artifact']['file']} ({auto['artifact']['variant']}); its timing on one sample item: "
          + ', '.join(f"{c['file']} {c['ms']:.2f} ms" if c['passed'] else f"{c['file']} failed: {c['problem']}" for c in auto['candidates']))
    best = min(per_model, key=lambda f: med(per_model[f]['browser']))
    print(f"fastest in the browser here: {best}, {med(per_model[best]['browser'])/fp['native']:.2f}x native fp32 "
          f"(fp32 model.onnx: {fp['browser']/fp['native']:.2f}x)")

if __name__ == '__main__': main()
