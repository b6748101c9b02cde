"""The published JSON Schema (`xdeploy_nb/manifest.schema.json`) says what the runtime checks: it is `json_schema()`, every
bundle the exporter writes validates against it (Draft 2020-12, with `jsonschema`), and the malformed manifests that
`validate_manifest` refuses are refused by the JSON Schema too.

The bundles are real: tiny fastai Learners trained briefly on generated data (vision single-label with every variant and
TorchScript, and with item and batch steps of every op; multi-label grayscale; tabular classification and regression)."""
import copy, json
import pytest
import xdeploy_nb.train  # imports fastai quietly, before the names below
from fastai.vision.all import (DataBlock, ImageBlock, MultiCategoryBlock, CategoryBlock, GrandparentSplitter, Resize, CropPad,
                               get_image_files, parent_label, Normalize, imagenet_stats, aug_transforms, accuracy_multi, PILImageBW)
from jsonschema import Draft202012Validator
import xdeploy_nb.runtime  # registers the kinds, tasks, formats and variants that the schema's enums list
from xdeploy_nb.core import ManifestError, json_schema, schema_file, validate_manifest, read_manifest
from xdeploy_nb.data import make_image_folder, load_penguins, PENGUIN_CATS, PENGUIN_CONTS
from xdeploy_nb.train import image_learner, tabular_dls, tabular_learner
from xdeploy_nb.export import export_bundle
from xdeploy_nb.preprocess import ITEM_OPS, BATCH_OPS

SMALL = dict(classes=3, n_train=12, n_valid=6)
ALL_VARIANTS = ('fp16', 'int8-dynamic', 'int8-static', 'optimized')

def _fit(learn, epochs=1):
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2)
    return learn

@pytest.fixture(scope='module')
def validator():
    schema = json.loads(schema_file().read_text(encoding='utf-8'))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)

@pytest.fixture(scope='module')
def manifests(tmp_path_factory):
    "The manifests of real bundles, by name."
    tmp = tmp_path_factory.mktemp('schema')
    images = make_image_folder(tmp/'shapes', size=48, **SMALL)
    # every item op and batch op: crop_pad, resize (pad), int_to_float, grid_resample, center_crop_ratio, normalize
    single = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label, splitter=GrandparentSplitter(),
                       item_tfms=[CropPad(44), Resize(32, method='pad', pad_mode='zeros')],
                       batch_tfms=[*aug_transforms(size=28, min_scale=0.75), Normalize.from_stats(*imagenet_stats)]
                      ).dataloaders(images, bs=6, num_workers=0, device='cpu')
    export_bundle(_fit(image_learner(single)), tmp/'single', formats=('onnx', 'torchscript'), variants=ALL_VARIANTS)
    get_y = lambda f: [parent_label(f), 'even' if int(f.stem[-1]) % 2 == 0 else 'odd']
    multi = DataBlock(blocks=(ImageBlock(PILImageBW), MultiCategoryBlock), get_items=get_image_files, get_y=get_y,
                      splitter=GrandparentSplitter(), item_tfms=Resize(24, method='crop')).dataloaders(images, bs=6, num_workers=0, device='cpu')
    export_bundle(_fit(image_learner(multi, metrics=accuracy_multi)), tmp/'multi', formats=('onnx',))
    for target in ('species', 'body_mass_g'):
        cats = PENGUIN_CATS + (['species'] if target == 'body_mass_g' else [])
        learn = _fit(tabular_learner(tabular_dls(load_penguins(), target, cats, [c for c in PENGUIN_CONTS if c != target])))
        export_bundle(learn, tmp/target, formats=('onnx',))
    return {name: read_manifest(tmp/name) for name in ('single', 'multi', 'species', 'body_mass_g')}

def test_shipped_file_is_generated(validator):
    "The shipped file is `json_schema()` of the registries the runtime fills, and a valid Draft 2020-12 schema."
    assert validator.schema == json_schema()
    assert validator.schema['$schema'] == 'https://json-schema.org/draft/2020-12/schema'
    assert validator.schema['properties']['task']['enum'] == ['multi_label', 'regression', 'segmentation', 'single_label']

@pytest.mark.parametrize('name', ['single', 'multi', 'species', 'body_mass_g'])
def test_exported_bundles_validate(manifests, validator, name):
    m = manifests[name]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(m)]
    assert not errors, '\n'.join(errors)
    assert validate_manifest(m) is m

def test_bundles_cover_the_schema(manifests):
    "The bundles above hold every format and variant this test means, every step op, each task and kind."
    single = manifests['single']
    assert [a['format'] for a in single['artifacts']][:2] == ['onnx', 'torchscript']
    assert sorted([a.get('variant', 'fp32') for a in single['artifacts']] + [r['variant'] for r in single.get('rejected', [])]) == \
        sorted(('fp32', 'fp32') + ALL_VARIANTS)
    spec = single['preprocessing']['spec']
    assert {s['op'] for s in spec['item_tfms']} == set(ITEM_OPS) and {s['op'] for s in spec['batch_tfms']} == set(BATCH_OPS)
    assert {m['task'] for m in manifests.values()} == {'single_label', 'multi_label', 'regression'}
    assert manifests['multi']['preprocessing']['spec']['input']['mode'] == 'L'
    assert manifests['species']['preprocessing']['spec']['fill_missing'], "penguins have missing values"

def _set(path, value):
    "A change that sets the field at `path` (keys and indexes) to `value`."
    def change(m):
        *head,last = path
        for k in head: m = m[k]
        m[last] = value
    return change

def _pop(path):
    def change(m):
        *head,last = path
        for k in head: m = m[k]
        del m[last]
    return change

SPEC,STEP0,RESIZE = ('preprocessing', 'spec'),('preprocessing', 'spec', 'item_tfms', 0),('preprocessing', 'spec', 'item_tfms', 1)  # crop_pad, resize
MUTATIONS = {  # name: (bundle, change, what the runtime's message says)
    'not a bundle manifest':       ('single', _set(('schema',), 'other.schema'), "not an xdeploy_nb bundle manifest"),
    'newer schema_version':        ('single', _set(('schema_version',), 2), "Upgrade xdeploy_nb"),
    'schema_version 0':            ('single', _set(('schema_version',), 0), "schema_version is 0"),
    'wrong enum: task':            ('single', _set(('task',), 'ranking'), "task is 'ranking'"),
    'wrong enum: activation':      ('single', _set(('outputs', 0, 'activation'), 'relu'), "activation is 'relu'"),
    'wrong enum: format':          ('single', _set(('artifacts', 0, 'format'), 'tflite'), "format is 'tflite'"),
    'wrong enum: variant':         ('single', _set(('artifacts', 0, 'variant'), 'int4'), "variant is 'int4'"),
    'wrong enum: kind':            ('single', _set(('preprocessing', 'kind'), 'audio'), "kind is 'audio'"),
    'wrong enum: dtype':           ('single', _set(('inputs', 0, 'dtype'), 'float64'), "dtype is 'float64'"),
    'missing field: dtype':        ('single', _pop(('inputs', 0, 'dtype')), "inputs[0] has no 'dtype'"),
    'missing field: sha256':       ('single', _pop(('artifacts', 0, 'sha256')), "artifacts[0] has no 'sha256'"),
    'missing field: provenance':   ('single', _pop(('provenance',)), "has no 'provenance'"),
    'missing field: spec':         ('single', _pop(SPEC), "preprocessing has no 'spec'"),
    'missing step parameter':      ('single', _pop(STEP0 + ('pad_mode',)), "item_tfms[0] has no 'pad_mode'"),
    'missing tabular x_cat':       ('species', _pop(SPEC + ('x_cat',)), "spec has no 'x_cat'"),
    'wrong type: shape':           ('single', _set(('outputs', 0, 'shape'), 'batch'), "shape should be a list"),
    'wrong type: size bool':       ('single', _set(('artifacts', 0, 'size'), True), "size is True, which is not int"),
    'wrong type: size string':     ('single', _set(('artifacts', 0, 'size'), '12'), "size is '12'"),
    'wrong type: labels':          ('single', _set(('labels',), [1, 2, 3]), "labels[0] is 1"),
    'wrong type: categories':      ('species', _set(SPEC + ('categories',), ['island']), "categories should be an object"),
    'wrong type: fill value':      ('species', _set(SPEC + ('fill_missing', 0, 'value'), 'median'), "value is 'median'"),
    'negative size':               ('single', _set(('artifacts', 0, 'size'), -1), "size is -1, not >= 0"),
    'unknown item step op':        ('single', _set(STEP0 + ('op',), 'rotate'), "item_tfms[0].op is 'rotate'"),
    'unknown batch step op':       ('single', lambda m: m['preprocessing']['spec']['batch_tfms'].append(dict(op='sharpen')), "op is 'sharpen'"),
    'unknown listed step op':      ('single', _set(('preprocessing', 'steps', 1, 'op'), 'rotate'), "steps[1].op is 'rotate'"),
    'unknown step parameter':      ('single', _set(STEP0 + ('filter',), 'BOX'), "unknown field 'filter'"),
    'bad step size length':        ('single', _set(STEP0 + ('size',), [32]), "not a list of at least 2"),
    'bad step size value':         ('single', _set(STEP0 + ('size',), [0, 32]), "size[0] is 0, not >= 1"),
    'bad resize method':           ('single', _set(RESIZE + ('method',), 'stretch'), "method is 'stretch'"),
    'bad resample filter':         ('single', _set(RESIZE + ('resample',), 'CUBIC'), "resample is 'CUBIC'"),
    'bad int_to_float div':        ('single', lambda m: m['preprocessing']['spec']['batch_tfms'][0].update(div=0), "div is 0, not > 0"),
    'bad grid_resample mode':      ('single', lambda m: next(s for s in m['preprocessing']['spec']['batch_tfms'] if s['op'] == 'grid_resample').update(mode='area'),
                                    "mode is 'area'"),
    'newer spec version':          ('single', _set(SPEC + ('version',), 2), "Upgrade xdeploy_nb"),
    'unknown spec field':          ('species', _set(SPEC + ('scaler',), 'minmax'), "unknown field 'scaler'"),
    'tabular step with a parameter': ('species', _set(('preprocessing', 'steps', 0, 'value'), 1), "unknown field 'value'"),
    'file name with a path':       ('single', _set(('artifacts', 0, 'file'), '../model.onnx'), "not a plain file name"),
    'file name in a folder':       ('single', _set(('artifacts', 0, 'file'), 'models/model.onnx'), "not a plain file name"),
    'hidden file':                 ('single', _set(('artifacts', 0, 'file'), '.model.onnx'), "not a plain file name"),
    'sample file with a path':     ('single', _set(('sample', 'file'), '/etc/passwd'), "not a plain file name"),
    'sample file with a NUL':      ('single', _set(('sample', 'file'), 'model.onnx\x00'), "not a plain file name"),
    'file name with a newline':    ('single', _set(('artifacts', 0, 'file'), 'model\n.onnx'), "not a plain file name"),
    'negative shape size':         ('single', _set(('inputs', 0, 'shape', 1), -1), "shape[1] is -1, which is not int or str"),
    'fractional shape size':       ('single', _set(('inputs', 0, 'shape', 1), 1.5), "shape[1] is 1.5, which is not int or str"),
    'bad sha256: short':           ('single', _set(('artifacts', 0, 'sha256'), 'abc'), "not a sha256 hex digest"),
    'bad sha256: uppercase':       ('single', lambda m: m['artifacts'][0].update(sha256=m['artifacts'][0]['sha256'].upper()), "not a sha256 hex digest"),
    'bad sha256: trailing newline': ('single', lambda m: m['artifacts'][0].update(sha256=m['artifacts'][0]['sha256'] + '\n'), "not a sha256 hex digest"),
}

@pytest.mark.parametrize('name', list(MUTATIONS))
def test_malformed_manifests_are_refused_by_both(manifests, validator, name):
    bundle,change,says = MUTATIONS[name]
    bad = copy.deepcopy(manifests[bundle]); change(bad)
    with pytest.raises(ManifestError) as e: validate_manifest(bad)
    assert says in str(e.value), str(e.value)
    assert not validator.is_valid(bad), f"the JSON Schema accepts the manifest with {name}"

def test_unknown_fields_policy(manifests, validator):
    "Metadata is open (a reader ignores what it does not know); a step's parameters and the spec are closed."
    m = copy.deepcopy(manifests['single'])
    m['notes'] = 'trained on Tuesday'; m['artifacts'][0]['device_hints'] = ['cuda']; m['provenance']['host'] = 'ci'
    m['preprocessing']['delegate'] = 'nnapi'
    assert validate_manifest(m) is m and validator.is_valid(m)
    m['preprocessing']['spec']['input']['colorspace'] = 'srgb'
    with pytest.raises(ManifestError, match="unknown field 'colorspace'"): validate_manifest(m)
    assert not validator.is_valid(m)

def test_check_sync_fails_on_a_stale_schema_file(root, tmp_path):
    "tools/check_sync.py (through tools/schema.py --check) fails when the shipped schema is not what `json_schema()` says."
    import shutil, sys
    from conftest import run
    for name in ('settings.ini', 'nbs', 'xdeploy_nb', 'tools', 'README.md'):
        (shutil.copytree if (root/name).is_dir() else shutil.copy)(root/name, tmp_path/name)
    f = tmp_path/'xdeploy_nb'/'manifest.schema.json'
    f.write_text(f.read_text().replace('"fp16"', '"fp8"', 1))
    r = run(sys.executable, tmp_path/'tools'/'check_sync.py', cwd=tmp_path, check=False)
    assert r.returncode == 1 and 'manifest.schema.json is out of date' in r.stderr, r.stderr
    assert '-' in r.stdout and '"fp8"' in r.stdout
    run(sys.executable, tmp_path/'tools'/'schema.py', cwd=tmp_path)
    assert run(sys.executable, tmp_path/'tools'/'schema.py', '--check', cwd=tmp_path).returncode == 0
