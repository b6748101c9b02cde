#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb without Quarto.

`nbdev_readme` renders index.ipynb with Quarto, which cannot be installed everywhere. This does the same
job with nbdev's own notebook processing (the processors `nbdev_docs` runs before Quarto, so `#| hide`,
`show_doc` and the other directives are honoured) and nbconvert's Markdown exporter.
Usage: `python tools/readme.py` writes README.md; `python tools/readme.py --check` only compares."""
import argparse, difflib, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Quarto cell options nbdev leaves in processed cells, as the standard cell tags nbconvert and myst-nb understand.
_DIRECTIVE_TAGS = {('echo', 'false'): 'remove-input', ('output', 'false'): 'remove-output',
                   ('include', 'false'): 'remove-cell'}
_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def processed_notebook(path:Path):
    "`path` after nbdev's docs processors, with Quarto cell options turned into tags, as an nbformat notebook."
    import nbformat
    from execnb.nbio import read_nb, dict2nb
    from nbdev.processors import FilterDefaults
    nb = read_nb(path)
    FilterDefaults()(nb)
    cells = []
    for c in nb.cells:
        if c.get('source') is None or (c.cell_type == 'raw' and c.source.startswith('---')): continue
        if c.cell_type == 'code':
            lines,tags = c.source.splitlines(),[]
            for l in lines:
                m = _re_directive.match(l)
                if m and (tag := _DIRECTIVE_TAGS.get((m.group(1), m.group(2).lower()))): tags.append(tag)
            c.source = '\n'.join(l for l in lines if not _re_directive.match(l)).strip()
            c.setdefault('metadata', {})['tags'] = tags
        cells.append(c)
    fm = getattr(nb, 'frontmatter_', {}) or {}
    if fm.get('title'):  # what Quarto makes of the front matter: a title and a lead paragraph
        head = f"# {fm['title']}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
        cells.insert(0, dict(cell_type='markdown', metadata={}, source=head))
    for i,c in enumerate(cells): c.setdefault('id', f'cell-{i}')
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python'}
    return nbformat.reads(json.dumps(_plain(nb)), as_version=4)  # reads joins multi-line strings

def _plain(o):
    "Deep-convert fastcore AttrDicts and Ls into plain dicts and lists."
    if isinstance(o, dict): return {k:_plain(v) for k,v in o.items() if not k.endswith('_')}
    if isinstance(o, (list, tuple)) or type(o).__name__ == 'L': return [_plain(v) for v in o]
    return o

def render_readme(nb_path:Path=None)->str:
    "The README text rendered from `nb_path` (default: the `readme_nb` of settings.ini)."
    from nbconvert import MarkdownExporter
    from traitlets.config import Config
    from nbdev.config import get_config
    cfg = get_config()
    nb = processed_notebook(nb_path or cfg.nbs_path/cfg.get('readme_nb', 'index.ipynb'))
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = ('remove-cell',)
    c.TagRemovePreprocessor.remove_input_tags = ('remove-input',)
    c.TagRemovePreprocessor.remove_all_outputs_tags = ('remove-output',)
    body,res = MarkdownExporter(config=c).from_notebook_node(nb)
    if res.get('outputs'): raise SystemExit("index.ipynb has image outputs, which a README cannot show: hide them.")
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    return body

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--check', action='store_true', help="fail if README.md differs from what would be written")
    args = p.parse_args()
    import os; os.chdir(ROOT)
    new,readme = render_readme(),ROOT/'README.md'
    old = readme.read_text() if readme.exists() else ''
    if not args.check:
        readme.write_text(new); return print("wrote README.md")
    if old != new:
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), 'README.md', 'from nbs/index.ipynb'))
        sys.exit("README.md is out of date with nbs/index.ipynb. Fix: run `python tools/readme.py` and commit README.md.")
    print("README.md is current.")

if __name__ == '__main__': main()
