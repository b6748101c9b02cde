#!/usr/bin/env python
"""Run every notebook under nbs/ with `nbdev_test`, each in a process of its own, two at a time; print the timings and
exit 1 if any fails.

Why not one `nbdev_test`: it runs notebooks in a pool of worker processes that it reuses, and the notebooks that
implement kinds, tasks, formats and variants register their own (notebook-defined) entries in the package's
registries (`xdeploy_nb.core.KINDS`, ...). The next notebook in the same process would find those entries, whose
notebook is gone. One process per notebook keeps each notebook's registrations its own."""
import subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def notebooks()->list:
    "The notebooks `nbdev_test` would run: under nbs/, none whose name or folder starts with '_' or '.'."
    return sorted(p for p in (ROOT/'nbs').rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT/'nbs').parts))

def run(nb:Path)->tuple:
    t0 = time.perf_counter()
    r = subprocess.run(['nbdev_test', '--path', str(nb)], cwd=ROOT, capture_output=True, text=True)
    return nb,r.returncode,time.perf_counter() - t0,r.stdout + r.stderr

def main():
    with ThreadPoolExecutor(2) as pool: results = list(pool.map(run, notebooks()))
    for nb,rc,secs,out in sorted(results, key=lambda r: -r[2]):
        print(f"{nb.relative_to(ROOT/'nbs')}: {secs:.0f} secs{'' if rc == 0 else ' FAILED'}")
    failed = [(nb,out) for nb,rc,_,out in results if rc]
    for nb,out in failed: print(f"\n== {nb.relative_to(ROOT)} failed:\n{out[-6000:]}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
