"""A writer killed (SIGKILL) at every step of `atomic_directory` leaves a complete bundle at the destination, the old
one or the new one, once the next read or write has run: with the atomic exchange, and with the two-rename fallback."""
import json, os, subprocess, sys, textwrap
import pytest
from xdeploy_nb.core import atomic_directory, read_manifest, remove_stale_partials

WRITER = textwrap.dedent('''
    import os, signal, sys, json
    from pathlib import Path
    import xdeploy_nb.core as core
    dest,step,exchange = Path(sys.argv[1]),sys.argv[2],sys.argv[3] == 'exchange'
    if not exchange: core._exchange = lambda a, b: False
    def hook(name):
        if name == step: os.kill(os.getpid(), signal.SIGKILL)
    core._step_hook = hook
    with core.atomic_directory(dest, overwrite=True) as d:
        (d/'manifest.json').write_text(json.dumps(dict(v=2)))
        if step == 'filling': os.kill(os.getpid(), signal.SIGKILL)
''')

def _bundle(path, v):
    with atomic_directory(path, overwrite=path.exists()) as d: (d/'manifest.json').write_text(json.dumps(dict(v=v)))

def _version(path): return json.loads((path/'manifest.json').read_text())['v']

@pytest.mark.parametrize('exchange,step,expected', [
    ('exchange', 'filling', 1), ('exchange', 'exchanged', 2),
    ('fallback', 'filling', 1), ('fallback', 'old moved', 1), ('fallback', 'renamed', 2)])
def test_kill_at_every_step(tmp_path, exchange, step, expected):
    dest = tmp_path/'bundle'
    _bundle(dest, 1)
    r = subprocess.run([sys.executable, '-c', WRITER, str(dest), step, exchange], capture_output=True, text=True, timeout=60)
    assert r.returncode == -9, (r.stdout, r.stderr)
    if step == 'old moved': assert not dest.exists()  # the window the fallback leaves: only the hidden old directory
    try: read_manifest(dest)  # a read puts a displaced old directory back (the toy manifest is not a valid one)
    except Exception as e: assert 'manifest.json' in str(e)
    assert _version(dest) == expected
    remove_stale_partials(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bundle']
    _bundle(dest, 3)  # and the next write works
    assert _version(dest) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ['bundle']
