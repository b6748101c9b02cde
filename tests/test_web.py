"""`xdeploy web` and the JS module (xdeploy_nb/js), in Debian's Chromium and in Node.

A tiny image bundle and a tabular one are exported, written as sites (`write_site`) and served on 127.0.0.1 by
`site_server` (cross-origin isolated: wasm threads). Chromium, driven by Playwright, picks the validation PNG files through
the page's file input as a person would, and fills the form with table rows; each answer is compared with Python's
`Predictor` (top-1 agreement 100%, max probability difference <= 1e-4). JPEG files are reported on their own
(test-artifacts/web-agreement.json): browser and Pillow JPEG decoders may differ. The same page on a server without the
isolation headers runs on one thread, with the same answers. `node --test` runs the module's own tests under Node with
onnxruntime-node, on the same bundles. Screenshots go to test-artifacts/."""
import base64, http.server, json, re, shutil, socket, subprocess, sys, threading, time, urllib.request
from functools import partial
from pathlib import Path
import numpy as np, pytest
from PIL import Image
from conftest import ROOT, run, console_script, one_sided_tabular
from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
from xdeploy_nb.train import image_dls, tabular_dls, trained_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.core import bundle_digest, file_sha256
from xdeploy_nb.hosts.web import JS_DIR, site_server, write_site

pytestmark = pytest.mark.slow(seconds=25)  # about how long this module takes (measured on an idle 2-core machine)

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
ARTIFACTS = ROOT/'test-artifacts'
ORT_WEB = JS_DIR/'node_modules'/'onnxruntime-web'  # installed by `npm ci` (tools/test.sh)

def python_predictor(bundle, **kw):
    "Python's Predictor on the preprocessing graph: what the browser runs."
    return Predictor(bundle, device='cpu', preprocess='graph', **kw)

@pytest.fixture(scope='module')
def img(tmp_path_factory):
    "An image bundle (3 classes; 24 px files resized to 16 px by its preprocessing graph) and its validation files."
    root = tmp_path_factory.mktemp('web_img')
    data = make_image_folder(classes=3, n_train=8, n_valid=4, size=24)  # the shared sample folder: the trained Learner is cached
    learn = trained_learner(image_dls(data, size=16, bs=8), epochs=2)
    b = export_bundle(learn, root/'bundle', formats=('onnx', 'ort'), variants=('int8-static',))
    assert b.report.passed, b.report
    return root/'bundle',sorted((data/'valid').rglob('*.png'))

def tampered(bundle, dst, keys:list):
    "A copy of `bundle` at `dst` whose sample.npz has the arrays `keys` moved by 1 (the manifest's hash of it updated): a failing sample check."
    shutil.copytree(bundle, dst)
    z = dict(np.load(dst/'sample.npz'))
    for k in keys: z[k] = z[k] + 1
    np.savez(dst/'sample.npz', **z)
    m = json.loads((dst/'manifest.json').read_text())
    m['sample'].update(sha256=file_sha256(dst/'sample.npz'), size=(dst/'sample.npz').stat().st_size)
    (dst/'manifest.json').write_text(json.dumps(m, indent=1))
    return dst

@pytest.fixture(scope='module')
def img_bad(img, tmp_path_factory):
    "The image bundle with its int8 variant's sample outputs wrong (`bad_int8`), and with every model's wrong (`all_bad`)."
    root = tmp_path_factory.mktemp('web_img_bad')
    return dict(bad_int8=tampered(img[0], root/'bad_int8', ['expected.model.int8-static.onnx']),
                all_bad=tampered(img[0], root/'all_bad', ['expected', 'expected.model.int8-static.onnx']))

def expected_by_file(bundle, items)->dict:
    "Python's answers for `items` from each model a browser can run (onnx and ort, each variant), by file name."
    m = json.loads((bundle/'manifest.json').read_text())
    return {a['file']: python_predictor(bundle, format=a['format'], variant=a.get('variant', 'fp32')).predict_batch(items)
            for a in m['artifacts'] if a['format'] in ('onnx', 'ort')}

@pytest.fixture(scope='module')
def tab(tmp_path_factory):
    "A tabular bundle (penguin species) and validation rows, some with missing values."
    root = tmp_path_factory.mktemp('web_tab')
    learn = trained_learner(tabular_dls(load_penguins(), 'species', PENGUIN_CATS, PENGUIN_CONTS), epochs=2)
    b = export_bundle(learn, root/'bundle', formats=('onnx',))
    assert b.report.passed, b.report
    df = load_penguins()
    rows = df[df.isna().any(axis=1)].head(3).to_dict('records') + df.sample(9, random_state=0).to_dict('records')
    rows = [{c: (None if isinstance(r[c], float) and np.isnan(r[c]) else r[c]) for c in PENGUIN_CATS + PENGUIN_CONTS} for r in rows]
    return root/'bundle',rows

def _serve(site, handler=None):
    "Serve `site` on a free port of 127.0.0.1 in a thread: (server, url)."
    srv = site_server(site) if handler is None else http.server.ThreadingHTTPServer(('127.0.0.1', 0), partial(handler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv,f'http://127.0.0.1:{srv.server_address[1]}/'

class PlainHandler(http.server.SimpleHTTPRequestHandler):
    "A static host without the cross-origin isolation headers (like `python -m http.server`), with the .mjs/.wasm types."
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, '.mjs': 'text/javascript', '.wasm': 'application/wasm'}
    def log_message(self, *a): pass

@pytest.fixture(scope='module')
def sites(img, tab, img_bad, tmp_path_factory):
    root = tmp_path_factory.mktemp('web_sites')
    out = {k: write_site(b, root/k, ort_web=ORT_WEB)['path'] for k,(b, _) in dict(img=img, tab=tab).items()}
    out['img_bad'] = write_site(img_bad['bad_int8'], root/'img_bad', ort_web=ORT_WEB)['path']
    servers = {k: _serve(p) for k,p in out.items()}
    servers['img_plain'] = _serve(out['img'], PlainHandler)
    yield {k: url for k,(_, url) in servers.items()}
    for srv,_ in servers.values(): srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def playwright():
    if not CHROMIUM.exists(): pytest.fail("Debian's chromium is not installed: run tools/test.sh, or apt-get install chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p: yield p

@pytest.fixture(scope='module')
def browser(playwright):
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()

def open_page(browser, url, timeout=60_000):
    "A page at `url`, once the module has loaded the bundle; its console errors are kept in `page.errors`."
    page = browser.new_page(viewport={'width': 1100, 'height': 900})
    page.errors = []
    page.on('pageerror', lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector('body[data-ready]', timeout=timeout)
    assert page.get_attribute('body', 'data-ready') == 'true', page.inner_text('#status')
    return page

def pick(page, files, timeout=60_000):
    "Pick `files` through the page's file input, as a person would; the results, in order: [{item, label, probs, ...}]."
    before = len(page.query_selector_all('#runs tr'))
    page.set_input_files('#file', [str(f) for f in files])
    page.wait_for_function(f'document.querySelectorAll("#runs tr").length >= {before + len(files)} || window.xdeploy.lastError', timeout=timeout)
    assert not page.evaluate('window.xdeploy.lastError'), page.evaluate('window.xdeploy.lastError')
    rows = page.eval_on_selector_all('#runs tr', 'trs => trs.map(t => ({item: t.dataset.item, ...JSON.parse(t.dataset.result)}))')
    return rows[before:]

def agreement(got, want)->tuple:
    "(top-1 agreement, max probability difference) of browser results `got` and Python predictions `want`."
    assert len(got) == len(want)
    top1 = np.mean([g['label'] == w['label'] for g,w in zip(got, want)])
    return float(top1),float(max(np.abs(np.array(g['probs']) - w['probs']).max() for g,w in zip(got, want)))

def report(**kw):
    "Add figures to test-artifacts/web-agreement.json."
    ARTIFACTS.mkdir(exist_ok=True)
    f = ARTIFACTS/'web-agreement.json'
    d = json.loads(f.read_text()) if f.exists() else {}
    f.write_text(json.dumps({**d, **kw}, indent=1))

def test_image_png_files_in_the_browser(browser, sites, img):
    bundle,files = img
    page = open_page(browser, sites['img'])
    d = page.evaluate('window.xdeploy.predictor.describe()')
    assert d['device'] == 'wasm' and d['crossOriginIsolated'] and d['threads'] >= 2, d
    assert 'no WebGPU adapter' in d['why'] and d['preprocessing']['graph'] == 'preprocess.onnx'
    assert d['digest'] == bundle_digest(bundle)  # the site serves the bundle's manifest.json byte for byte: the same digest
    got,want = pick(page, files),python_predictor(bundle).predict_batch(files)
    assert [g['item'] for g in got] == [f.name for f in files]
    top1,diff = agreement(got, want)
    report(png=dict(n=len(files), top1=top1, max_prob_diff=diff, threads=d['threads']))
    assert top1 == 1.0 and diff <= 1e-4, (top1, diff)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS/'web-image.png', full_page=True)
    assert 'verification against the Learner' in page.inner_text('#about') and not page.errors
    page.close()

def test_image_jpeg_files_reported(browser, sites, img, tmp_path):
    "JPEG: browser and Pillow decoders may differ, so the figures are reported (test-artifacts/web-agreement.json), and only a sane run is required."
    bundle,files = img
    jpgs = []
    for f in files:
        Image.open(f).convert('RGB').save(j := tmp_path/f'{f.parent.name}-{f.stem}.jpg', quality=90)
        jpgs.append(j)
    page = open_page(browser, sites['img'])
    got,want = pick(page, jpgs),python_predictor(bundle).predict_batch(jpgs)
    top1,diff = agreement(got, want)
    report(jpeg=dict(n=len(jpgs), top1=top1, max_prob_diff=diff, quality=90))
    print(f"JPEG: top-1 agreement {top1:.0%}, max probability difference {diff:.2g}")
    assert len(got) == len(jpgs) and all(abs(sum(g['probs']) - 1) < 1e-4 for g in got)
    page.close()

def test_threads_off_without_isolation_headers(browser, sites, img):
    "A host without COOP/COEP: not cross-origin isolated, one thread, the same answers."
    bundle,files = img
    page = open_page(browser, sites['img_plain'])
    d = page.evaluate('window.xdeploy.predictor.describe()')
    assert not d['crossOriginIsolated'] and d['threads'] == 1, d
    top1,diff = agreement(pick(page, files[:4]), python_predictor(bundle).predict_batch(files[:4]))
    assert top1 == 1.0 and diff <= 1e-4
    page.close()

def test_module_api_on_window(browser, sites, img):
    "Apps and tests use the module through `window.xdeploy`: decoded pixels in, Python's answer out; bad input is one clear error."
    bundle,files = img
    page = open_page(browser, sites['img'])
    assert {'load', 'Predictor', 'prepareRows', 'validateManifest', 'schemaErrors', 'ort', 'predictor'} <= set(page.evaluate('Object.keys(window.xdeploy)'))
    arr = np.asarray(Image.open(files[0]).convert('RGB'))
    got = page.evaluate('([b, w, h]) => window.xdeploy.predictor.predict({data: Uint8Array.from(atob(b), c => c.charCodeAt(0)), width: w, height: h, channels: 3})',
                        [base64.b64encode(arr.tobytes()).decode(), arr.shape[1], arr.shape[0]])
    want = python_predictor(bundle).predict(arr)
    assert got['label'] == want['label'] and np.abs(np.array(got['probs']) - want['probs']).max() <= 1e-4 and got['ms'] > 0
    err = page.evaluate('window.xdeploy.predictor.predict({data: new Uint8Array(5), width: 2, height: 2, channels: 3}).then(() => "", e => e.message)')
    assert '5 values for 2 x 2 x 3' in err
    page.set_input_files('#file', files=[dict(name='notes.png', mimeType='image/png', buffer=b'not an image')])
    page.wait_for_function('window.xdeploy.lastError', timeout=20_000)
    assert 'could not decode notes.png' in page.inner_text('#status')
    page.close()

def test_int8_variant_in_the_browser(browser, sites, img):
    "The int8 QDQ variant on wasm (it is not run on WebGPU unless it passes the sample check): the Python int8 answers."
    bundle,files = img
    page = open_page(browser, sites['img'] + '?variant=int8-static')
    assert page.evaluate('window.xdeploy.predictor.describe().artifact.variant') == 'int8-static'
    p = python_predictor(bundle, variant='int8-static')
    top1,diff = agreement(pick(page, files[:6]), p.predict_batch(files[:6]))
    assert top1 == 1.0 and diff <= 1e-4, (top1, diff)
    page.close()

def test_variant_auto_in_the_browser(browser, sites, img):
    """variant 'auto': every model the site has (model.onnx, model.ort, the int8 variant) is checked on the bundle's sample and
    timed; the fastest that passed runs, with its own Python answers. Where the int8 variant's sample check fails, it is passed over."""
    bundle,files = img
    page = open_page(browser, sites['img'] + '?variant=auto')
    d = page.evaluate('window.xdeploy.predictor.describe()')
    assert sorted(c['file'] for c in d['candidates']) == ['model.int8-static.onnx', 'model.onnx', 'model.ort'], d
    assert all(c['passed'] and c['device'] == 'wasm' for c in d['candidates']), d['candidates']
    assert d['artifact']['file'] == min(d['candidates'], key=lambda c: c['ms'])['file'] and 'the fastest that passed' in d['why']
    report(variant_auto={c['file']: round(c['ms'], 3) for c in d['candidates']})
    top1,diff = agreement(pick(page, files[:4]), expected_by_file(bundle, files[:4])[d['artifact']['file']])
    assert top1 == 1.0 and diff <= 1e-4, (top1, diff)
    page.close()
    page = open_page(browser, sites['img_bad'] + '?variant=auto')
    d = page.evaluate('window.xdeploy.predictor.describe()')
    int8 = next(c for c in d['candidates'] if c['variant'] == 'int8-static')
    assert not int8['passed'] and "differ from its CPU outputs" in int8['problem'], int8
    assert d['artifact']['variant'] == 'fp32' and d['artifact']['file'] in ('model.onnx', 'model.ort'), d
    page.close()

def test_tabular_rows_through_the_form(browser, sites, tab):
    bundle,rows = tab
    page = open_page(browser, sites['tab'])
    spec = json.loads((bundle/'manifest.json').read_text())['preprocessing']['spec']
    got = []
    for i,row in enumerate(rows):
        for c,v in row.items():
            if c in spec['categories']: page.select_option(f'#col-{c}', '' if v is None else str(spec['categories'][c].index(v)))
            else: page.fill(f'#col-{c}', '' if v is None else repr(float(v)))
        page.click('#predict-row')
        page.wait_for_selector(f'body[data-done="{i + 1}"]', timeout=20_000)
        assert not page.evaluate('window.xdeploy.lastError'), page.evaluate('window.xdeploy.lastError')
        got.append(json.loads(page.eval_on_selector('#runs tr:last-child', 't => t.dataset.result')))
    top1,diff = agreement(got, Predictor(bundle, device='cpu').predict_batch(rows))
    report(tabular=dict(n=len(rows), top1=top1, max_prob_diff=diff, with_missing_values=sum(None in r.values() for r in rows)))
    assert top1 == 1.0 and diff <= 1e-4, (top1, diff)
    page.screenshot(path=ARTIFACTS/'web-tabular.png', full_page=True)
    page.close()

@pytest.fixture(scope='module')
def one_sided(tmp_path_factory)->dict:
    "Tabular bundles with continuous columns only and with category columns only (a zero-width x_cat, x_cont), with rows and `learn.predict`'s answers."
    root,out = tmp_path_factory.mktemp('web_one_sided'),{}
    for which in ('cont', 'cat'):
        learn,df = one_sided_tabular(which)
        assert export_bundle(learn, root/which, formats=('onnx',)).report.passed
        with learn.no_bar(): want = [learn.predict(r)[-1].numpy() for _,r in df.iterrows()]
        out[f'tabular_{which}'] = dict(path=str(root/which), rows=df.to_dict('records'),
                                       expected=[dict(label=str(learn.dls.vocab[int(w.argmax())]), probs=w.tolist()) for w in want])
    return out

def test_node(img, tab, one_sided, img_bad, tmp_path):
    "`node --test` (the module's own tests) under Node with onnxruntime-node, on these bundles and the Python Predictor's answers."
    (bundle,files),(tbundle,rows) = img,tab
    arrs = [np.asarray(Image.open(f).convert('RGB')) for f in files]
    pix = [dict(data=base64.b64encode(a.tobytes()).decode(), width=a.shape[1], height=a.shape[0], channels=3) for a in arrs]
    fx = dict(bundles=dict(image=dict(path=str(bundle), pixels=pix, expected=python_predictor(bundle).predict_batch(arrs),
                                      files=[str(f) for f in files], expected_files=python_predictor(bundle).predict_batch([str(f) for f in files]),
                                      digest=bundle_digest(bundle), by_file=expected_by_file(bundle, arrs),
                                      bad_int8=str(img_bad['bad_int8']), all_bad=str(img_bad['all_bad'])),
                           tabular=dict(path=str(tbundle), rows=rows, expected=Predictor(tbundle, device='cpu').predict_batch(rows)),
                           **one_sided))  # their expected answers are learn.predict's
    (f := tmp_path/'fixture.json').write_text(json.dumps(fx))
    r = run('node', '--test', 'test/xdeploy.test.mjs', cwd=JS_DIR, env={'XDEPLOY_WEB_FIXTURE': str(f)}, timeout=120, check=False)
    assert r.returncode == 0 and '# fail 0' in r.stdout and '# skipped 0' in r.stdout, r.stdout[-3000:] + r.stderr

def test_cli_web_and_serve(tab, tmp_path):
    "`xdeploy web` says where onnxruntime-web came from; `--serve` serves with the isolation headers; errors are one message."
    bundle,_ = tab
    xd = console_script('xdeploy')
    out = run(xd, 'web', bundle, tmp_path/'site', '--ort-web', ORT_WEB).stdout
    assert f'onnxruntime-web 1.30.0: copied from {ORT_WEB/"dist"} (--ort-web)' in out and (tmp_path/'site'/'_headers').is_file()
    r = run(xd, 'web', bundle, tmp_path/'site', check=False)
    assert r.returncode == 1 and 'already exists' in r.stderr and 'Traceback' not in r.stderr
    r = run(xd, 'web', bundle, tmp_path/'site2', '--ort-web', tmp_path, check=False)
    assert r.returncode == 1 and 'is not an onnxruntime-web package' in r.stderr and 'Traceback' not in r.stderr
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    srv = subprocess.Popen([xd, 'web', str(bundle), str(tmp_path/'site'), '--overwrite', '--serve', '--port', str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try: resp = urllib.request.urlopen(f'http://127.0.0.1:{port}/ort/ort.all.min.mjs', timeout=1); break
            except OSError: time.sleep(0.1)
        else: pytest.fail(f"xdeploy web --serve did not answer: {srv.stderr.read() if srv.poll() is not None else ''}")
        assert resp.headers['Cross-Origin-Opener-Policy'] == 'same-origin' and resp.headers['Content-Type'] == 'text/javascript'
    finally: srv.terminate(); srv.wait(10)

def test_webgpu_not_chosen_for_int8_unless_its_sample_check_passes(playwright, sites):
    """With WebGPU on (Chromium's SwiftShader adapter), device 'auto' runs the int8 QDQ variant on WebGPU only if its
    outputs there match the CPU's on the bundle's sample: on ORT Web's WebGPU EP they do not, so it runs on wasm, and says why."""
    args = [a for a in CHROMIUM_ARGS if a != '--disable-gpu'] + ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader']
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        page = open_page(b, sites['img'] + '?variant=int8-static', timeout=120_000)
        assert page.evaluate('navigator.gpu.requestAdapter().then(a => !!a)'), "no WebGPU adapter: the check did not run"
        d = page.evaluate('window.xdeploy.predictor.describe()')
    finally: b.close()
    assert d['device'] == 'wasm' and d['artifact']['variant'] == 'int8-static', d
    assert re.search(r"passed over: webgpu \((its outputs differ from the CPU's by [\d.e-]+ on the bundle's sample|onnxruntime could not load)", d['why']), d['why']

def test_ort_web_through_npm_pack(tmp_path):
    "Without a local package (a `pip install xdeploy_nb`), onnxruntime-web comes through `npm pack` at the pinned version, its sha512 checked."
    from xdeploy_nb.hosts.web import ORT_FILES, _dist_version, _npm_ort_web
    d = _npm_ort_web(tmp_path)
    assert _dist_version(d) == '1.30.0' and sorted(p.name for p in d.iterdir()) == sorted(ORT_FILES)
    assert (d/'ort.all.min.mjs').read_bytes() == (ORT_WEB/'dist'/'ort.all.min.mjs').read_bytes()
