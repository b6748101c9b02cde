"The sync check catches a hand edit of the generated library, a stale README, and saved widget state."
import shutil, sys
from conftest import run

def _copy(root, dest):
    for name in ('settings.ini', 'nbs', 'xdeploy_nb', 'tools', 'README.md'):
        (shutil.copytree if (root/name).is_dir() else shutil.copy)(root/name, dest/name)
    return dest

def test_clean_tree_passes(root, tmp_path):
    r = run(sys.executable, _copy(root, tmp_path)/'tools'/'check_sync.py', cwd=tmp_path)
    assert 'in sync' in r.stdout and 'README.md is current' in r.stdout

def test_hand_edit_of_library_fails(root, tmp_path):
    repo = _copy(root, tmp_path)
    with open(repo/'xdeploy_nb'/'core.py', 'a') as f: f.write("\nHAND_EDIT = 1\n")
    r = run(sys.executable, repo/'tools'/'check_sync.py', cwd=tmp_path, check=False)
    assert r.returncode == 1
    assert '+HAND_EDIT = 1' not in r.stdout and '-HAND_EDIT = 1' in r.stdout
    assert 'out of sync with nbs/' in r.stderr
    assert (repo/'xdeploy_nb'/'core.py').read_text().endswith("HAND_EDIT = 1\n"), "the check must not overwrite edits"

def test_stale_readme_fails(root, tmp_path):
    repo = _copy(root, tmp_path)
    (repo/'README.md').write_text((repo/'README.md').read_text() + "\nA line added by hand.\n")
    r = run(sys.executable, repo/'tools'/'check_sync.py', cwd=tmp_path, check=False)
    assert r.returncode == 1 and 'README.md is out of date' in r.stderr

def test_saved_widget_state_fails(root, tmp_path):
    import json
    repo = _copy(root, tmp_path)
    f = repo/'nbs'/'60_widgets.ipynb'
    nb = json.loads(f.read_text())
    nb['metadata']['widgets'] = {'application/vnd.jupyter.widget-state+json': {'state': {}, 'version_major': 2, 'version_minor': 0}}
    f.write_text(json.dumps(nb))
    r = run(sys.executable, repo/'tools'/'check_sync.py', cwd=tmp_path, check=False)
    assert r.returncode == 1 and 'nbs/60_widgets.ipynb keep saved widget state' in r.stderr and 'store_widget_state=False' in r.stderr
