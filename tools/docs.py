#!/usr/bin/env python
"""Build the documentation site from the notebooks, without Quarto: nbdev's docs processing, then Sphinx with myst-nb.

nbdev renders its docs with Quarto, which cannot be installed everywhere. This keeps nbdev's processing (the
processors `nbdev_docs` runs before Quarto: `#| hide`, `show_doc` for every exported symbol, directives, links)
and hands the processed notebooks to Sphinx + myst-nb, a maintained documentation tool from PyPI, which gives
navigation and search. Outputs are the notebooks' own, never re-executed (only the cells nbdev runs to render
`show_doc`: exported code and import-only cells). On top of nbdev's processing: `show_doc` outputs become markdown,
so each API entry is a section with the anchor nbdev's links use (Quarto's slugs: `DeviceList.names` ->
`#devicelist.names`); exported constants, which nbdev gives no `show_doc`, get an entry with their source; and nbdev's
links to the published site (doc_host + doc_baseurl) become links within this one, checked by Sphinx (`-W`). The
navigation follows nbs/sidebar.yml: a section per sub-folder of nbs/ (the tutorials) first, then the API reference,
one page per module; the theme is furo.
Usage: `python tools/docs.py [--out _site]`; the site's entry page is `_site/index.html`."""
import argparse, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from readme import processed_notebook

CONF = '''
import sys; sys.path.insert(0, {tools!r})  # for the heading slugs of tools/docs.py
project = {title!r}
author = {author!r}
copyright = {copyright!r}
extensions = ['myst_nb']
nb_execution_mode = 'off'
myst_heading_anchors = 6
myst_heading_slug_func = 'docs.quarto_slug'
nb_render_markdown_format = 'myst'  # markdown outputs (e.g. a bundle's summary table) with tables, as in the notebook
html_theme = 'furo'  # navigation with sections, search in the sidebar, mobile layout, dark mode
html_title = {title!r}
html_theme_options = dict(navigation_with_keys=True, top_of_page_buttons=[])
html_css_files = ['styles.css', 'site.css']
html_static_path = ['_static']
html_extra_path = ['_extra']  # files served as they are, at the site's root: the manifest's JSON Schema
exclude_patterns = ['_build']
'''

# Additions to the furo theme: nbdev's "source" links float right, as in nbdev's Quarto site; wide outputs scroll.
SITE_CSS = '''
a.sourcelink { float: right; font-size: smaller; }
article img { max-width: 100%; height: auto; }
div.cell_output { overflow-x: auto; }
article pre { white-space: pre-wrap; overflow-wrap: anywhere; }  /* long signatures wrap instead of hiding */
div.cell_output div.output { overflow-x: auto; }  /* wide DataFrames and benchmark tables scroll */
table.dataframe { border-collapse: collapse; border: 0; font-size: 0.85em; }
table.dataframe th, table.dataframe td { border: 1px solid var(--color-background-border); padding: 0.2em 0.6em; }
'''

def quarto_slug(title:str)->str:
    "The anchor of a heading as Quarto (pandoc) makes it and nbdev's links expect: `DeviceList.names` -> `devicelist.names`."
    return re.sub(r'\s+', '-', re.sub(r'[^\w\s.-]', '', title.strip().lower()))

_re_fence = re.compile(r'^(```|~~~).*?^\1\s*$', re.M | re.S)
_re_heading = re.compile(r'^#{1,6}\s+(.+?)\s*#*\s*$', re.M)
_re_link = re.compile(r'\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)')
_re_srclink = re.compile(r'\[source\]\((\S+?)\)\{target="_blank"[^}]*\}')
# Files the site serves as they are, at its root (Sphinx's html_extra_path), and where they come from. A link to one in a
# notebook's markdown (`[manifest.schema.json](manifest.schema.json)`) becomes a plain link to it, from any page.
EXTRA_FILES = {'manifest.schema.json': ROOT/'xdeploy_nb'/'manifest.schema.json'}

def _outside_fences(md:str, f)->str:
    "`md` with `f` applied to the text outside fenced code blocks; inside them, markdown links become their text."
    parts,last = [],0
    for m in _re_fence.finditer(md):
        parts += [f(md[last:m.start()]), _re_link.sub(lambda l: l.group(1).replace('`', ''), m.group(0))]
        last = m.end()
    return ''.join(parts + [f(md[last:])])

def _slugs(md:str)->set:
    "The anchors the headings of markdown `md` get (see `quarto_slug`)."
    text = lambda h: _re_link.sub(r'\1', h).replace('`', '').replace('*', '')
    return {quarto_slug(text(h)) for h in _re_heading.findall(_re_fence.sub('', md))}


def _sections()->list:
    """`(section, notebooks)` in the order of nbs/sidebar.yml (which nbdev writes): the notebooks of nbs/ itself under
    section `None`, then one section per sub-folder (e.g. 'tutorials'), notebooks as paths relative to nbs/."""
    import yaml
    side = yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents']
    flat = lambda xs: [p for x in xs for p in (flat(x['contents']) if isinstance(x, dict) else [x])]
    return [(None, [x for x in side if not isinstance(x, dict)])] + [(x['section'], flat(x['contents'])) for x in side if isinstance(x, dict)]

def _pages()->list:
    "The notebooks of the site, in the order of nbs/sidebar.yml, as paths relative to nbs/."
    return [p for _,ps in _sections() for p in ps]

def _page_name(rel:str)->str:
    "The page a notebook becomes, as nbdev's links expect: its Quarto `output-file`, else its name less the number prefix."
    from nbdev.doclinks import _nbpath2html
    if rel == 'index.ipynb': return 'index'
    out = _frontmatter(ROOT/'nbs'/rel).get('output-file')
    return str(Path(rel).parent/Path(out).stem) if out else str(_nbpath2html(Path(rel)).with_suffix(''))

def _frontmatter(path:Path)->dict:
    "The Quarto front matter of the notebook at `path` (a raw `---` cell or nbdev's markdown form)."
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import FrontmatterProc
    nb = read_nb(path)
    NBProcessor(path, procs=[FrontmatterProc], nb=nb).process()
    return getattr(nb, 'frontmatter_', None) or {}

def _show_doc_md(c)->str:
    "The markdown a `show_doc` cell shows, if `c` is one whose input is hidden (as nbdev's processing leaves them)."
    if c.cell_type != 'code' or not c.source.startswith('show_doc(') or 'remove-input' not in c.metadata.get('tags', []): return None
    mds = [o['data']['text/markdown'] for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
    return '\n\n'.join(mds) if mds else None

def _constants(path:Path, shown:set)->list:
    """`(cell id, entry)` for each name of the module's `__all__` that an exported cell of the notebook at `path` assigns
    and that has no `show_doc` in `shown` (nbdev documents functions and classes only): its heading and its source."""
    import ast
    from execnb.nbio import read_nb
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    nb = read_nb(path)
    NBProcessor(path, procs=[], nb=nb).process()
    mod = next((c.directives_['default_exp'][0] for c in nb.cells if 'default_exp' in c.directives_), None)
    lib = get_config().lib_path/(mod.replace('.', '/') + '.py') if mod else None
    if not lib or not lib.exists(): return []
    all_ = next((ast.literal_eval(n.value) for n in ast.parse(lib.read_text()).body if isinstance(n, ast.Assign)
                 and any(getattr(t, 'id', None) == '__all__' for t in n.targets)), [])
    entries = []
    for c in nb.cells:
        if c.cell_type != 'code' or not c.directives_.keys() & {'export', 'exports'}: continue
        lines = c.source.splitlines()
        for node in ast.parse(c.source).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            names = [n.id for t in targets for n in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(n, ast.Name)]
            code = '\n'.join(lines[node.lineno-1:node.end_lineno]) if names else ''
            if code.count('\n') > 14: code = '\n'.join(code.splitlines()[:14] + ['    ...'])
            for n in names:
                if n in all_ and n not in shown: entries.append((c.get('id'), f"### {n}\n\n```python\n{code}\n```"))
    return entries

def _links(md:str, site_url:str, pages:dict, this:str, sources:dict=None)->str:
    """Make nbdev's links to the published site (`site_url` + `page.html#anchor`), relative links to pages
    (`page.html`) and links to source notebooks (`02_tabular.ipynb`, as Quarto resolves them) links within this
    site, to the source of the page (so Sphinx checks them), from the source folder's root (`/tutorials/tabular.ipynb`)
    so that they work from pages in sub-folders too. `sources` maps notebooks (relative to nbs/) to page names. A link
    to an anchor that no page has (a private name without docs) becomes its text, as do the `{target=...}` attributes
    of "source" links that only Quarto understands."""
    import posixpath
    md = _re_srclink.sub(r'<a class="sourcelink" href="\1" target="_blank">source</a>', md)
    here = posixpath.dirname(this)
    def fix(m):
        text,url = m.groups()
        rel = url[len(site_url):] if url.startswith(site_url) else url
        page,_,anchor = rel.partition('#')
        if page.lstrip('/') in EXTRA_FILES and '://' not in url:  # served as is: a plain link, relative to this page
            href = posixpath.relpath(page.lstrip('/'), here or '.')
            return f'<a href="{href}">{text}</a>'
        if url.startswith(site_url) or ('://' not in page and page.endswith(('.html', '.ipynb'))):
            if not url.startswith(site_url) and page: page = posixpath.normpath(posixpath.join(here, page))
            if page.endswith('.ipynb'): name = (sources or {}).get(page)
            else: name = page.removesuffix('.html') or this
            if name not in pages or (anchor and anchor not in pages[name]): return text
            return f"[{text}](/{name}.ipynb{'#'+anchor if anchor else ''})"
        return m.group(0)
    return _outside_fences(md, lambda t: _re_link.sub(fix, t))

def build(out:Path, src:Path=None)->Path:
    "Build the site into `out`, from Sphinx sources written to `src` (default `_docs_src/`); return its index.html."
    import nbformat
    from execnb.nbio import read_nb
    from nbdev.config import get_config
    cfg = get_config()
    site_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/') + '/'
    src = Path(src or ROOT/'_docs_src')
    shutil.rmtree(src, ignore_errors=True); (src/'_static').mkdir(parents=True)
    shutil.copy(ROOT/'nbs'/'styles.css', src/'_static'/'styles.css')
    (src/'_static'/'site.css').write_text(SITE_CSS)
    (src/'_extra').mkdir()
    for name,f in EXTRA_FILES.items(): shutil.copy(f, src/'_extra'/name)
    nbs,sources = {},{rel: _page_name(rel) for rel in _pages()}
    for rel in _pages():
        nb = processed_notebook(ROOT/'nbs'/rel)
        nb.metadata['language_info']['pygments_lexer'] = 'ipython3'  # IPython's lexer, which knows `!cmd` and `%%magic` lines
        shown = {m.group(1) for c in nb.cells if c.cell_type == 'code' and (m := re.match(r'show_doc\((\w+)\)', c.source))}
        order = {c.get('id'): i for i,c in enumerate(read_nb(ROOT/'nbs'/rel).cells)}
        for cid,entry in reversed(_constants(ROOT/'nbs'/rel, shown)):  # each before the first later cell of the notebook
            at = next((i for i,c in enumerate(nb.cells) if order.get(c.get('id'), -1) > order[cid]), len(nb.cells))
            nb.cells.insert(at, nbformat.v4.new_markdown_cell(entry, metadata={'api_entry': True}))
        cells,level = [],1
        for c in nb.cells:  # show_doc outputs as markdown cells: their headings become sections, anchors and search entries
            md = c.source if c.metadata.get('api_entry') else _show_doc_md(c)
            if md is not None:
                md = re.sub(r'^\s*---\s*\n', '', md)  # Quarto's rule above each entry; the theme separates sections itself
                levels = [len(h) for h in re.findall(r'^(#+)\s', _re_fence.sub('', md), re.M)]
                if levels and (shift := min(levels) - (level+1)) > 0:  # an entry just below a page title: one level down, not two
                    md = _outside_fences(md, lambda t: re.sub(r'^(#+)(?=\s)', lambda m: m.group(1)[shift:], t, flags=re.M))
                c = nbformat.v4.new_markdown_cell(md, id=c.get('id') or f'api-{len(cells)}')
            elif c.cell_type == 'markdown':
                levels = [len(h) for h in re.findall(r'^(#+)\s', _re_fence.sub('', c.source), re.M)]
                if levels: level = levels[-1]
            cells.append(c)
        nb.cells = cells
        nbs[_page_name(rel)] = nb
    mds = lambda nb: [c.source for c in nb.cells if c.cell_type == 'markdown'] + [
        o['data']['text/markdown'] for c in nb.cells for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
    anchors = {name: set().union(*map(_slugs, mds(nb))) for name,nb in nbs.items()}
    for name,nb in nbs.items():
        for c in nb.cells:  # nbdev links symbols to the published site: make them links within this one
            if c.cell_type == 'markdown': c.source = _links(c.source, site_url, anchors, name, sources)
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = _links(md, site_url, anchors, name, sources)
        if name == 'index':  # the navigation: nbdev's sidebar sections (tutorials first), then the modules
            secs = _sections()
            for i,(sec,rels) in enumerate(secs[1:] + secs[:1]):
                names = [sources[r] for r in rels if sources[r] != 'index']
                caption = sec.replace('_', ' ').capitalize() if sec else 'API reference'
                toc = f'```{{toctree}}\n:hidden:\n:maxdepth: 2\n:caption: {caption}\n\n' + '\n'.join(names) + '\n```'
                nb.cells.append(nbformat.v4.new_markdown_cell(toc, id=f'toctree-{i}'))
        (src/name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, src/f'{name}.ipynb')
    (src/'conf.py').write_text(CONF.format(tools=str(ROOT/'tools'), title=cfg.title, author=cfg.author,
                                           copyright=cfg.copyright, description=cfg.description))
    # built inside `src`, as myst-nb writes its output files beside the html folder (`jupyter_execute/`)
    html = src/'_build'/'html'
    subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-W', '--keep-going', '-d', str(src/'_build'/'doctrees'),
                    str(src), str(html)], check=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(html, out)
    return out/'index.html'

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(ROOT/'_site'), help="folder to build the site into")
    p.add_argument('--src', default=str(ROOT/'_docs_src'), help="folder for the Sphinx sources (processed notebooks, conf.py)")
    args = p.parse_args()
    os.chdir(ROOT)  # nbdev finds settings.ini from the working directory
    print(f"built {build(Path(args.out).resolve(), Path(args.src).resolve())}")

if __name__ == '__main__': main()
