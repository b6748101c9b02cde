#!/usr/bin/env python
"""The preprocessing graph (`preprocess.onnx`) against the Pillow path and against the Learner, one row per configuration.

For each resize method (crop, pad, squish), pad mode (zeros, border, reflection), filter (BILINEAR, BICUBIC), image mode
(RGB, L), and fastai's CropPad and RandomResizedCrop (validation crop): a tiny CNN trained on the generated shapes images
(non-square raw files, so crop and pad really crop and pad), exported with `export_bundle`, which builds the graph and
records its agreement in the manifest. The agreement is measured on the raw validation files and on photo-like JPEGs
(smooth gradients + hard-edged blocks + noise, `xdeploy_nb.pregraph.photo_like`: there is no internet for real photos)
at odd sizes: 4032x3024, 1000x333, 333x1000, 17x9 and more (--sizes). Columns: pixel values equal to / within one level of
the Pillow path's, the largest difference, the share of images where the model fed by the graph makes the Learner's
decision (`learn.get_preds` on the raw files, fastai's pipeline: the Learner's top-1), and the largest and mean difference
of the probabilities. Targets: within 1 level >= 99.9 %, top-1 >= 99.5 %.
Usage: python benchmarks/pregraph_agreement.py [--epochs 3] [--only pad]"""
import argparse, tempfile, time
from pathlib import Path

SIZES = ((3024, 4032), (1000, 333), (333, 1000), (9, 17), (480, 640), (1080, 1920), (37, 250), (2000, 1500), (64, 64), (1, 1))

def configs():
    "`(name, mode, item_tfms)` for each configuration measured."
    from PIL import Image
    from fastai.vision.augment import CropPad, RandomResizedCrop, Resize
    res = [(f"Resize {m} {p} BILINEAR", 'RGB', [Resize(24, method=m, pad_mode=p)]) for m,p in
           (('crop', 'zeros'), ('pad', 'zeros'), ('pad', 'border'), ('pad', 'reflection'), ('squish', 'zeros'))]
    res += [("Resize crop reflection BICUBIC", 'RGB', [Resize(24, method='crop', resamples=(Image.BICUBIC, Image.NEAREST))]),
            ("Resize pad reflection BICUBIC", 'RGB', [Resize((20, 28), method='pad', pad_mode='reflection', resamples=(Image.BICUBIC, Image.NEAREST))]),
            ("Resize crop BILINEAR (L)", 'L', [Resize(24, method='crop')]),
            ("Resize pad reflection (L)", 'L', [Resize(24, method='pad', pad_mode='reflection')]),
            ("Resize squish BICUBIC (L)", 'L', [Resize(24, method='squish', resamples=(Image.BICUBIC, Image.NEAREST))]),
            ("CropPad 40 zeros", 'RGB', [CropPad(40, pad_mode='zeros')]),
            ("RandomResizedCrop 24 (validation)", 'RGB', [RandomResizedCrop(24)]),
            ("Resize crop LANCZOS (no graph)", 'RGB', [Resize(24, method='crop', resamples=(Image.LANCZOS, Image.NEAREST))])]
    return res

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--only', default='', help='Only configurations whose name has this')
    args = ap.parse_args()
    import numpy as np
    from fastai.vision.all import ImageDataLoaders, PILImage, PILImageBW
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import trained_learner
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb import pregraph
    pregraph.PHOTO_SIZES = SIZES  # more odd sizes than an export measures by default
    tmp = Path(tempfile.mkdtemp())
    rows,t00 = [],time.perf_counter()
    for name,mode,tfms in configs():
        if args.only not in name: continue
        folder = make_image_folder(classes=3, n_train=40, n_valid=20, size=(36, 52), mode=mode)
        dls = ImageDataLoaders.from_folder(folder, img_cls=PILImage if mode == 'RGB' else PILImageBW, item_tfms=tfms, bs=16, num_workers=0)
        learn = trained_learner(dls, epochs=args.epochs)
        t0 = time.perf_counter()
        d = tmp/name.replace(' ', '_').replace('(', '').replace(')', '')
        m = export_bundle(learn, d, formats=('onnx',)).manifest
        pre = m['preprocessing']
        a = (pre['graph'] or {}).get('agreement')
        rows.append(dict(config=name, mode=mode, n=a['n_images'] if a else 0,
                         equal=f"{a['pixels_equal']:.4%}" if a else '-', within_1=f"{a['pixels_within_1']:.4%}" if a else '-',
                         max_diff=a['max_pixel_diff'] if a else '-', top1=f"{a['top1']:.1%}" if a else '-',
                         max_prob_diff=f"{a['max_prob_diff']:.2g}" if a else '-', mean_prob_diff=f"{a['mean_prob_diff']:.2g}" if a else '-',
                         targets=('met' if a['meets_targets'] else 'NOT met') if a else pre.get('graph_unavailable', '')[:60],
                         export_s=round(time.perf_counter() - t0, 1)))
        print(rows[-1], flush=True)
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print('\n' + '  '.join(c.ljust(width[c]) for c in cols))
    for r in rows: print('  '.join(str(r[c]).ljust(width[c]) for c in cols))
    print(f"\nimages per configuration: the validation files + photo-like JPEGs of {', '.join(f'{w}x{h}' for h,w in SIZES)}; "
          f"{time.perf_counter() - t00:.0f} s in all")

if __name__ == '__main__': main()
