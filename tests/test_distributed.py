"Data-parallel training on 2 CPU processes (torchrun, gloo on 127.0.0.1): identical replicas, a verified bundle from rank 0."
import json, shutil, sys, time
import pytest, torch
from conftest import run
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.distributed import default_recipe, launch, state_digest
from xdeploy_nb.verify import verify_bundle

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    "A small shapes folder: 3 classes, 12 training and 4 validation images each, 32 px."
    return make_image_folder(tmp_path_factory.mktemp('ddp')/'shapes', n_train=12, n_valid=4, size=32)

def test_two_processes_train_identical_replicas_and_rank0_exports_a_verified_bundle(shapes, tmp_path):
    t0 = time.perf_counter()
    r = launch(nproc=2, epochs=2, source=str(shapes), size=32, bs=8, out=tmp_path/'bundle', weights=tmp_path/'w.pth', timeout=240, quiet=True)
    ranks = r['ranks']
    assert [o['rank'] for o in ranks] == [0, 1] and {o['backend'] for o in ranks} == {'gloo'} and {o['world_size'] for o in ranks} == {2}
    assert ranks[0]['state'] == ranks[1]['state'] and r['identical'], "the two replicas should end with the same weights"
    assert [o['items'] for o in ranks] == [16, 16], "each rank should see its half of the 36 items (batches of 8, the last one dropped)"
    assert ranks[0]['bundle'] == str(tmp_path/'bundle') and 'bundle' not in ranks[1], "only rank 0 exports"
    learn = default_recipe(shapes, size=32, bs=8)  # the same recipe here, with rank 0's weights
    learn.model.load_state_dict(torch.load(tmp_path/'w.pth', weights_only=True))
    assert state_digest(learn.model) == ranks[0]['state']
    report = verify_bundle(tmp_path/'bundle', learn)
    assert report.passed, str(report)
    print(f"2-process training + export: {r['seconds']:.1f} s; test {time.perf_counter()-t0:.1f} s")

def test_xdeploy_train_fails_every_rank_with_one_message_when_rank0_cannot_export(shapes, tmp_path):
    "`xdeploy train` to a folder that is not a bundle: rank 0's export fails after the fit, rank 1 (waiting for it) fails too, one message."
    (tmp_path/'taken').mkdir(); (tmp_path/'taken'/'notes.txt').write_text('mine')
    xdeploy = shutil.which('xdeploy') or sys.exit("xdeploy is not on PATH")
    r = run(xdeploy, 'train', '--source', shapes, '--nproc', '2', '--epochs', '1', '--size', '32', '--bs', '8', '--out', tmp_path/'taken',
            check=False, timeout=240)
    assert r.returncode == 1 and 'already exists' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert r.stderr.startswith('xdeploy train: ') and 'epoch 1/1' in r.stdout, (r.stdout, r.stderr)
    assert (tmp_path/'taken'/'notes.txt').read_text() == 'mine' and sorted(p.name for p in (tmp_path/'taken').iterdir()) == ['notes.txt']
