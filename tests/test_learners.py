"""Every fastai Learner a user brings (issue 12): each supported kind of Learner, built the ordinary fastai way, exports a bundle
whose Predictor agrees with `learn.predict` on raw inputs; each unsupported one is refused at the start with what to do."""
import json, shutil, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from torch import nn
from conftest import run, console_script, one_sided_tabular, shapes_frame, tiny_unet
from fastai.vision.all import (BCEWithLogitsLossFlat, CategoryBlock, ColReader, ColSplitter, DataBlock, ImageBlock,
                             ImageDataLoaders, Learner, MSELossFlat, MultiCategoryBlock, RegressionBlock, Resize,
                             resnet18)
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
from xdeploy_nb.core import FORMATS, XDeployError
from xdeploy_nb.data import load_penguins, make_image_folder
from xdeploy_nb.export import export_bundle
from xdeploy_nb.runtime import Predictor
from xdeploy_nb.tasks.segmentation import mask_to_original, segment
from xdeploy_nb.train import tiny_cnn

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    "A small image folder and a DataFrame (and CSV file) that names its files: `fname`, `label`, `tags`, two targets, `is_valid`."
    path = make_image_folder(tmp_path_factory.mktemp('learners')/'shapes', n_train=6, n_valid=3, size=28)
    df = shapes_frame(path)
    df.to_csv(path/'labels.csv', index=False)
    return path,df

@pytest.fixture(scope='module')
def penguins(): return load_penguins()

def valid_files(path, df)->list: return [path/f for f in df.fname[df.is_valid]]

def outputs_vs_predict(learn, bundle, items)->tuple:
    "`(max abs diff, top-1 agreement)` of the bundle's outputs and decisions against `learn.predict` (its activated outputs), item by item."
    p = Predictor(bundle)
    diffs,same = [],[]
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for x in items:
            want = learn.predict(x)[-1].float().numpy().reshape(-1)
            got = p.run(p.prepare([x.to_dict() if isinstance(x, pd.Series) else x]))[0]  # a row as the dict an application has
            diffs.append(float(np.abs(want - got).max()))
            same.append(int(want.argmax()) == int(got.argmax()))
    return max(diffs),float(np.mean(same))

def check_agrees(learn, bundle, items, atol=1e-4):
    d,top1 = outputs_vs_predict(learn, bundle, items)
    print(f"vs learn.predict on {len(items)} raw items: max abs diff {d:.2g}, top-1 agreement {top1:.0%}")
    assert d <= atol and top1 == 1., (d, top1)
    return d

def export(learn, path, **kw):
    "`export_bundle` of the ONNX model, timed (`pytest -s` shows it)."
    t0 = time.perf_counter()
    b = export_bundle(learn, path, formats=('onnx',), **kw)
    print(f"\n{path.parent.name}: exported in {time.perf_counter() - t0:.1f} s; {b.report}")
    return b

# --- 1. DataFrame / CSV-built image Learners: reference items from the Learner's own getter

def _from_df(path, df): return ImageDataLoaders.from_df(df, path, fn_col='fname', label_col='label', valid_col='is_valid', item_tfms=Resize(24), bs=8)
def _from_csv(path, df): return ImageDataLoaders.from_csv(path, 'labels.csv', fn_col='fname', label_col='label', valid_col='is_valid', item_tfms=Resize(24), bs=8)
def _datablock(path, df):
    return DataBlock((ImageBlock, CategoryBlock), get_x=ColReader('fname', pref=f'{path}/'), get_y=ColReader('label'),
                     splitter=ColSplitter('is_valid'), item_tfms=Resize(24)).dataloaders(df, bs=8)

@pytest.mark.parametrize('make', [_from_df, _from_csv, _datablock], ids=['from_df', 'from_csv', 'DataBlock+ColReader'])
def test_dataframe_built_image_learner(shapes, tmp_path, make):
    path,df = shapes
    dls = make(path, df)
    learn = Learner(dls, tiny_cnn(dls.c))
    b = export(learn, tmp_path/'b')
    assert b.report.passed and b.report.rows[0]['n'] == 9 and b.manifest['labels'] == ['circle', 'square', 'triangle']
    check_agrees(learn, tmp_path/'b', valid_files(path, df))

def test_multi_label_from_a_label_column(shapes, tmp_path):
    path,df = shapes
    dls = DataBlock((ImageBlock, MultiCategoryBlock), get_x=ColReader('fname', pref=path), get_y=ColReader('tags', label_delim=' '),
                    splitter=ColSplitter('is_valid'), item_tfms=Resize(24)).dataloaders(df, bs=8)
    learn = Learner(dls, tiny_cnn(dls.c), loss_func=BCEWithLogitsLossFlat(thresh=0.45))
    b = export(learn, tmp_path/'b')
    assert b.manifest['task'] == 'multi_label' and b.manifest['outputs'][0]['threshold'] == 0.45
    files = valid_files(path, df)
    check_agrees(learn, tmp_path/'b', files)
    p = Predictor(tmp_path/'b')
    with learn.no_bar(): assert [sorted(learn.predict(f)[0]) for f in files] == [sorted(p.predict(f)['labels']) for f in files]

# --- 2. Regression with several outputs: their number and names from the model and the targets

def test_image_regression_with_two_outputs(shapes, tmp_path):
    path,df = shapes
    dls = DataBlock((ImageBlock, RegressionBlock(n_out=2)), get_x=ColReader('fname', pref=path), get_y=ColReader(['x', 'y']),
                    splitter=ColSplitter('is_valid'), item_tfms=Resize(24)).dataloaders(df, bs=8)
    learn = Learner(dls, tiny_cnn(2), loss_func=MSELossFlat())
    b = export(learn, tmp_path/'b')
    assert (b.manifest['task'], b.manifest['labels'], b.manifest['outputs'][0]['shape']) == ('regression', ['x', 'y'], ['batch', 2])
    files = valid_files(path, df)
    check_agrees(learn, tmp_path/'b', files)
    assert len(Predictor(tmp_path/'b').predict(files[0])['value']) == 2

def _tabular(df, y_names, **kw):
    return TabularDataLoaders.from_df(df, y_names=y_names, cat_names=['island', 'sex', 'species'], procs=[Categorify, FillMissing, Normalize],
                                      valid_idx=list(range(0, len(df), 5)), bs=64, **kw)

def test_tabular_regression_with_two_targets(penguins, tmp_path):
    df = penguins.dropna(subset=['body_mass_g', 'flipper_length_mm']).reset_index(drop=True)
    targets = ['body_mass_g', 'flipper_length_mm']
    learn = tabular_learner(_tabular(df, targets, cont_names=['bill_length_mm', 'bill_depth_mm'], y_block=RegressionBlock()), layers=[16])
    b = export(learn, tmp_path/'b')
    assert (b.manifest['labels'], b.manifest['outputs'][0]['shape']) == (targets, ['batch', 2])
    check_agrees(learn, tmp_path/'b', [df.iloc[i].drop(targets) for i in range(0, 40, 5)])

# --- 3. Tolerances that fit the output's scale: atol + rtol*|ref|, the caller's reaching the exporter's eager check

def test_tabular_regression_in_the_thousands(penguins, tmp_path, monkeypatch):
    df = penguins.dropna(subset=['body_mass_g']).reset_index(drop=True)
    learn = tabular_learner(_tabular(df, 'body_mass_g', cont_names=['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm']),
                            layers=[16], y_range=(2500, 6500))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    seen,export_onnx = [],FORMATS['onnx'].export
    monkeypatch.setattr(FORMATS['onnx'], 'export', lambda *a, **kw: seen.append((kw['atol'], kw['rtol'])) or export_onnx(*a, **kw))
    b = export(learn, tmp_path/'b')
    assert b.report.passed and seen == [(1e-4, 1e-5)]
    export(learn, tmp_path/'c', tolerance=1e-3, rtol=1e-4)
    assert seen[-1] == (1e-3, 1e-4)  # the caller's tolerance reaches the eager check
    check_agrees(learn, tmp_path/'b', [df.iloc[i].drop('body_mass_g') for i in range(0, 40, 5)], atol=1e-4 + 1e-5*6500)

# --- 4. Plain PyTorch losses: no activation in fastai, none in the bundle

def test_plain_pytorch_cross_entropy(shapes, tmp_path):
    path,df = shapes
    dls = _from_df(path, df)
    learn = Learner(dls, tiny_cnn(dls.c), loss_func=nn.CrossEntropyLoss())
    b = export(learn, tmp_path/'b')
    assert (b.manifest['task'], b.manifest['outputs'][0]['activation']) == ('single_label', 'none')
    assert 'raw scores' in b._repr_markdown_()
    files = valid_files(path, df)
    check_agrees(learn, tmp_path/'b', files)  # raw scores, as fastai's predict returns them
    p = Predictor(tmp_path/'b')
    with learn.no_bar(): assert all(p.predict(f)['index'] == int(learn.predict(f)[-1].argmax()) for f in files)

def test_plain_pytorch_bce_is_multi_label_on_raw_scores(shapes, tmp_path):
    path,df = shapes
    dls = DataBlock((ImageBlock, MultiCategoryBlock), get_x=ColReader('fname', pref=path), get_y=ColReader('tags', label_delim=' '),
                    splitter=ColSplitter('is_valid'), item_tfms=Resize(24)).dataloaders(df, bs=8)
    learn = Learner(dls, tiny_cnn(dls.c), loss_func=nn.BCEWithLogitsLoss())
    b = export(learn, tmp_path/'b')
    assert (b.manifest['task'], b.manifest['outputs'][0]['activation']) == ('multi_label', 'none')
    files = valid_files(path, df)
    check_agrees(learn, tmp_path/'b', files)
    p,vocab = Predictor(tmp_path/'b'),list(dls.vocab)
    with learn.no_bar():
        for f in files:  # a label where sigmoid(score) >= 0.5, i.e. score >= 0
            assert p.predict(f)['labels'] == [v for v,s in zip(vocab, learn.predict(f)[-1].tolist()) if s >= 0]

# --- 8. `xdeploy export learner.pkl out --items rows.csv`: CSV cells typed as the Learner's columns

def cli_round_trip(learn, rows, d:Path, target:str=None)->tuple:
    """`learn` saved, exported by `xdeploy export learner.pkl --items rows.csv` and `rows` predicted by `xdeploy predict
    --json` (missing values written as empty fields): (the CLI's predictions, `learn.predict`'s probabilities per row)."""
    learn.export(d/'learner.pkl')
    rows.to_csv(d/'rows.csv', index=False)
    xdeploy = console_script('xdeploy')
    out = run(xdeploy, 'export', d/'learner.pkl', d/'cli', '--items', d/'rows.csv', '--formats', 'onnx').stdout
    assert 'faithful' in out and 'NOT' not in out, out
    preds = json.loads(run(xdeploy, 'predict', d/'cli', d/'rows.csv', '--json').stdout)
    with learn.no_bar(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        want = [learn.predict(r.drop(target) if target else r)[-1].numpy() for _,r in pd.read_csv(d/'rows.csv').iterrows()]
    return preds,want

def test_cli_exports_a_saved_tabular_learner_from_csv_rows(penguins, tmp_path):
    dls = TabularDataLoaders.from_df(penguins, y_names='species', cat_names=['island', 'sex'], procs=[Categorify, FillMissing, Normalize],
                                     cont_names=['bill_length_mm', 'bill_depth_mm', 'flipper_length_mm', 'body_mass_g', 'year'],
                                     valid_idx=list(range(0, len(penguins), 5)), bs=64)
    learn = tabular_learner(dls, layers=[16])
    preds,want = cli_round_trip(learn, penguins.iloc[::7].head(24), tmp_path, target='species')  # with missing values
    assert len(preds) == len(want) == 24
    d = max(float(np.abs(np.array(p['probs']) - w).max()) for p,w in zip(preds, want))
    print(f"xdeploy predict vs learn.predict on {len(want)} CSV rows: max abs diff {d:.2g}")
    assert d <= 1e-4
    assert [p['index'] for p in preds] == [int(w.argmax()) for w in want]

# --- 9. Tables with one side only: no category columns (x_cat of width 0) or no continuous ones (x_cont of width 0)

@pytest.mark.parametrize('which', ['cont', 'cat'], ids=['continuous-only', 'categorical-only'])
def test_tabular_with_one_side_only(tmp_path, which):
    "A zero-width input is part of the bundle: the Predictor and the CLI agree with `learn.predict` on raw rows."
    learn,rows = one_sided_tabular(which)
    b = export(learn, tmp_path/'b')
    empty = 'x_cat' if which == 'cont' else 'x_cont'
    assert b.report.passed and {i['name']: i['shape'] for i in b.manifest['inputs']}[empty] == ['batch', 0], b.manifest['inputs']
    d = check_agrees(learn, tmp_path/'b', [r for _,r in rows.iterrows()], atol=1e-5)
    preds,want = cli_round_trip(learn, rows, tmp_path)
    dc = max(float(np.abs(np.array(p['probs']) - w).max()) for p,w in zip(preds, want))
    print(f"{which} only: Predictor max diff {d:.2g}; xdeploy predict vs learn.predict on {len(want)} CSV rows: max diff {dc:.2g}")
    assert len(preds) == len(want) and dc <= 1e-5 and [p['index'] for p in preds] == [int(w.argmax()) for w in want]

# --- 5. Segmentation: a class mask per image, verified pixel by pixel against learn.predict

@pytest.fixture(scope='module')
def seg_learner():
    "A tiny U-Net (`unet_learner` with a small body) on `SegmentationDataLoaders` of generated shapes and masks (codes from the mask block)."
    learn = tiny_unet(n=16, size=32, bs=8)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    return learn,[Path(f) for f in learn.dls.valid_ds.items]

def check_masks(learn, bundle, files, **kw)->tuple:
    "`(pixel agreement, max prob diff)` of the bundle's masks and probabilities against `learn.predict`'s, on raw files."
    got = segment(Predictor(bundle, **kw), files, probs=True)
    with learn.no_bar(): want = [learn.predict(f) for f in files]
    agree = float(np.mean([(g['mask'] == w[0].numpy()).mean() for g,w in zip(got, want)]))
    diff = max(float(np.abs(g['probs'] - w[2].numpy()).max()) for g,w in zip(got, want))
    print(f"vs learn.predict on {len(files)} raw images: pixel agreement {agree:.4%}, max prob diff {diff:.2g}")
    return agree,diff

def test_segmentation(seg_learner, tmp_path):
    learn,files = seg_learner
    b = export(learn, tmp_path/'b', variants=('fp16',))
    m = b.manifest
    assert (m['task'], m['labels'], m['outputs'][0]['shape']) == ('segmentation', ['background', 'circle', 'square'], ['batch', 3, 32, 32])
    agree,diff = check_masks(learn, tmp_path/'b', files)
    assert agree >= 0.999 and diff <= 1e-4
    fp16 = [a for a in m['artifacts'] if a['variant'] == 'fp16']  # verified, or left out with the reason
    assert (fp16 and fp16[0]['verification']['passed']) or any(r['variant'] == 'fp16' and r['reason'] for r in m.get('rejected', []))
    p = Predictor(tmp_path/'b')
    d = p.predict(files[0])
    assert np.array(d['mask']).shape == (32, 32) and set(d['classes']) <= set(m['labels'])
    assert mask_to_original(d['mask'], (40, 48), m['preprocessing']['spec']).shape == (40, 48)
    from xdeploy_nb.widgets import RunWidget
    r = RunWidget(tmp_path/'b', learn)  # the Run widget shows the mask as an overlay on the image
    assert r.predict(str(files[0]))['mask'] == d['mask'] and r.chart.value[:4] == b'\x89PNG' and 'of the pixels' in r.result.value

def test_segmentation_through_the_cli(seg_learner, tmp_path):
    learn,files = seg_learner
    learn.export(tmp_path/'learner.pkl')
    xdeploy = console_script('xdeploy')
    out = run(xdeploy, 'export', tmp_path/'learner.pkl', tmp_path/'b', '--items', *files, '--formats', 'onnx').stdout
    assert 'faithful' in out and 'NOT' not in out, out
    preds = json.loads(run(xdeploy, 'predict', tmp_path/'b', *files, '--json').stdout)
    with learn.no_bar(): want = [learn.predict(f)[0].numpy() for f in files]
    agree = float(np.mean([(np.array(p['mask']) == w).mean() for p,w in zip(preds, want)]))
    print(f"xdeploy predict vs learn.predict on {len(files)} images: pixel agreement {agree:.4%}")
    assert len(preds) == len(files) and agree >= 0.999

# --- 7. Collaborative filtering: a rating from (user, item), unseen ones as fastai codes them (#na#)

@pytest.fixture(scope='module')
def ratings():
    rng = np.random.default_rng(0)
    u,v = rng.normal(size=(20, 3)),rng.normal(size=(12, 3))
    users,items = rng.integers(0, 20, 300),rng.integers(0, 12, 300)
    return pd.DataFrame(dict(user=users, item=[f'm{i}' for i in items], rating=(3 + (u[users]*v[items]).sum(1)).clip(1, 5)))

def collab_vs_fastai(learn, bundle, rows)->float:
    "Max difference between the bundle's ratings and fastai's (`get_preds` on a `test_dl`: `learn.predict` does not take a collab row)."
    with learn.no_bar(): want = learn.get_preds(dl=learn.dls.test_dl(rows))[0].numpy().reshape(-1)
    got = np.array([d['value'] for d in Predictor(bundle).predict_batch(rows)])
    return float(np.abs(got - want).max())

@pytest.mark.parametrize('use_nn', [False, True], ids=['EmbeddingDotBias', 'EmbeddingNN'])
def test_collab(ratings, tmp_path, use_nn):
    from fastai.collab import CollabDataLoaders, collab_learner
    learn = collab_learner(CollabDataLoaders.from_df(ratings, bs=64, seed=0), n_factors=4, use_nn=use_nn, layers=[8], y_range=(0.5, 5.5))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    b = export(learn, tmp_path/'b')
    m = b.manifest
    assert (m['preprocessing']['kind'], m['task'], m['labels'], m['outputs'][0]['shape']) == ('collab', 'regression', ['rating'], ['batch', 1])
    rows = pd.DataFrame(dict(user=[0, 3, 999, None, 5], item=['m1', 'm2', 'm1', 'm3', 'unseen']))  # unseen and missing: #na#, as fastai
    d = collab_vs_fastai(learn, tmp_path/'b', rows)
    print(f"vs fastai on {len(rows)} rows (2 unseen, 1 missing): max abs diff {d:.2g}")
    assert d <= 1e-4

def test_collab_through_the_cli(ratings, tmp_path):
    from fastai.collab import CollabDataLoaders, collab_learner
    learn = collab_learner(CollabDataLoaders.from_df(ratings, bs=64, seed=0), n_factors=4, y_range=(0.5, 5.5))
    learn.export(tmp_path/'learner.pkl')
    ratings.iloc[:20].to_csv(tmp_path/'rows.csv', index=False)
    xdeploy = console_script('xdeploy')
    out = run(xdeploy, 'export', tmp_path/'learner.pkl', tmp_path/'b', '--items', tmp_path/'rows.csv', '--formats', 'onnx').stdout
    assert 'faithful' in out and 'NOT' not in out, out
    preds = json.loads(run(xdeploy, 'predict', tmp_path/'b', tmp_path/'rows.csv', '--json').stdout)
    with learn.no_bar(): want = learn.get_preds(dl=learn.dls.test_dl(pd.read_csv(tmp_path/'rows.csv')))[0].numpy().reshape(-1)
    d = float(np.abs(np.array([p['value'] for p in preds]) - want).max())
    print(f"xdeploy predict vs fastai on 20 CSV rows: max abs diff {d:.2g}")
    assert len(preds) == 20 and d <= 1e-4

# --- Refused, at the start of the export, naming the kind of Learner

def test_language_model_is_refused(tmp_path):
    from fastai.text.all import AWD_LSTM, BaseTokenizer, TextDataLoaders, Tokenizer, language_model_learner
    df = pd.DataFrame(dict(text=['good movie', 'bad film', 'great fun', 'awful plot', 'nice', 'terrible']*3))
    dls = TextDataLoaders.from_df(df, text_col='text', is_lm=True, valid_pct=0.3, tok_tfm=Tokenizer(BaseTokenizer()), bs=4, seq_len=8)
    learn = language_model_learner(dls, AWD_LSTM, pretrained=False)
    with pytest.raises(XDeployError, match='Language-model Learners .* are not supported'): export_bundle(learn, tmp_path/'b')

# --- 6. Text classification: fastai's tokenisation in the manifest, the AWD-LSTM over texts of any length

def sentiment_frame(n:int=200, seed:int=0)->pd.DataFrame:
    "Sentences of filler words with a few sentiment words, some capitalised, shouted or with repeated punctuation."
    rng = np.random.default_rng(seed)
    pos,neg = 'good great lovely superb fine happy enjoyable wonderful'.split(),'bad awful terrible poor boring sad dreadful horrible'.split()
    filler = "the movie was and it a plot acting I really think story film don't".split()
    rows = []
    for i in range(n):
        words = list(rng.choice(filler, rng.integers(3, 12))) + list(rng.choice(pos if i % 2 else neg, rng.integers(1, 4)))
        rng.shuffle(words)
        s = ' '.join(words)
        rows.append((s.upper() if i % 11 == 0 else s.capitalize() + '!!!' if i % 7 == 0 else s, 'pos' if i % 2 else 'neg'))
    return pd.DataFrame(rows, columns=['review', 'label'])

@pytest.fixture(scope='module')
def text_learner():
    "A text classifier built the ordinary fastai way: TextDataLoaders.from_df (spaCy's tokenizer), a tiny AWD_LSTM, three epochs."
    import torch
    from fastai.text.all import AWD_LSTM, TextDataLoaders, awd_lstm_clas_config, set_seed, text_classifier_learner
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    set_seed(0)  # a tiny LSTM runs fastest on one thread (and the CPUs are shared)
    df = sentiment_frame()
    dls = TextDataLoaders.from_df(df, text_col='review', label_col='label', valid_pct=0.2, seed=0, bs=32, seq_len=8)
    learn = text_classifier_learner(dls, AWD_LSTM, pretrained=False, seq_len=8, config=dict(awd_lstm_clas_config, emb_sz=16, n_hid=32, n_layers=2))
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(3, 3e-2)
    learn.model[0].max_len = 16  # pool only the last chunks of the longer texts, as fastai's SentenceEncoder does
    yield learn,df
    torch.set_num_threads(threads)

TRICKY = ['Really GOOD!!! ' * 6 + 'but the ENDING was dreadful', "I don't think it's <br />great &amp; fine / ok #1", '',
          'wow wow wow wow', 'UNSEEN words Everywhere ZZZ', '   spaces    and\ttabs\nnewlines  ']

def test_text_tokenisation_equals_fastai(text_learner):
    from xdeploy_nb.export import spec_from_learner
    from xdeploy_nb.kinds.text import numericalize, tokenize
    from xdeploy_nb.verify import reference_items
    learn,df = text_learner
    spec = spec_from_learner(learn)['preprocessing']['spec']
    assert spec['tokenizer']['type'] == 'spacy' and spec['rules'][-1] == 'lowercase' and spec['vocab'][:2] == ['xxunk', 'xxpad']
    texts = reference_items(learn)
    assert texts == df.review[learn.dls.valid_ds.items.index].tolist()[:64]  # the raw strings, not fastai's tokens
    for t in texts + TRICKY:
        assert numericalize(tokenize(t, spec), spec).tolist() == learn.dls.test_dl([t]).one_batch()[0][0].tolist(), t

@pytest.fixture(scope='module')
def text_bundle(text_learner, tmp_path_factory):
    "The text classifier's bundle, exported once for the tests below: ONNX (run by default), .ort, TorchScript and two variants."
    t0 = time.perf_counter()
    b = export_bundle(text_learner[0], tmp_path_factory.mktemp('text')/'b', formats=('onnx', 'ort', 'torchscript'), variants=('fp16', 'int8-dynamic'))
    print(f"\ntext: exported in {time.perf_counter() - t0:.1f} s; {b.report}")
    assert [a['file'] for a in b.manifest['artifacts']] == ['model.onnx', 'model.ort', 'model.ts', 'model.fp16.onnx', 'model.int8-dynamic.onnx']
    return b

def test_text_base_tokenizer_and_refusals(tmp_path):
    "fastai's BaseTokenizer (split on spaces) is reproduced too; a backwards text model and a bidirectional AWD-LSTM are refused."
    from fastai.text.all import AWD_LSTM, BaseTokenizer, TextDataLoaders, awd_lstm_clas_config, text_classifier_learner
    from xdeploy_nb.export import spec_from_learner
    from xdeploy_nb.kinds.text import numericalize, tokenize
    df,cfg = sentiment_frame(60),dict(awd_lstm_clas_config, emb_sz=8, n_hid=8, n_layers=1)
    make = lambda **kw: TextDataLoaders.from_df(df, text_col='review', label_col='label', valid_pct=0.3, seed=0, bs=16, seq_len=8, **kw)
    learn = text_classifier_learner(make(tok_tfm=BaseTokenizer()), AWD_LSTM, pretrained=False, config=cfg)
    spec = spec_from_learner(learn)['preprocessing']['spec']
    assert spec['tokenizer'] == dict(type='split', split_char=' ')
    for t in df.review.tolist()[:20] + TRICKY:
        assert numericalize(tokenize(t, spec), spec).tolist() == learn.dls.test_dl([t]).one_batch()[0][0].tolist(), t
    with pytest.raises(XDeployError, match='after Numericalize .backwards=True'):
        export_bundle(text_classifier_learner(make(backwards=True), AWD_LSTM, pretrained=False, config=cfg), tmp_path/'b')
    with pytest.raises(XDeployError, match='This AWD-LSTM is bidirectional'):
        export_bundle(text_classifier_learner(make(), AWD_LSTM, pretrained=False, config=dict(cfg, bidir=True, n_hid=8)), tmp_path/'b')
    assert not (tmp_path/'b').exists()

def test_text_classifier(text_learner, text_bundle, tmp_path):
    learn,df = text_learner
    b,tmp_path = text_bundle,text_bundle.path.parent
    m = b.manifest
    assert b.report.passed and m['preprocessing']['kind'] == 'text' and m['labels'] == ['neg', 'pos']
    assert [i['name'] for i in m['inputs']] == ['tokens', 'lengths'] and m['artifacts'][0]['exporter'] == 'legacy'
    texts = df.review[learn.dls.valid_ds.items.index].tolist() + TRICKY
    assert max(len(learn.dls.test_dl([t]).one_batch()[0][0]) for t in texts) > 2*16  # texts longer than max_len
    check_agrees(learn, tmp_path/'b', texts)
    p = Predictor(tmp_path/'b')
    with learn.no_bar():
        assert p.predict('a GREAT and lovely film')['label'] == learn.predict('a GREAT and lovely film')[0]
        batch,alone = p.predict_batch(texts, batch_size=7),[p.predict(t) for t in texts]  # padded together or alone: the same
    assert [d['index'] for d in batch] == [d['index'] for d in alone]
    assert max(abs(a - c) for d,e in zip(batch, alone) for a,c in zip(d['probs'], e['probs'])) <= 1e-5
    for bad,msg in ((3, 'predict takes one text, a str'), ('so xxpad here', "holds the token 'xxpad'")):
        with pytest.raises(XDeployError, match=msg): p.predict(bad)
    with pytest.raises(XDeployError, match='got one text'): p.predict_batch('one text')
    from xdeploy_nb.widgets import RunWidget  # the Run widget takes a text, filled in with the first validation text
    w = RunWidget(); w.set_bundle(b, learn)
    assert w.inputs.children[0] is w.text and w.text.value == texts[0]
    w.predict()
    assert w.error is None and w.prediction['label'] == p.predict(texts[0])['label'] and w.chart.value
    with pytest.raises(XDeployError, match="torch.export format cannot hold this model .* specialises an LSTM's sequence length"):
        export_bundle(learn, tmp_path/'pt2', formats=('onnx', 'torch.export'))
    assert not (tmp_path/'pt2').exists()

def test_text_classifier_cli(text_learner, tmp_path):
    "`xdeploy export learner.pkl out --items texts.csv` for a saved text Learner, then `xdeploy predict` on a CSV file and a .txt file."
    learn,df = text_learner
    learn.export(tmp_path/'learner.pkl')
    texts = df.review[learn.dls.valid_ds.items.index].tolist()[:10]
    df.loc[learn.dls.valid_ds.items.index[:10]].to_csv(tmp_path/'texts.csv', index=False)
    (tmp_path/'one.txt').write_text(TRICKY[1], encoding='utf-8')
    xdeploy = console_script('xdeploy')
    out = run(xdeploy, 'export', tmp_path/'learner.pkl', tmp_path/'b', '--items', tmp_path/'texts.csv', '--formats', 'onnx').stdout
    assert 'faithful' in out and 'NOT' not in out, out
    preds = json.loads(run(xdeploy, 'predict', tmp_path/'b', tmp_path/'texts.csv', tmp_path/'one.txt', '--json').stdout)
    with learn.no_bar(): want = [learn.predict(t)[-1].numpy() for t in texts + [TRICKY[1]]]
    assert len(preds) == 11 and [p['index'] for p in preds] == [int(w.argmax()) for w in want]
    assert max(float(np.abs(np.array(p['probs']) - w).max()) for p,w in zip(preds, want)) <= 1e-4

def test_text_bundle_predicts_without_torch(text_learner, text_bundle):
    "The runtime tokenizes (spaCy from the text extra) and predicts where torch, fastai, fastcore and pandas cannot be imported."
    from conftest import import_blocker
    learn,_ = text_learner
    code = import_blocker('torch', 'torchvision', 'fastai', 'fastcore', 'fasttransform', 'plum', 'pandas') + f'''
import json, sys
from xdeploy_nb.runtime import Predictor
print(json.dumps(Predictor({str(text_bundle.path)!r}).predict_batch({TRICKY!r})))
assert not {{'torch', 'fastai', 'pandas'}} & set(sys.modules)
'''
    got = json.loads(run(sys.executable, '-c', code).stdout)
    with learn.no_bar(): want = [learn.predict(t)[-1].numpy() for t in TRICKY]
    assert max(float(np.abs(np.array(g['probs']) - w).max()) for g,w in zip(got, want)) <= 1e-4
