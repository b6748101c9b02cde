"""`xdeploy_nb.preprocess` against fastai's own validation pipeline, exhaustively.

The item stage (`prepare_image`) must give fastai's uint8 image pixel for pixel. The batch steps of a spec are
replayed with the torch ops the exported graph uses (`graph_batch`), and must give fastai's float batch bit for
bit on the CPU: that checks that the spec records everything the graph needs."""
import json, sys, warnings
import numpy as np
import pytest
from PIL import Image

from conftest import run, import_blocker
from xdeploy_nb.train import image_dls, tiny_cnn  # imports fastai, keeping its import-time torch.jit warnings out
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.preprocess import *
from xdeploy_nb.preprocess import PreprocessError
import torch
from fastai.vision.all import (PILImage, PILImageBW, TensorImage, DataBlock, ImageBlock, CategoryBlock, get_image_files,
    parent_label, GrandparentSplitter, Transform, RandTransform, Resize, RandomResizedCrop, CropPad, RandomCrop, RatioResize,
    Normalize, imagenet_stats, aug_transforms, Flip, Rotate, Zoom, Warp, Dihedral, RandomResizedCropGPU, Hue,
    vision_learner, resnet18, model_meta, Learner, load_learner)

torch.set_num_threads(1)  # the test machine has 2 cores, shared

SIZES = [64, (48, 80), (80, 48)]
METHODS = [('crop', 'reflection'), ('squish', 'reflection'), ('pad', 'zeros'), ('pad', 'border'), ('pad', 'reflection')]
SRC_HW = [(37, 91), (91, 37), (120, 60), (64, 64), (48, 80), (12, 91), (200, 150), (3, 5)]

# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope='session')
def data(tmp_path_factory):
    "A tiny shapes dataset (for the DataLoaders) and source images of various sizes and PIL modes."
    root = tmp_path_factory.mktemp('pre')
    shapes = make_image_folder(root/'shapes', classes=2, n_train=2, n_valid=2, size=(60, 120))
    rng = np.random.default_rng(0)
    src = root/'src'; src.mkdir()
    rgb = []
    for h,w in SRC_HW:
        f = src/f'rgb_{h}x{w}.png'; Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(f); rgb.append(f)
    return dict(shapes=shapes, rgb=rgb, modes=_mode_files(src, rng), root=root)

def _mode_files(src, rng)->dict:
    "One 45x70 file per interesting PIL mode/format."
    base = Image.fromarray(rng.integers(0, 256, (45, 70, 3), dtype=np.uint8))
    alpha = Image.fromarray(rng.integers(0, 256, (45, 70), dtype=np.uint8))
    imgs = {'RGBA.png': base.copy(), 'P.png': base.quantize(16), 'L.png': base.convert('L'), '1.png': base.convert('1'),
            'I16.png': Image.fromarray(rng.integers(0, 65536, (45, 70), dtype=np.uint16)),
            'I16_small.png': Image.fromarray(rng.integers(0, 256, (45, 70), dtype=np.uint16)),
            'CMYK.jpg': base.convert('CMYK'), 'CMYK.tif': base.convert('CMYK'), 'RGB.jpg': base}
    imgs['RGBA.png'].putalpha(alpha)
    imgs['LA.png'] = base.convert('L'); imgs['LA.png'].putalpha(alpha)
    files = {}
    for name,img in imgs.items(): img.save(src/name); files[name] = src/name
    ptrans = base.quantize(16); ptrans.info['transparency'] = 3; ptrans.save(src/'Ptrans.png'); files['Ptrans.png'] = src/'Ptrans.png'
    exif = Image.Exif(); exif[0x0112] = 6  # orientation: rotate 90 degrees
    base.save(src/'exif6.jpg', exif=exif); files['exif6.jpg'] = src/'exif6.jpg'
    return files

def _id(o)->str:
    "Short test id for a transform or a list of transforms."
    if isinstance(o, (list, tuple)): return '+'.join(_id(t) for t in o)
    size = getattr(o, 'size', None)
    return type(o).__name__ + ('' if size is None else f'-{size}' if isinstance(size, int) else '-' + 'x'.join(map(str, size)))

def make_dls(data, cls=PILImage, item_tfms=None, batch_tfms=None, bs=2):
    "Image classification DataLoaders on the shapes dataset, on the CPU."
    dblock = DataBlock(blocks=(ImageBlock(cls), CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       splitter=GrandparentSplitter(train_name='train', valid_name='valid'),
                       item_tfms=item_tfms, batch_tfms=batch_tfms)
    return dblock.dataloaders(data['shapes'], bs=bs, num_workers=0, device='cpu')

def fastai_uint8(dls, items)->list:
    "What fastai's validation pipeline holds for `items` just before the batch stage, as HWC uint8 arrays."
    dl = dls.test_dl(items)
    dl.before_iter()  # sets split_idx=1 on the pipelines, as iterating does
    res = [np.asarray(dl.do_item(i)[0]).transpose(1, 2, 0) for i in range(len(items))]
    assert all(r.dtype == np.uint8 for r in res)
    return res

def fastai_batch(dls, items)->np.ndarray:
    "The float batch fastai feeds the model for `items`."
    return dls.test_dl(items, bs=len(items)).one_batch()[0].cpu().numpy()

# The batch steps with the torch ops the exported graph uses, from the spec's parameters only.
from xdeploy_nb.export import BATCH_TORCH_OPS as TORCH_OPS

def graph_batch(items, spec)->np.ndarray:
    "The batch the exported graph computes: `prepare_image` for each item, then the batch steps with torch ops."
    assert set(TORCH_OPS) == set(BATCH_OPS)
    x = torch.from_numpy(np.stack([prepare_image(o, spec) for o in items])).permute(0, 3, 1, 2)
    for step in spec['batch_tfms']:
        assert set(step) == {'op', *BATCH_OPS[step['op']]}, step
        x = TORCH_OPS[step['op']](x, **{k:v for k,v in step.items() if k != 'op'})
    return x.numpy()

def assert_same_uint8(dls, items, spec=None):
    "`prepare_image` gives fastai's uint8 image for every item."
    spec = spec or image_spec(dls)
    for item,ref in zip(items, fastai_uint8(dls, items), strict=True):
        ours = prepare_image(item, spec)
        assert ours.dtype == np.uint8 and ours.shape == ref.shape, (item, ours.shape, ref.shape)
        assert np.array_equal(ours, ref), item

def assert_same_batch(dls, items, spec=None):
    "The item stage plus the batch steps replayed with torch give fastai's float batch, bit for bit."
    spec = json.loads(json.dumps(spec or image_spec(dls)))
    ref,ours = fastai_batch(dls, items), graph_batch(items, spec)
    assert ours.dtype == np.float32 and ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.array_equal(ours, ref), float(np.abs(ours - ref).max())

def assert_raises(f, *contains):
    "`f()` raises a `PreprocessError` whose message contains each of `contains` and a fix."
    with pytest.raises(PreprocessError) as e: f()
    msg = str(e.value)
    assert '\nFix: ' in msg and all(c in msg for c in contains), msg

# ---------------------------------------------------------------- Resize: sizes x methods x pad modes x RGB/BW

@pytest.mark.parametrize('cls', [PILImage, PILImageBW], ids=['RGB', 'BW'])
@pytest.mark.parametrize('method,pad_mode', METHODS, ids=[f'{m}-{p}' for m,p in METHODS])
@pytest.mark.parametrize('size', SIZES, ids=str)
def test_resize_exact(data, size, method, pad_mode, cls):
    dls = make_dls(data, cls, item_tfms=Resize(size, method=method, pad_mode=pad_mode))
    spec = image_spec(dls)
    h,w = (size, size) if isinstance(size, int) else size
    assert spec['input'] == dict(cls=cls.__name__, mode='L' if cls is PILImageBW else 'RGB', item_getters=[])
    assert spec['item_tfms'] == [dict(op='resize', size=[h, w], method=method, pad_mode=pad_mode, resample='BILINEAR')]
    assert spec['batch_tfms'] == [dict(op='int_to_float', div=255.0, div_mask=1)]
    assert_same_uint8(dls, data['rgb'], spec)
    assert prepare_image(data['rgb'][0], spec).shape == (h, w, 1 if cls is PILImageBW else 3)

@pytest.mark.parametrize('resamples', [(Image.NEAREST, Image.NEAREST), (Image.BICUBIC, Image.NEAREST), (Image.LANCZOS, Image.BILINEAR)])
def test_resize_resamples(data, resamples):
    "`resamples[0]` is the filter for images (`resamples[1]` is only for `PILMask`)."
    dls = make_dls(data, item_tfms=Resize((48, 80), method='pad', pad_mode='zeros', resamples=resamples))
    spec = image_spec(dls)
    assert spec['item_tfms'][0]['resample'] == Image.Resampling(resamples[0]).name
    assert_same_uint8(dls, data['rgb'], spec)

def test_project_image_dls(data):
    "The project's own `image_dls` helper (RGB and grayscale), on test items and on the validation set itself."
    for mode in ('RGB', 'L'):
        for method in ('squish', 'crop', 'pad'):
            dls = image_dls(data['shapes'], size=(40, 56), method=method, mode=mode, bs=2)
            assert_same_uint8(dls, data['rgb'])
            spec,dl = image_spec(dls),dls.valid
            dl.before_iter()
            for i,f in enumerate(dl.dataset.items):
                assert np.array_equal(prepare_image(f, spec), np.asarray(dl.do_item(i)[0]).transpose(1, 2, 0))

# ---------------------------------------------------------------- other item transforms

@pytest.mark.parametrize('tfm', [RandomResizedCrop(64), RandomResizedCrop((48, 80), min_scale=0.3),
                                 RandomResizedCrop((80, 48), val_xtra=0.), RandomResizedCrop(40, resamples=(Image.BICUBIC, Image.NEAREST))],
                         ids=['rrc64', 'rrc48x80', 'rrc-noxtra', 'rrc-bicubic'])
def test_random_resized_crop_valid(data, tfm):
    "At validation RandomResizedCrop squishes to size+xtra, then center crops to size."
    dls = make_dls(data, item_tfms=tfm)
    spec = image_spec(dls)
    assert spec['item_tfms'][0]['method'] == 'squish' and len(spec['item_tfms']) == (2 if tfm.val_xtra else 1)
    assert_same_uint8(dls, data['rgb'], spec)

@pytest.mark.parametrize('tfms', [[CropPad(50)], [CropPad((48, 80), pad_mode='reflection')], [CropPad((80, 48), pad_mode='border')],
                                  [RandomCrop(30)], [CropPad(100), Resize(40, method='pad', pad_mode='zeros')],
                                  [Resize(100, method='squish'), RandomCrop((48, 80))]], ids=_id)
def test_crop_pad_and_random_crop(data, tfms):
    "`CropPad` (center, floor division) and `RandomCrop` (center crop at validation), alone or chained with `Resize`."
    assert_same_uint8(make_dls(data, item_tfms=tfms), data['rgb'])

# ---------------------------------------------------------------- opening: modes, input kinds, EXIF

@pytest.mark.parametrize('cls', [PILImage, PILImageBW], ids=['RGB', 'BW'])
@pytest.mark.parametrize('method,pad_mode', METHODS, ids=[f'{m}-{p}' for m,p in METHODS])
def test_file_modes(data, method, pad_mode, cls):
    "Files in any mode are opened with `Image.open` + `convert(mode)`, from a path, a str or bytes."
    dls = make_dls(data, cls, item_tfms=Resize((48, 80), method=method, pad_mode=pad_mode))
    files = list(data['modes'].values())
    assert {'RGBA', 'P', 'I;16', 'LA', 'CMYK', '1', 'L', 'RGB'} <= {Image.open(f).mode for f in files}
    assert_same_uint8(dls, files + [str(f) for f in files] + [f.read_bytes() for f in files])

def test_file_modes_no_resize(data):
    "Without item transforms the converted image comes through untouched."
    files = list(data['modes'].values())
    for cls,mode in [(PILImage, 'RGB'), (PILImageBW, 'L')]:
        dls = make_dls(data, cls)
        assert image_spec(dls)['item_tfms'] == []
        for f,ref in zip(files, fastai_uint8(dls, files)): assert np.array_equal(load_image(f, mode), ref), f

def test_no_exif_transpose(data):
    "fastai does not apply the EXIF orientation; neither does `load_image`."
    f = data['modes']['exif6.jpg']
    assert Image.open(f).getexif()[0x0112] == 6
    ref, = fastai_uint8(make_dls(data), [f])
    assert ref.shape == (45, 70, 3)  # not rotated to 70x45
    assert np.array_equal(load_image(f, 'RGB'), ref)

@pytest.mark.parametrize('pad_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('cls', [PILImage, PILImageBW], ids=['RGB', 'BW'])
def test_pil_and_array_inputs(data, cls, pad_mode):
    "PIL images and arrays are passed on in their own mode (not converted), exactly like `PILBase.create`."
    rng = np.random.default_rng(1)
    arrs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(37, 91, 3), (120, 60), (50, 50, 4), (45, 70, 2)]]
    pils = [Image.fromarray(a) for a in arrs]
    assert [p.mode for p in pils] == ['RGB', 'L', 'RGBA', 'LA']
    dls = make_dls(data, cls, item_tfms=Resize((48, 80), method='pad', pad_mode=pad_mode))
    assert_same_uint8(dls, arrs + pils)
    assert prepare_image(arrs[2], image_spec(dls)).shape[-1] == 4  # fastai keeps the alpha channel here

def test_refused_inputs(data):
    "PIL images in modes an HWC uint8 array cannot carry, and arrays that are not images, are refused with a fix."
    for name in ('P.png', 'CMYK.jpg', 'I16.png', '1.png'):
        img = Image.open(data['modes'][name])
        assert_raises(lambda: load_image(img, 'RGB'), repr(img.mode), 'Pass the file path or its bytes')
    assert_raises(lambda: load_image(np.zeros((4, 4, 1), np.uint8)), 'is not an image')
    assert_raises(lambda: load_image(np.zeros((4, 4), np.float32)), "mode 'F'")

def test_lazy_pil_image(data):
    "A PIL image that is opened but not loaded yet is loaded (fastai's `Resize` would fail on it)."
    f = data['modes']['RGB.jpg']
    assert np.array_equal(load_image(Image.open(f)), load_image(f))

# ---------------------------------------------------------------- batch transforms

def test_normalize_from_stats(data):
    "`Normalize.from_stats(*imagenet_stats)`: the float32 stats are recorded, and the whole float batch is exact."
    dls = make_dls(data, item_tfms=Resize(64, method='crop'), batch_tfms=Normalize.from_stats(*imagenet_stats))
    spec = image_spec(dls)
    assert [s['op'] for s in spec['batch_tfms']] == ['int_to_float', 'normalize']
    norm = spec['batch_tfms'][1]
    assert np.array_equal(np.float32(norm['mean']), np.float32(imagenet_stats[0]))
    assert np.array_equal(np.float32(norm['std']), np.float32(imagenet_stats[1]))
    assert_same_batch(dls, data['rgb'], spec)

def test_normalize_grayscale_broadcast(data):
    "3-channel stats on a 1-channel input broadcast to 3 channels, in fastai and in the graph."
    dls = make_dls(data, PILImageBW, item_tfms=Resize(32), batch_tfms=Normalize.from_stats(*imagenet_stats))
    assert graph_batch(data['rgb'][:2], image_spec(dls)).shape == (2, 3, 32, 32)
    assert_same_batch(dls, data['rgb'])

def test_normalize_computed_stats(data):
    "`Normalize()` without stats computes them from a batch at setup; the spec records the computed float32 values."
    dls = make_dls(data, item_tfms=Resize(32), batch_tfms=Normalize())
    norm = image_spec(dls)['batch_tfms'][-1]
    t = dls.valid.after_batch.fs[-1]
    assert norm['op'] == 'normalize' and np.array_equal(np.float32(norm['mean']), t.mean.reshape(-1).numpy())
    assert_same_batch(dls, data['rgb'])

def test_normalize_bad_stats(data):
    "Statistics that are not float32 per-channel tensors are refused."
    dls = make_dls(data, item_tfms=Resize(32), batch_tfms=Normalize.from_stats(*imagenet_stats))
    dls.valid.after_batch.fs[-1].mean = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    assert_raises(lambda: image_spec(dls), 'Normalize statistics', 'Normalize.from_stats')

def test_vision_learner_stats(data):
    "`vision_learner(pretrained=False)` adds no Normalize; `_add_norm` (what pretrained=True runs) adds imagenet stats."
    from fastai.vision.learner import _add_norm
    dls = make_dls(data, item_tfms=Resize(64))
    learn = vision_learner(dls, resnet18, pretrained=False)
    assert image_spec(learn)['batch_tfms'] == [dict(op='int_to_float', div=255.0, div_mask=1)]
    _add_norm(dls, model_meta[resnet18], pretrained=True)  # no download: only the DataLoaders side of pretrained=True
    spec = image_spec(learn)
    assert [s['op'] for s in spec['batch_tfms']] == ['int_to_float', 'normalize']
    assert np.allclose(spec['batch_tfms'][1]['mean'], imagenet_stats[0]) and np.allclose(spec['batch_tfms'][1]['std'], imagenet_stats[1])
    assert_same_batch(dls, data['rgb'], spec)

def test_int_to_float_div(data):
    "A custom `IntToFloatTensor(div=...)` is read, not assumed."
    dls = make_dls(data, item_tfms=Resize(32))
    dls.valid.after_batch.fs[0].div = 127.5
    spec = image_spec(dls)
    assert spec['batch_tfms'] == [dict(op='int_to_float', div=127.5, div_mask=1)]
    assert_same_batch(dls, data['rgb'], spec)

@pytest.mark.parametrize('item_size,aug', [
    (64, dict()), ((48, 80), dict(size=(40, 56))), (64, dict(size=24)), ((48, 80), dict(size=(48, 80), pad_mode='zeros')),
    (64, dict(size=32, min_scale=0.75)), ((80, 48), dict(flip_vert=True, max_warp=0))], ids=str)
def test_aug_transforms_valid(data, item_size, aug):
    "aug_transforms at validation: lighting skipped, but the affine transform still resamples (identity grid, to `size`)."
    dls = make_dls(data, item_tfms=Resize(item_size), batch_tfms=[*aug_transforms(**aug), Normalize.from_stats(*imagenet_stats)])
    dls.train.one_batch()  # a training batch leaves AffineCoordTfm.split_idx == 0 on the instance: must not fool the reader
    spec = image_spec(dls)
    ops = [s['op'] for s in spec['batch_tfms']]
    assert 'grid_resample' in ops and ops[-1] == 'normalize' and spec['skipped'] == ['Brightness']
    assert_same_batch(dls, data['rgb'], spec)

@pytest.mark.parametrize('tfm', [Flip(p=1., align_corners=False, pad_mode='zeros'), Rotate(mode='nearest', size=(30, 50)),
                                 Zoom(size=(20, 20), pad_mode='border'), Warp(size=12), Dihedral(align_corners=True, size=100),
                                 Rotate(size=(40, 10)), Flip(size=(6, 20)),  # fastai's pre-shrink test uses (w, 2), not (h, w)
                                 RandomResizedCropGPU((32, 40), valid_scale=0.8), RandomResizedCropGPU(16, ratio=(1, 1))], ids=_id)
def test_affine_variants_valid(data, tfm):
    "Each affine transform alone: modes, pad modes, align_corners, up/down sizes (incl. fastai's area pre-shrink)."
    assert_same_batch(make_dls(data, item_tfms=Resize((48, 80)), batch_tfms=tfm), data['rgb'])

# ---------------------------------------------------------------- skipped, unknown and refused transforms

class _TrainOnly(RandTransform):
    "A training-only custom transform (split_idx=0)."
    def encodes(self, x:TensorImage): return x*0

class _Custom(Transform):
    "A custom batch transform that runs on every split."
    def encodes(self, x:TensorImage): return x*2

class _CustomItem(Transform):
    "A custom item transform that runs on every split."
    order = 2
    def encodes(self, x:PILImage): return x

def test_training_only_skipped(data):
    dls = make_dls(data, item_tfms=[Resize(32), _TrainOnly()],
                   batch_tfms=[_TrainOnly(), *aug_transforms(max_warp=0, max_rotate=0, max_zoom=1, do_flip=False)])
    spec = image_spec(dls)
    assert spec['skipped'] == ['_TrainOnly', '_TrainOnly', 'Brightness']  # Contrast was merged into Brightness by setup_aug_tfms
    assert_same_batch(dls, data['rgb'], spec)

@pytest.mark.parametrize('kw,name', [(dict(item_tfms=[Resize(32), _CustomItem()]), "'_CustomItem'"),
                                     (dict(item_tfms=Resize(32), batch_tfms=_Custom()), "'_Custom'"),
                                     (dict(item_tfms=Resize(32), batch_tfms=Hue()), None),
                                     (dict(item_tfms=RatioResize(40)), 'RatioResize')], ids=['item', 'batch', 'hue', 'ratio'])
def test_unknown_raises(data, kw, name):
    "Unknown transforms that run at validation raise an error naming them (Hue is training-only: no error)."
    dls = make_dls(data, **kw)
    if name is None: assert 'Hue' in image_spec(dls)['skipped']
    else: assert_raises(lambda: image_spec(dls), name)

def test_what_image_spec_reads(data):
    "A Learner, its DataLoaders and the validation DataLoader give the same spec; anything else is refused."
    dls = make_dls(data, item_tfms=Resize(32))
    learn = Learner(dls, tiny_cnn(2))
    assert image_spec(learn) == image_spec(dls) == image_spec(dls.valid)
    assert_raises(lambda: image_spec(learn.model), 'Pass the Learner')

def test_bad_specs(data):
    "A spec with unknown steps or parameters, or from a newer version, is refused with a fix."
    spec = image_spec(make_dls(data, item_tfms=Resize(32)))
    f = data['rgb'][0]
    assert_raises(lambda: prepare_image(f, {**spec, 'version': SPEC_VERSION + 1}), 'Upgrade xdeploy_nb')
    assert_raises(lambda: prepare_image(f, {**spec, 'item_tfms': [dict(op='rotate', angle=3)]}), "'rotate'")
    assert_raises(lambda: prepare_image(f, {**spec, 'item_tfms': [{**spec['item_tfms'][0], 'filter': 'BOX'}]}), 'does not fit resize_image')
    assert_raises(lambda: prepare_image(f, {**spec, 'item_tfms': [{**spec['item_tfms'][0], 'method': 'fit'}]}), "'fit'")
    assert_raises(lambda: prepare_image(f, {**spec, 'item_tfms': [{**spec['item_tfms'][0], 'pad_mode': 'wrap'}]}), "'wrap'")

# ---------------------------------------------------------------- the spec is data, the item stage is numpy + Pillow only

BLOCKED = ('torch', 'torchvision', 'fastai', 'fastcore', 'fasttransform', 'plum')

def test_item_stage_without_torch(data, tmp_path):
    "The spec survives JSON, and the item stage runs where torch and fastai cannot be imported, giving fastai's pixels."
    items = data['rgb'] + list(data['modes'].values())
    cases = []
    for i,(cls,tfms) in enumerate([(PILImage, [CropPad(100), Resize((48, 80), method='pad', pad_mode='zeros')]),
                                   (PILImageBW, [RandomResizedCrop(40)])]):
        dls = make_dls(data, cls, item_tfms=tfms, batch_tfms=[*aug_transforms(size=(40, 56)), Normalize.from_stats(*imagenet_stats)])
        spec = image_spec(dls)
        assert json.loads(json.dumps(spec)) == spec
        np.savez(tmp_path/f'ref{i}.npz', *fastai_uint8(dls, items))
        cases.append((spec, str(tmp_path/f'ref{i}.npz')))
    (tmp_path/'cases.json').write_text(json.dumps(dict(cases=cases, items=[str(f) for f in items])))
    code = f'''
import json, sys
{import_blocker(*BLOCKED)}import numpy as np
from xdeploy_nb.preprocess import prepare_image
todo = json.load(open({str(tmp_path/'cases.json')!r}))
for spec,refs in todo['cases']:
    refs = np.load(refs)
    for i,f in enumerate(todo['items']): assert np.array_equal(prepare_image(f, spec), refs[f'arr_{{i}}']), (f, spec)
loaded = sorted(m for m in sys.modules if m.partition('.')[0] in {BLOCKED!r})
assert not loaded, loaded
print('ok', len(todo['cases'])*len(todo['items']))
'''
    assert run(sys.executable, '-c', code, timeout=120).stdout.split() == ['ok', str(2*len(items))]

def test_spec_from_exported_learner(data, tmp_path):
    "A Learner from `load_learner` (what a deployment reads) gives the same spec, and its own pipeline the same pixels."
    dls = make_dls(data, item_tfms=Resize((48, 80), method='pad', pad_mode='border'),
                   batch_tfms=[*aug_transforms(size=(40, 56)), Normalize.from_stats(*imagenet_stats)])
    learn = Learner(dls, tiny_cnn(2))
    learn.export(tmp_path/'export.pkl')
    with warnings.catch_warnings():  # load_learner always warns that it unpickles; this is the file we just wrote
        warnings.filterwarnings('ignore', "load_learner` uses Python's insecure pickle", UserWarning)
        loaded = load_learner(tmp_path/'export.pkl')
    spec = image_spec(loaded)
    assert spec == image_spec(learn)
    assert spec['input'] == dict(cls='PILImage', mode='RGB', item_getters=[])
    assert_same_uint8(loaded.dls, data['rgb'], spec)
    assert_same_batch(loaded.dls, data['rgb'], spec)
