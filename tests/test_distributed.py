"Data-parallel training on 2 CPU processes (torchrun, gloo on 127.0.0.1): identical replicas, a verified bundle from rank 0."
import json, time
import pytest, torch
from conftest import run, console_script
from xdeploy_nb.data import make_image_folder
from xdeploy_nb.core import XDeployError
from xdeploy_nb.distributed import default_recipe, launch, state_digest
from xdeploy_nb.verify import verify_bundle

pytestmark = pytest.mark.slow(seconds=25)  # about how long this module takes (measured on an idle 2-core machine)

def xdeploy()->str: return console_script('xdeploy')

@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    "A small shapes folder: 3 classes, 12 training and 4 validation images each, 32 px."
    return make_image_folder(tmp_path_factory.mktemp('ddp')/'shapes', n_train=12, n_valid=4, size=32)

def test_xdeploy_train_on_two_processes_identical_replicas_and_rank0_exports_a_verified_bundle(shapes, tmp_path):
    "`xdeploy train --nproc 2`: both ranks end with the same weights, each saw half the items, rank 0 alone wrote the bundle, which verifies."
    t0 = time.perf_counter()
    r = run(xdeploy(), 'train', '--source', shapes, '--nproc', '2', '--epochs', '2', '--size', '32', '--bs', '8', '--out', tmp_path/'bundle',
            '--weights', tmp_path/'w.pth', '--timeout', '240', '--json', timeout=300)
    r = json.loads(r.stdout)
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
    print(f"xdeploy train on 2 processes: {r['seconds']:.1f} s in launch; test {time.perf_counter()-t0:.1f} s")

def test_rank0_export_error_fails_every_rank_with_rank0s_message(shapes, tmp_path):
    "A bundle path that is taken: rank 0's export fails after the fit, rank 1 (waiting for it) fails too, not hangs; the error is rank 0's."
    (tmp_path/'taken').mkdir(); (tmp_path/'taken'/'notes.txt').write_text('mine')
    t0 = time.perf_counter()
    with pytest.raises(XDeployError, match='already exists'):
        launch(nproc=2, epochs=1, source=str(shapes), size=32, bs=8, out=tmp_path/'taken', timeout=240, quiet=True)
    assert time.perf_counter() - t0 < 240
    assert sorted(p.name for p in (tmp_path/'taken').iterdir()) == ['notes.txt'] and (tmp_path/'taken'/'notes.txt').read_text() == 'mine'
