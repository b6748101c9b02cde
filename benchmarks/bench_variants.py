#!/usr/bin/env python
"""The variants of a bundle against its fp32 model, fastai and torch eager, measured side by side in one run with
`xdeploy_nb.bench.bench`: a resnet18 trained on the generated shapes images (64 px, 300 training and 40 validation
images per class; it reaches 100 % validation accuracy), exported with every variant and verified on all 120
validation images (int8-static is calibrated on the same images, as the variants issue asks).

Prints each variant's validation accuracy beside the fp32 model's (as the export measured it), the bench table, and
the ratios the variants issue asks for: int8-static over fp32 throughput at batch 64 (target >= 1.5x, with <= 1 point
of accuracy lost), and the fp32 ONNX model over torch eager at batch 64; then each variant's throughput over fp32's at
batch 64 (the bench's `vs_fp32`) beside the ratio the export recorded in the manifest (`speed`, timed on the validation
batch), and the notes the bundle summary and the bench print for a variant slower than fp32 (issue 25: int8-dynamic
runs convolutions as ConvInteger).
Usage: python benchmarks/bench_variants.py [--arch resnet18] [--epochs 10] [--size 64] [--min-time 1] [--out DIR]"""
import argparse, tempfile, time
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--arch', default='resnet18'); ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--size', type=int, default=64); ap.add_argument('--min-time', type=float, default=1.0)
    ap.add_argument('--out', default=None)
    args = ap.parse_args()
    import pandas as pd
    from xdeploy_nb.data import make_image_folder
    from xdeploy_nb.train import image_dls, image_learner
    from xdeploy_nb.export import export_bundle
    from xdeploy_nb.bench import bench
    out = Path(args.out or tempfile.mkdtemp()); out.mkdir(parents=True, exist_ok=True)
    learn = image_learner(image_dls(make_image_folder(n_train=300, n_valid=40, size=args.size), size=args.size), arch=args.arch)
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(args.epochs, 3e-3)
    print(f"trained {args.arch} at {args.size} px for {args.epochs} epochs in {time.perf_counter() - t0:.0f} s: "
          f"validation accuracy {learn.validate()[1]:.1%}")
    t0 = time.perf_counter()
    b = export_bundle(learn, out/'bundle', formats=('onnx',), variants=('fp16', 'int8-dynamic', 'int8-static', 'optimized'),
                      n_items=len(learn.dls.valid_ds), overwrite=(out/'bundle').exists())
    print(f"exported with every variant and verified in {time.perf_counter() - t0:.0f} s")
    for a in b.artifacts:
        acc = a['accuracy']
        print(f"  {a['variant']:>12}: {a['size']/1e6:6.2f} MB, accuracy {acc['value']:.1%} (fp32 {acc['fp32_value']:.1%}), "
              f"{acc['agreement_with_fp32']:.1%} top-1 agreement with fp32, max abs diff to the Learner {a['verification']['max_abs_diff']:.2g}")
    for r in b.manifest.get('rejected', []): print(f"  left out: {r['reason']}")
    r = bench(out/'bundle', learn, devices=['cpu'], batch_sizes=(1, 8, 64), min_time=args.min_time)  # the variants' own device
    r.save(out/'bench.json', out/'bench.png')
    cols = ['format', 'variant', 'pipeline', 'batch_size', 'load_s', 'p50_ms', 'p99_ms', 'items_per_s', 'speedup', 'vs_fp32',
            'peak_rss_mb', 'gflops', 'peak_fraction']
    with pd.option_context('display.width', 220, 'display.max_columns', 20, 'display.float_format', '{:.3g}'.format):
        print(r.df[cols].to_string(index=False))
    df = r.df.set_index(['format', 'variant', 'pipeline', 'batch_size'])
    ips = lambda f, v, bs, p='model': df.loc[(f, v, p, bs), 'items_per_s']
    acc = {a['variant']: a['accuracy'] for a in b.artifacts}
    print(f"\n{r.meta['cpu']}, {r.meta['threads']} threads, matmul peak {r.meta['matmul_peak_gflops']:.0f} GFLOP/s, "
          f"model {r.meta['flops_per_item']/1e6:.0f} MFLOP per item")
    if 'int8-static' in acc:
        print(f"int8-static / fp32 throughput at batch 64: {ips('onnx', 'int8-static', 64)/ips('onnx', 'fp32', 64):.2f}x (target >= 1.5x); "
              f"accuracy {acc['int8-static']['value']:.1%} vs fp32 {acc['int8-static']['fp32_value']:.1%} "
              f"({100*(acc['int8-static']['value'] - acc['int8-static']['fp32_value']):+.1f} points; target >= -1)")
    print(f"fp32 ONNX / torch eager throughput at batch 64: {ips('onnx', 'fp32', 64)/ips('torch eager', 'fp32', 64):.2f}x; "
          f"int8-static / torch eager: {ips('onnx', 'int8-static', 64)/ips('torch eager', 'fp32', 64):.2f}x")
    print(f"one item, end to end: learn.predict {df.loc[('fastai', 'learn.predict', 'end-to-end', 1), 'p50_ms']:.2f} ms, "
          f"Predictor {df.loc[('onnx', 'fp32', 'end-to-end', 1), 'p50_ms']:.2f} ms")
    for a in b.artifacts:
        if a.get('speed'):
            print(f"  {a['variant']:>12} / fp32 at batch 64: bench {ips('onnx', a['variant'], 64)/ips('onnx', 'fp32', 64):.2f}x; "
                  f"export recorded {a['speed']['fp32_ratio']:.2f}x at batch {a['speed']['batch_size']}")
    from xdeploy_nb.bench import slower_notes
    from xdeploy_nb.variants import speed_note
    for a in b.artifacts:
        if n := speed_note(a): print(f"bundle summary: Slower than fp32: {n}")
    for n in slower_notes(r.rows, r.meta['cpu']): print(f"bench: Slower than fp32: {n}")
    print(f"report: {out/'bench.json'}, {out/'bench.png'}")

if __name__ == '__main__': main()
