"""Every public method of every exported class is documented on the site: its notebook shows it (`show_doc(Cls.meth)`)
or defines it with `@patch` in an export cell of its own, which nbdev documents like a function."""
import importlib, inspect, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _notebook_source()->str:
    return '\n'.join(''.join(c['source']) for nb in sorted((ROOT/'nbs').rglob('*.ipynb')) for c in json.loads(nb.read_text())['cells'])

def _modules()->list:
    return sorted(p.stem for p in (ROOT/'xdeploy_nb').glob('*.py') if not p.stem.startswith('_'))

def test_every_public_method_is_documented():
    src,missing = _notebook_source(),[]
    for mod in _modules():
        m = importlib.import_module(f'xdeploy_nb.{mod}')
        for name in getattr(m, '__all__', []):
            cls = getattr(m, name)
            if not inspect.isclass(cls) or cls.__module__ != m.__name__: continue
            for k,v in vars(cls).items():
                if k.startswith('_') or not (inspect.isfunction(v) or isinstance(v, property)): continue
                if f'show_doc({name}.{k}' in src or re.search(rf'@patch[^\n]*\ndef {k}\(self:\s*{name}\b', src): continue
                missing.append(f'{mod}.{name}.{k}')
    assert not missing, f"public methods without a show_doc in their notebook: {missing}"
