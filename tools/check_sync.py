#!/usr/bin/env python
"""Fail if the generated files differ from what the notebooks generate: `xdeploy_nb/` (nbdev_export), README.md and
`xdeploy_nb/manifest.schema.json` (tools/schema.py, from `json_schema()`), if a notebook keeps saved widget state
(megabytes of JSON that nbdev_clean keeps and nothing needs), if `nbdev_clean` would change a notebook, or if
pyflakes finds anything in `xdeploy_nb/`.

The export runs in a scratch copy of the repository, so a hand edit in `xdeploy_nb/` is reported, not overwritten."""
import difflib, filecmp, os, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = 'xdeploy_nb'

def _py_files(d:Path)->dict: return {p.relative_to(d).as_posix():p for p in sorted(d.rglob('*.py')) if '__pycache__' not in p.parts}

def library_drift()->list:
    "Unified diffs between `xdeploy_nb/` and a fresh `nbdev_export` of `nbs/`."
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ('settings.ini', 'nbs', LIB): 
            (shutil.copytree if (ROOT/name).is_dir() else shutil.copy)(ROOT/name, tmp/name)
        subprocess.run(['nbdev_export'], cwd=tmp, check=True)
        have,want = _py_files(ROOT/LIB),_py_files(tmp/LIB)
        diffs = []
        for name in sorted(set(have) | set(want)):
            a = have[name].read_text().splitlines(True) if name in have else []
            b = want[name].read_text().splitlines(True) if name in want else []
            if a != b: diffs.append(''.join(difflib.unified_diff(a, b, f'{LIB}/{name} (in the repo)', f'{LIB}/{name} (from nbs/)')))
        return diffs

def unclean_notebooks()->list:
    "The notebooks under nbs/ that `nbdev_clean` would change (cleaned in a scratch copy)."
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(ROOT/'settings.ini', tmp/'settings.ini'); shutil.copytree(ROOT/'nbs', tmp/'nbs')
        subprocess.run(['nbdev_clean'], cwd=tmp, check=True, capture_output=True)
        return [p.relative_to(tmp).as_posix() for p in sorted((tmp/'nbs').rglob('*.ipynb'))
                if not filecmp.cmp(p, ROOT/p.relative_to(tmp), shallow=False)]

def pyflakes_report()->str:
    "What pyflakes finds in the library (empty: nothing)."
    return subprocess.run([sys.executable, '-m', 'pyflakes', LIB], cwd=ROOT, capture_output=True, text=True).stdout

def widget_state()->list:
    "The notebooks under nbs/ that keep saved widget state in their metadata."
    import json
    return [p.relative_to(ROOT).as_posix() for p in sorted((ROOT/'nbs').rglob('*.ipynb'))
            if 'widgets' in json.loads(p.read_text()).get('metadata', {})]

def main():
    os.chdir(ROOT)
    failed = False
    if diffs := library_drift():
        print(*diffs, sep='\n')
        print(f"{LIB}/ is out of sync with nbs/ (see the diff above). The notebooks are the source: move any hand edit "
              f"into its notebook, then run `nbdev_export` and commit both.", file=sys.stderr)
        failed = True
    else: print(f"{LIB}/ is in sync with nbs/.")
    if saved := widget_state():
        print(f"{', '.join(saved)} keep saved widget state. Execute notebooks with "
              f"`jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.store_widget_state=False`, "
              f"or delete metadata.widgets.", file=sys.stderr)
        failed = True
    if unclean := unclean_notebooks():
        print(f"nbdev_clean would change {', '.join(unclean)}: run `nbdev_clean` and commit the notebooks.", file=sys.stderr)
        failed = True
    else: print("The notebooks are clean (nbdev_clean changes nothing).")
    if report := pyflakes_report():
        print(report + f"pyflakes finds the above in {LIB}/: fix it in the notebooks.", file=sys.stderr)
        failed = True
    else: print(f"pyflakes finds nothing in {LIB}/.")
    if subprocess.run([sys.executable, str(ROOT/'tools'/'readme.py'), '--check']).returncode: failed = True
    if subprocess.run([sys.executable, str(ROOT/'tools'/'schema.py'), '--check']).returncode: failed = True
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
