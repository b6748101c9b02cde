"""The package's import graph, read from the code (every `.py` under xdeploy_nb/, imports inside functions included):
no cycle, and no import from a lower layer into a higher one. The layers are CONTRIBUTING.md's ("The layers").

A module that is not in `LAYERS` fails the test: a new module says where it belongs. `import xdeploy_nb` (the bare
package, for `__version__`) is not an edge: Python runs the package's `__init__` before any of its modules anyway."""
import ast
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = 'xdeploy_nb'

# module (or subpackage: all its modules) -> layer; a module may import its own layer and the layers below
LAYERS = {
    'core': 0,                                                    # errors, hashing, atomic writes, the schema, the registries
    'accel': 1, 'preprocess': 1, 'artifact': 1,                   # devices and sessions; preprocessing; what exporters share
    'variants': 2, 'pregraph': 2, 'kinds': 2, 'tasks': 2, 'formats': 2,  # the entries (each registers itself)
    'builtins': 2,                                                # the one list of built-in entries; plug-ins
    'runtime': 3,                                                 # Predictor: reads the registries
    'verify': 4, 'pregraph_export': 4, 'export': 4, 'bench': 4, 'train': 4, 'data': 4, 'distributed': 4,  # train side
    'hosts': 5,                                                   # web, triton, ray: read bundles
    'widgets': 6, 'cli': 6,                                       # views
    '__init__': 7, '_modidx': 7,                                  # the package (imports builtins); nbdev's index
}

def module_name(f:Path, root:Path=ROOT)->str:
    "`xdeploy_nb/kinds/text.py` -> 'xdeploy_nb.kinds.text'; a package's `__init__.py` -> the package."
    parts = list(f.relative_to(root).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def layer(mod:str)->int:
    "The layer of the xdeploy_nb module `mod` (KeyError: not in `LAYERS`)."
    return LAYERS[(mod.split('.')[1:] or ['__init__'])[0]]  # a subpackage's modules: the subpackage's layer

def imports(f:Path, root:Path=ROOT)->list:
    "`(module imported, line, inside a function?)` for every import of an xdeploy_nb module in the file `f`."
    mod = module_name(f, root)
    pkg = mod if f.name == '__init__.py' else mod.rpartition('.')[0]
    found = []
    def visit(node, in_fn):
        in_fn = in_fn or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        names = []
        if isinstance(node, ast.Import): names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = '.'.join(pkg.split('.')[:len(pkg.split('.'))-node.level+1])
                base = f"{base}.{node.module}" if node.module else base
            else: base = node.module
            # `from .formats import ort` imports the module xdeploy_nb.formats.ort; `from .core import X` imports core
            subs = [f"{base}.{a.name}" for a in node.names if root.joinpath(*f"{base}.{a.name}".split('.')).with_suffix('.py').exists()
                    or root.joinpath(*f"{base}.{a.name}".split('.'), '__init__.py').exists()]
            names = subs if subs and len(subs) == len(node.names) else [base, *subs]
        found.extend((n, node.lineno, in_fn) for n in names if n.partition('.')[0] == PKG and n != PKG)
        for child in ast.iter_child_nodes(node): visit(child, in_fn)
    visit(ast.parse(f.read_text()), False)
    return found

def graph(root:Path=ROOT)->dict:
    "module -> {module imported: (line, inside a function?)}, over every .py of the package under `root`."
    return {module_name(f, root): {m: (line, fn) for m,line,fn in imports(f, root)}
            for f in sorted((root/PKG).rglob('*.py')) if '__pycache__' not in f.parts}

def find_cycle(g:dict)->list:
    "One cycle of the graph `g` (module -> modules it imports) as a list of modules, or [] if there is none."
    state,stack = {},[]
    def dfs(n):
        state[n] = 'open'; stack.append(n)
        for m in g.get(n, ()):
            if state.get(m) == 'open': return stack[stack.index(m):] + [m]
            if m not in state and (c := dfs(m)): return c
        state[n] = 'done'; stack.pop()
        return []
    for n in sorted(g):
        if n not in state and (c := dfs(n)): return c
    return []

def upward(g:dict)->list:
    "`'a -> b (line n)'` for each import from a lower layer into a higher one."
    return [f"{a} (layer {layer(a)}) -> {b} (layer {layer(b)}), line {line}{' (in a function)' if fn else ''}"
            for a,deps in g.items() for b,(line,fn) in deps.items() if layer(b) > layer(a)]

def private_imports(root:Path=ROOT)->list:
    "`'a imports b._x (line n)'` for each private name (`_x`) a module of the package takes from another one."
    found = []
    for f in sorted((root/PKG).rglob('*.py')):
        if '__pycache__' in f.parts or f.name == '_modidx.py': continue
        mod = module_name(f, root)
        pkg = mod if f.name == '__init__.py' else mod.rpartition('.')[0]
        tree,aliases = ast.parse(f.read_text()),{}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level: base = '.'.join(pkg.split('.')[:len(pkg.split('.'))-node.level+1] + ([base] if base else []))
                if base.partition('.')[0] != PKG: continue
                found += [f"{mod} imports {base}.{a.name} (line {node.lineno})" for a in node.names if a.name.startswith('_')]
                aliases.update({a.asname or a.name: f"{base}.{a.name}" for a in node.names if not a.name.startswith('_')})
            elif isinstance(node, ast.Import):
                aliases.update({a.asname: a.name for a in node.names if a.asname and a.name.partition('.')[0] == PKG})
        for node in ast.walk(tree):  # `m._x` where `m` is a module of the package imported under a name
            if (isinstance(node, ast.Attribute) and node.attr.startswith('_') and not node.attr.startswith('__')
                and isinstance(node.value, ast.Name) and node.value.id in aliases
                and (root/Path(*aliases[node.value.id].split('.'))).with_suffix('.py').exists()):
                found.append(f"{mod} imports {aliases[node.value.id]}.{node.attr} (line {node.lineno})")
    return found

def test_every_module_has_a_layer():
    missing = [m for m in graph() if (m.split('.')[1:] or ['__init__'])[0] not in LAYERS]
    assert not missing, f"{missing} have no layer: add them to LAYERS here and to CONTRIBUTING.md's layers"

def test_no_cycle():
    g = graph()
    assert 'xdeploy_nb.runtime' in g and 'xdeploy_nb.kinds.text' in g  # the reader sees the package and its subpackages
    assert not (c := find_cycle(g)), f"import cycle: {' -> '.join(c)}"

def test_no_upward_import():
    assert not (up := upward(graph())), "imports from a lower layer into a higher one:\n" + '\n'.join(up)

def test_core_and_runtime_import_no_entry():
    "core and the runtime import no kind, task or format module: the package's built-ins list does."
    g = graph()
    for mod in ('xdeploy_nb.core', 'xdeploy_nb.runtime'):
        entries = [m for m in g[mod] if m.split('.')[1] in ('kinds', 'tasks', 'formats', 'builtins')]
        assert not entries, f"{mod} imports {entries}"

def test_function_level_imports_of_the_package_point_down():
    "Imports of xdeploy_nb modules inside functions are only downward ones (lazy because the module imports torch)."
    g = graph()
    lazy = sorted(f"{a} -> {b}" for a,deps in g.items() for b,(line,fn) in deps.items() if fn)
    assert all(layer(b) <= layer(a) for a,deps in g.items() for b,(line,fn) in deps.items() if fn), lazy

def test_no_private_name_crosses_modules():
    "No module takes a private name (`_x`) of another: what is shared is public, in the lower layer that holds it."
    assert not (bad := private_imports()), "private names imported from other modules:\n" + '\n'.join(bad)

def test_the_checks_can_fail(tmp_path):
    "A package with a cycle and an upward import, written here, is caught by the same readers."
    (pkg := tmp_path/PKG).mkdir()
    (pkg/'__init__.py').write_text('')
    (pkg/'core.py').write_text("def f():\n    from xdeploy_nb.runtime import Predictor\n")
    (pkg/'runtime.py').write_text("from .core import f\n")
    g = graph(tmp_path)
    assert g['xdeploy_nb.core'] == {'xdeploy_nb.runtime': (2, True)}
    assert find_cycle(g) == ['xdeploy_nb.core', 'xdeploy_nb.runtime', 'xdeploy_nb.core']
    assert upward(g) == ["xdeploy_nb.core (layer 0) -> xdeploy_nb.runtime (layer 3), line 2 (in a function)"]
    with pytest.raises(KeyError): layer('xdeploy_nb.nowhere')
    (pkg/'kinds').mkdir()
    (pkg/'kinds'/'image.py').write_text("from ..core import _shape, f\nimport xdeploy_nb.runtime as rt\nrt._artifact\n")
    assert private_imports(tmp_path) == ["xdeploy_nb.kinds.image imports xdeploy_nb.core._shape (line 1)",
                                         "xdeploy_nb.kinds.image imports xdeploy_nb.runtime._artifact (line 3)"]

if __name__ == '__main__':
    g = graph()
    print(f"{len(g)} modules; cycle: {find_cycle(g) or 'none'}; upward imports: {upward(g) or 'none'}; "
          f"private names crossing modules: {private_imports() or 'none'}")
    lazy = [(a, b) for a,deps in g.items() for b,(line,fn) in deps.items() if fn]
    print(f"{len(lazy)} imports of xdeploy_nb modules inside functions:", *(f"  {a} -> {b}" for a,b in lazy), sep='\n')
