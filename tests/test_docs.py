"""The documentation site (tools/docs.py: nbdev's processing, Sphinx + myst-nb), in headless Chromium.

Builds the site once, serves it on 127.0.0.1, opens every page of the navigation in Debian's chromium (Playwright,
never `playwright install`) and checks what a reader would see: pages load, internal links and their #anchors
resolve, every exported name has its API entry, the tutorials are in their own section with their real outputs and
plots, images load, search finds things. Screenshots of the index, of the export page and of the vision tutorial go
to test-artifacts/."""
import ast, re, socket, subprocess, sys, time, urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit, unquote
import pytest
from conftest import ROOT, run

pytestmark = pytest.mark.slow(seconds=40)  # about how long this module takes (measured on an idle 2-core machine)

CHROMIUM = Path('/usr/bin/chromium')
# The machine has no network: without the background-networking flags Chromium floods refused connections.
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
ARTIFACTS = ROOT/'test-artifacts'
# The theme's (furo's) navigation sidebar and main content.
NAV,MAIN = 'div.sidebar-tree','article[role=main]'
SHOTS = {'index.html': 'docs-index.png', 'export.html': 'docs-export.png', 'tutorials/vision.html': 'docs-tutorial-vision.png'}


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The built site: its folder."
    tmp = tmp_path_factory.mktemp('docs')
    run(sys.executable, ROOT/'tools'/'docs.py', '--out', tmp/'site', '--src', tmp/'src', timeout=300)
    return tmp/'site'

@pytest.fixture(scope='module')
def base(site):
    "The URL of the site, served by `python -m http.server` on a free port of 127.0.0.1."
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    srv = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1', '--directory', str(site)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}/'
    for _ in range(100):
        try: urllib.request.urlopen(url, timeout=1); break
        except OSError: time.sleep(0.1)
    yield url
    srv.terminate(); srv.wait(10)

@pytest.fixture(scope='module')
def browser():
    if not CHROMIUM.exists(): pytest.fail("Debian's chromium is not installed: run tools/test.sh, or apt-get install chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()

@pytest.fixture(scope='module')
def pages(base, browser):
    "Every page of the navigation, opened once: {url: dict(status, title, body, links, ids, images, bad_requests)}, plus screenshots."
    ctx = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = ctx.new_page()
    bad = []  # same-site requests that failed or answered an error
    page.on('requestfailed', lambda r: bad.append(f'{r.url}: {r.failure}') if r.url.startswith(base) else None)
    page.on('response', lambda r: bad.append(f'{r.url}: HTTP {r.status}') if r.url.startswith(base) and r.status >= 400 else None)
    page.goto(base)
    nav = [urljoin(base, h).split('#')[0] for h in page.eval_on_selector_all(
        f'{NAV} a.reference.internal', 'as => as.map(a => a.getAttribute("href"))')]
    urls,out = list(dict.fromkeys([urljoin(base, 'index.html')] + nav)),{}
    ARTIFACTS.mkdir(exist_ok=True)
    for url in urls:
        bad.clear()
        resp = page.goto(url, wait_until='load')
        out[url] = dict(status=resp.status, title=page.title(), body=page.inner_text(MAIN) if page.query_selector(MAIN) else '',
            links=page.eval_on_selector_all('a[href]', 'as => as.map(a => a.href)'),
            ids=set(page.eval_on_selector_all('[id]', 'es => es.map(e => e.id)')),
            images=page.eval_on_selector_all(f'{MAIN} img', 'is => is.map(i => [i.src, i.complete, i.naturalWidth])'),
            outputs=len(page.query_selector_all(f'{MAIN} div.cell_output')),
            prose=page.eval_on_selector(MAIN, 'b => { const c = b.cloneNode(true); c.querySelectorAll("pre").forEach(p => p.remove()); return c.textContent; }'),
            tables=len(page.query_selector_all(f'{MAIN} table')),
            headings=page.eval_on_selector_all('section[id]', 'ss => ss.map(s => [s.id, (s.querySelector("h1,h2,h3,h4,h5,h6")||{}).textContent||"", !!s.querySelector(":scope > div.highlight-python pre, :scope > div > pre")])'),
            bad_requests=list(bad))
        if url[len(base):] in SHOTS: page.screenshot(path=ARTIFACTS/SHOTS[url[len(base):]], full_page=True)
    yield out
    ctx.close()

@pytest.fixture(scope='module')
def nav(base, browser)->dict:
    "The sections of the index's navigation sidebar: {caption: [href of each page, in order]}."
    page = browser.new_page()
    page.goto(base)
    sections = dict(page.eval_on_selector_all(f'{NAV} p.caption', """ps => ps.map(p => [p.textContent.trim(),
        Array.from(p.nextElementSibling.querySelectorAll(':scope > li > a')).map(a => a.getAttribute('href'))])"""))
    page.close()
    return sections

def _modules()->dict:
    """Page name -> `__all__` of the module it documents, read from the source (nothing imported). The page is named
    for the notebook the module is exported from (`# AUTOGENERATED! ... File to edit: ../nbs/22_kinds.text.ipynb` ->
    'kinds.text'), subpackages included."""
    mods = {}
    for f in sorted((ROOT/'xdeploy_nb').rglob('*.py')):
        if not (m := re.search(r'File to edit: \S*?nbs/(\S+)\.ipynb', f.read_text()[:600])): continue  # not generated
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
                mods[re.sub(r'^[0-9]+[a-z]?_', '', m.group(1))] = ast.literal_eval(node.value)
    return mods

class _Ids(HTMLParser):
    "The ids (and a names) of an HTML page."
    def __init__(self): super().__init__(); self.ids = set()
    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k,v in attrs if k == 'id' or (tag == 'a' and k == 'name'))

def _tutorials()->list:
    "The pages of the tutorials (nbs/tutorials/*.ipynb), in their order: nbdev's names, less the number prefix."
    return [f"tutorials/{re.sub(r'^[0-9]+[a-z]?_', '', f.stem)}.html" for f in sorted((ROOT/'nbs'/'tutorials').glob('*.ipynb'))]

def test_pages_load(pages, base):
    names = {u[len(base):] for u in pages}
    assert {f'{m}.html' for m in _modules()} | {'index.html'} | set(_tutorials()) <= names, f"the navigation lacks pages: {sorted(names)}"
    for url,p in pages.items():
        assert p['status'] == 200, (url, p['status'])
        assert p['title'].strip(), f"{url} has no title"
        assert len(p['body'].strip()) > 200, f"{url} has no main content"
        assert not p['bad_requests'], (url, p['bad_requests'])
        raw = [m for m in ('```', '](', '{target=', '| --- |', '|---|') if m in p['prose']]
        assert not raw, f"{url} shows markdown that was not rendered: {raw}"

def test_index_is_the_readme(pages, base):
    body = pages[urljoin(base, 'index.html')]['body']
    readme = (ROOT/'README.md').read_text()
    for h in re.findall(r'^#+\s+(.+)$', re.sub(r'```.*?```', '', readme, flags=re.S), re.M):
        assert h.strip() in body, f"index.html lacks the README's heading {h!r}"
    assert 'predictor.predict(' in body
    assert pages[urljoin(base, 'index.html')]['tables'] >= 2, "the install table and the bundle's summary table"

def test_internal_links(pages, base):
    "Every same-site link goes to a page that exists, and to an anchor that page has."
    ids = {u: p['ids'] for u,p in pages.items()}
    broken = []
    for url,p in pages.items():
        for href in p['links']:
            if not href.startswith(base): continue
            parts = urlsplit(href)
            target = parts._replace(query='', fragment='').geturl()
            if target not in ids:
                try: ids[target] = _Ids(); ids[target].feed(urllib.request.urlopen(target, timeout=10).read().decode('utf-8', 'replace')); ids[target] = ids[target].ids
                except OSError as e: broken.append(f'{url}: {href} ({e})'); ids[target] = None; continue
            if ids[target] is None: broken.append(f'{url}: {href} (no such page)')
            elif parts.fragment and unquote(parts.fragment) not in ids[target]: broken.append(f'{url}: {href} (no such anchor)')
    assert not broken, '\n'.join(sorted(set(broken)))

def test_api_docs(pages, base):
    """Each module page has an API entry for every name in its `__all__`: a section whose heading names it, at the
    anchor nbdev's links use, with the signature (or a constant's source) as code."""
    for mod,names in _modules().items():
        p = pages[urljoin(base, f'{mod}.html')]
        heads = {h.replace('\u00b6', '').strip(): code for _,h,code in p['headings']}
        missing = [n for n in names if n not in heads or n.lower() not in p['ids']]
        assert not missing, f"{mod}.html has no API entry for {missing}"
        no_code = [n for n in names if not heads[n]]
        assert not no_code, f"{mod}.html: API entries without a signature shown as code: {no_code}"

def test_images(pages, base):
    for url,p in pages.items():
        broken = [src for src,complete,w in p['images'] if not (complete and w > 0)]
        assert not broken, f"{url}: images that do not load: {broken}"
    assert pages[urljoin(base, 'train.html')]['images'], "train.html lacks the show_batch plot"
    assert len(pages[urljoin(base, 'tutorials/vision.html')]['images']) >= 2, "the vision tutorial lacks its batch and confusion-matrix plots"
    assert pages[urljoin(base, 'tutorials/accelerators.html')]['images'], "the accelerators tutorial lacks the benchmark's plot"

def test_tutorials(pages, base, nav):
    """The tutorials have their own section of the navigation, in their order; each shows its notebook's real
    outputs, and links its names to their API entries (nbdev's links, resolved from a page in a sub-folder)."""
    tuts = _tutorials()
    assert len(tuts) >= 4, tuts
    assert 'Tutorials' in nav, f"no Tutorials section in the navigation: {list(nav)}"
    assert nav['Tutorials'] == tuts, nav['Tutorials']
    assert 'API reference' in nav and 'export.html' in nav['API reference'], nav
    index = pages[urljoin(base, 'index.html')]
    for t in tuts:
        assert urljoin(base, t) in index['links'], f"the index (README) does not link the tutorial {t}"
        p = pages[urljoin(base, t)]
        assert p['outputs'] >= 3, f"{t} shows {p['outputs']} cell outputs: are the notebook's outputs there?"
    vision = pages[urljoin(base, 'tutorials/vision.html')]
    assert {urljoin(base, 'export.html#export-bundle'), urljoin(base, 'export.html#export_bundle')} & set(vision['links']), \
        "the vision tutorial does not link export_bundle to its API entry"
    assert 'faithful' in vision['body'] and '100.0%' in vision['body'], "the vision tutorial lacks the bundle's verification table"
    assert 'packages loaded: PIL, numpy, onnxruntime' in pages[urljoin(base, 'tutorials/runtime_only.html')]['body']

@pytest.mark.parametrize('query,page_', [('export_bundle', 'export.html'), ('penguins', 'tutorials/tabular.html')])
def test_search(base, browser, query, page_):
    "The search page finds API entries and tutorials."
    page = browser.new_page()
    page.goto(urljoin(base, f'search.html?q={query}'))
    page.wait_for_selector('#search-results ul.search li', timeout=15000)
    hits = page.eval_on_selector_all('#search-results ul.search li a', 'as => as.map(a => a.getAttribute("href"))')
    assert any(h.startswith(page_) for h in hits), hits
    page.close()
