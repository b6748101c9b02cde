"""The widgets in real JupyterLab, in headless Chromium, as a person uses them.

Starts `jupyter lab` on 127.0.0.1 with a token, in a temporary folder holding a small shapes dataset and a notebook
that shows a `Studio`; opens it in Debian's chromium (Playwright, never `playwright install`), runs all cells from the
Run menu, then clicks: Train (the progress bar reaches its end, the loss chart and the confusion matrix appear), Train
again and Stop during the fit (it stops after a batch and the Learner validates), Train again and the kernel's
Interrupt (the same), Export with an fp16 variant (the verification table says faithful), then uploads an image in the Run tab (the
prediction chart and the latency appear) and a corrupt one (a message, and the widget works on), and runs the
benchmark (its table and plot appear). Screenshots of
each stage go to test-artifacts/widgets-*.png."""
import json, os, secrets, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow(seconds=25)  # about how long this module takes (measured on an idle 2-core machine)

CHROMIUM = Path('/usr/bin/chromium')
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
ARTIFACTS = ROOT/'test-artifacts'
# JupyterLab's user settings: no news or update checks (no network here), no notification toasts over the widgets
SETTINGS = {'@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False}}


def _cell(src:str)->dict: return dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=src)

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on a free port of 127.0.0.1, serving a folder with the data and studio.ipynb: its URL and token."
    tmp = tmp_path_factory.mktemp('lab')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
           'XDEPLOY_DATA': str(tmp/'data'), 'JUPYTER_CONFIG_DIR': str(tmp/'config'), 'JUPYTER_RUNTIME_DIR': str(tmp/'runtime'),
           'JUPYTERLAB_SETTINGS_DIR': str(tmp/'settings'), 'JUPYTERLAB_WORKSPACES_DIR': str(tmp/'workspaces'), 'MPLBACKEND': 'agg'}
    for name,value in SETTINGS.items():
        f = tmp/'settings'/name; f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))
    work = tmp/'work'; work.mkdir()
    subprocess.run([sys.executable, '-c', f"from xdeploy_nb.data import make_image_folder; make_image_folder({str(work/'small')!r}, n_train=30, n_valid=10, size=32)"],
                   env=env, check=True, timeout=120)
    (work/'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n this is not an image')
    nb = dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
              cells=[_cell("from xdeploy_nb.widgets import Studio"),
                     _cell("studio = Studio('small', path='bundle', size=32, epochs=2)\nstudio")])
    (work/'studio.ipynb').write_text(json.dumps(nb))
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    token = secrets.token_hex(16)
    log = open(tmp/'jupyter.log', 'w')
    srv = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                            f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}',
                            '--allow-root'],  # tools/test.sh runs as root on a fresh Debian machine
                           cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    for _ in range(300):
        try: urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=1); break
        except OSError:
            if srv.poll() is not None: pytest.fail(f"jupyter lab exited {srv.returncode}:\n{(tmp/'jupyter.log').read_text()}")
            time.sleep(0.2)
    else: pytest.fail(f"jupyter lab did not answer:\n{(tmp/'jupyter.log').read_text()}")
    yield dict(url=url, token=token, work=work, log=tmp/'jupyter.log')
    srv.terminate()
    try: srv.wait(20)
    except subprocess.TimeoutExpired: srv.kill(); srv.wait(10)
    log.close()

@pytest.fixture(autouse=True)
def shot_on_failure(request):
    "A screenshot of the page when a test fails: test-artifacts/widgets-failed-<test>.png."
    yield
    pg = next((v for v in request.node.funcargs.values() if hasattr(v, 'screenshot')), None)  # the page, from whichever fixture
    if pg is not None and getattr(request.node, 'rep_call', None) is not None and request.node.rep_call.failed:
        pg.screenshot(path=ARTIFACTS/f"widgets-failed-{request.node.name.replace('/', '-')}.png")

@pytest.fixture(scope='module')
def page(lab):
    "JupyterLab in headless Chromium, with studio.ipynb open and all its cells run."
    if not CHROMIUM.exists(): pytest.fail("Debian's chromium is not installed: run tools/test.sh, or apt-get install chromium")
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        pg = b.new_page(viewport={'width': 1400, 'height': 1500})
        pg.set_default_timeout(60_000)
        pg.goto(f"{lab['url']}/lab/tree/studio.ipynb?token={lab['token']}")
        pg.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
        pg.wait_for_selector('.jp-StatusBar-Widget:has-text("Python 3 (ipykernel) | Idle")', timeout=120_000)  # the kernel is up
        pg.click('.lm-MenuBar-itemLabel:text-is("Run")')
        pg.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
        try: pg.wait_for_selector('.widget-tab button.widget-button:has-text("Train")', timeout=int(os.environ.get('E2E_T', 180_000)))
        except Exception: pg.screenshot(path=ARTIFACTS/'widgets-0-no-studio.png'); raise
        yield pg
        b.close()

def _button(pg, text:str): return pg.locator(f'.widget-tab-contents > div:not(.lm-mod-hidden) button.widget-button:text-is("{text}")').first

def _shot(pg, name:str): pg.locator('.widget-tab').first.screenshot(path=ARTIFACTS/f'widgets-{name}.png')

def _message(pg)->str:
    return ' '.join(pg.locator('.widget-tab-contents > div:not(.lm-mod-hidden) .xd-info, .widget-tab-contents > div:not(.lm-mod-hidden) .xd-error').all_inner_texts())

def _set_number(pg, label:str, value):
    box = pg.locator(f'.widget-tab-contents > div:not(.lm-mod-hidden) .widget-inline-hbox:has(label:text-is("{label}")) input').first
    box.fill(str(value)); box.press('Enter')

def _wait_text(pg, text:str, timeout:float=120):
    "Wait until the visible tab's message says `text`; return the message."
    end = time.time() + timeout
    while time.time() < end:
        m = _message(pg)
        if text in m: return m
        time.sleep(0.2)
    pytest.fail(f"the widget never said {text!r}; it says {_message(pg)!r}")

# Each test gets the state it needs from a fixture (trained -> exported -> run_tab -> predicted), not from the tests
# before it: any one of them runs alone. The fixtures are module-scoped, as the page is: a state is reached once.

@pytest.fixture(scope='module')
def trained(page):
    "The page after Load data and Train on the Train tab, once the training job is over."
    _button(page, 'Load data').click()
    _wait_text(page, 'Loaded small')
    _button(page, 'Train').click()
    page.wait_for_selector('.widget-tab .progress-bar-success', timeout=int(os.environ.get('E2E_T', 180_000)))
    page.wait_for_selector('.widget-tab :text("Training: done in")')  # the job is over: the Learner is handed to the Export tab
    return page

@pytest.fixture(scope='module')
def exported(trained):
    "The page after exporting the trained Learner with the fp16 variant on the Export tab."
    page = trained
    page.click('.lm-TabBar-tab:has-text("2. Export")')
    page.locator('.widget-tab-contents > div:not(.lm-mod-hidden) .widget-checkbox:has-text("fp16") input').first.check()
    _button(page, 'Export').click()
    _wait_text(page, 'Exported and verified')
    return page

@pytest.fixture(scope='module')
def run_tab(exported):
    "The page on the Run tab, which holds the exported bundle."
    exported.click('.lm-TabBar-tab:has-text("3. Run")')
    return exported

def _upload(page, path):  # as a person does: the button opens the browser's file chooser
    with page.expect_file_chooser() as chooser: page.locator('.widget-tab-contents > div:not(.lm-mod-hidden) .widget-upload').first.click()
    chooser.value.set_files(str(path))

@pytest.fixture(scope='module')
def predicted(run_tab, lab):
    "The page on the Run tab after a prediction of an uploaded image."
    _upload(run_tab, next((lab['work']/'small'/'valid'/'circle').glob('*.png')))
    run_tab.wait_for_function("() => /latency [\\d.]+ ms on cpu/.test(document.querySelector('.widget-tab').innerText)")
    return run_tab

def test_train(trained):
    page = trained
    msg = _wait_text(page, 'Trained:')
    assert 'accuracy' in msg, msg
    bar = page.locator('.widget-tab .progress-bar-success').first
    assert bar.evaluate('b => b.style.width') == '100%'
    assert 'batch 10/10' in page.locator('.widget-tab').inner_text()
    page.wait_for_function("() => [...document.querySelectorAll('.widget-tab img')].filter(i => i.naturalWidth > 100).length >= 3")  # batch, loss chart, confusion matrix
    page.wait_for_selector('.widget-tab :text("Top losses")')
    page.wait_for_selector('.widget-tab :text("Training: done in")')
    _shot(page, '1-trained')

@pytest.mark.parametrize('how', ['stop button', 'kernel interrupt'])
def test_stop_during_fit(trained, how):
    page = trained
    _set_number(page, 'Epochs', 300)
    _button(page, 'Train').click()
    page.wait_for_function("() => !document.querySelector('.widget-tab .xd-info, .widget-tab .xd-error')")  # the job started: the last message (and progress) are cleared
    page.wait_for_function("() => /epoch 1\\/300 · batch ([3-9]|\\d\\d+)\\//.test(document.querySelector('.widget-tab').innerText)")  # a few batches in
    if how == 'stop button': _button(page, 'Stop').click()
    else:
        page.click('.lm-MenuBar-itemLabel:text-is("Kernel")')
        page.click('.lm-Menu-itemLabel:text-is("Interrupt Kernel")')
    msg = _wait_text(page, 'Stopped after batch', timeout=60)
    assert '(the Learner is usable): valid_loss' in msg, msg  # validated after the stop
    assert int(msg.split('Stopped after batch ')[1].split()[0]) >= 3, msg
    assert page.locator('.widget-tab .progress-bar-warning').count() == 1
    page.wait_for_selector('.widget-tab :text("Training: done in")')  # the job is over: the buttons work again
    _shot(page, f"2-stopped-by-{how.replace(' ', '-')}")
    _set_number(page, 'Epochs', 2)

def test_export(exported):
    page = exported
    table = page.locator('.widget-tab table.xd-verify').first
    rows = table.locator('tbody tr').all_inner_texts()
    assert len(rows) == 2 and all('faithful' in r and 'NOT' not in r for r in rows), rows
    assert 'fp16' in rows[1], rows
    assert 'onnx' in rows[0] and ('kB' in rows[0] or 'MB' in rows[0])
    _shot(page, '3-exported')

def test_run(run_tab, lab):
    page = run_tab
    _upload(page, lab['work']/'corrupt.png')
    assert 'cannot identify this as an image' in _wait_text(page, 'Fix:', timeout=60)
    _shot(page, '4-corrupt-upload')
    _upload(page, next((lab['work']/'small'/'valid'/'square').glob('*.png')))
    page.wait_for_function("() => /latency [\\d.]+ ms on cpu/.test(document.querySelector('.widget-tab').innerText)")
    assert not _message(page), _message(page)  # the corrupt upload's message is gone
    chart = page.locator('.widget-tab-contents > div:not(.lm-mod-hidden) img').first
    assert chart.evaluate('i => i.naturalWidth') > 100  # the prediction chart
    _shot(page, '5-prediction')

def test_benchmark(predicted):
    page = predicted
    _button(page, 'Benchmark').click()
    table = page.locator('.widget-tab-contents > div:not(.lm-mod-hidden) table.xd-table').first
    table.wait_for(timeout=180_000)
    rows = table.locator('tbody tr').all_inner_texts()
    assert any('fp16' in r for r in rows) and any('fp32' in r for r in rows), rows
    page.wait_for_function("() => [...document.querySelectorAll('.widget-tab-contents > div:not(.lm-mod-hidden) img')].filter(i => i.naturalWidth > 100).length >= 2")  # prediction chart, benchmark plot
    _shot(page, '6-benchmark')
