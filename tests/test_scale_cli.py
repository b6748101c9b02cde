"""`xdeploy serve` in a process of its own (its own local Ray cluster, after tests/test_scale.py has shut its own down):
it answers on 127.0.0.1 as the `Predictor` does, then SIGTERM stops it gracefully (exit status 0, port released)."""
import os, queue, signal, socket, subprocess, sys, threading, time
import pytest
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.train import image_dls, trained_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from conftest import ROOT
from test_scale import call, free_port, time_limit

pytestmark = pytest.mark.slow(seconds=20)  # about how long this module takes (measured on an idle 2-core machine)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('scale_cli')
    learn = trained_learner(image_dls(make_image_folder(root/'shapes', classes=3, n_train=8, n_valid=4, size=24), size=16, bs=8), epochs=2)
    export_bundle(learn, root/'image', formats=('onnx',))
    return dict(root=root, image=root/'image')

def test_cli_serve_sigterm(data):
    "`xdeploy serve` in a process of its own answers, then stops on SIGTERM with exit status 0 and frees its port."
    with time_limit(330, 'test_cli_serve_sigterm'): _serve_and_stop(data)

def _serve_and_stop(data):
    port = free_port()
    env = {**os.environ, 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, '-c', 'from xdeploy_nb.cli import main; main()', 'serve', str(data['image']), '--port', str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    lines = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True)
    reader.start()
    try:
        deadline,seen = time.monotonic() + 240,[]  # Ray's start on a loaded machine
        while not (seen and seen[-1].startswith('serving ')):  # printed once SIGTERM stops it gracefully
            assert proc.poll() is None and time.monotonic() < deadline, ''.join(seen)[-3000:]
            try: seen.append(lines.get(timeout=1))
            except queue.Empty: pass
        assert f'at http://127.0.0.1:{port}' in seen[-1]
        f = sorted((data['root']/'shapes'/'valid').rglob('*.png'))[0]
        assert call(f'http://127.0.0.1:{port}/predict', f.read_bytes()) == (200, Predictor(data['image']).predict(f))
        proc.send_signal(signal.SIGTERM)
        proc.wait(60); reader.join(10)
        out = ''.join(seen) + ''.join(lines.queue)
        assert proc.returncode == 0 and out.rstrip().endswith('stopped'), out[-3000:]
        for _ in range(40):  # Serve's proxy, a process of Ray's, lets the port go as Ray shuts down
            with socket.socket() as s:
                if s.connect_ex(('127.0.0.1', port)) != 0: break
            time.sleep(0.5)
        else: pytest.fail(f"127.0.0.1:{port} still answers 20 s after `xdeploy serve` exited")
    finally:
        try: os.killpg(proc.pid, signal.SIGKILL)  # whatever of its session is left
        except ProcessLookupError: pass
        proc.wait(10)
