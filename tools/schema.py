#!/usr/bin/env python
"""Write `xdeploy_nb/manifest.schema.json`, the published JSON Schema of a bundle's manifest, from `xdeploy_nb.core.json_schema()`;
with `--check`, only say whether the file is current (exit 1 if not).

The schema is generated from `MANIFEST_SCHEMA`, the one the runtime checks, with the names that `xdeploy_nb.runtime` (and the
variants it imports) registers as the enums of the registries' fields: so this imports the runtime first. It imports the
package of this checkout, whatever is installed. A script rather than a notebook cell, so that running the notebooks (or
their tests) never writes into the package, and `tools/check_sync.py` can call it like `tools/readme.py --check`."""
import argparse, difflib, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILE = ROOT/'xdeploy_nb'/'manifest.schema.json'

def schema_text()->str:
    "The text the schema file should have."
    sys.path.insert(0, str(ROOT))
    import xdeploy_nb.runtime  # fills KINDS, TASKS, FORMATS and VARIANTS
    from xdeploy_nb.core import schema_json
    return schema_json()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help="only check that the file is current")
    args = p.parse_args()
    want,rel = schema_text(),FILE.relative_to(ROOT).as_posix()
    have = FILE.read_text(encoding='utf-8') if FILE.exists() else ''
    if not args.check:
        if have != want: FILE.write_text(want, encoding='utf-8')
        print(f"wrote {rel}" if have != want else f"{rel} is current.")
        return
    if have == want: return print(f"{rel} is current.")
    sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), f'{rel} (in the repo)', f'{rel} (from json_schema())'))
    print(f"{rel} is out of date: it is generated from MANIFEST_SCHEMA and the preprocessing spec schemas. "
          "Run `python tools/schema.py` and commit it.", file=sys.stderr)
    sys.exit(1)

if __name__ == '__main__': main()
