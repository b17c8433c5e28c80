"""ImageNet's streamed splits on real files: a tiny ImageFolder tree of JPEGs (with a grey JPEG, a CMYK JPEG and a PNG
named .JPEG) written by `formats.write_imagefolder` under $PRUNING_REPRO_DATA/imagenet/{train,val}."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from pruning_repro import formats as FM
from pruning_repro import data as D
from pruning_repro import imagenet as I
from pruning_repro.config import ConfigError, DataSpec, ModelSpec, get_bench
from pruning_repro.leave_out import example_images
from pruning_repro.models import build_model
from pruning_repro.store import Store

MEAN = torch.tensor(D.INFO["imagenet"].mean).view(1, 3, 1, 1)
STD = torch.tensor(D.INFO["imagenet"].std).view(1, 3, 1, 1)


@pytest.fixture
def tree(isolated):
    "3 classes × (8 training + 3 validation) files, sides around 96×128 (some portrait)."
    FM.write_imagefolder(isolated / "data", n_train=8, n_val=3, classes=3, size=(96, 128), seed=1)
    return isolated / "data" / "imagenet"


def whole(train: bool = True, workers: int = 0) -> I.ImageFolderSplit:
    "A split of every file of the training (or validation) tree."
    tr, va = I.imagenet_folders()
    f = tr if train else va
    return I.ImageFolderSplit(f, range(len(f)), torch.tensor(f.targets), train=train, workers=workers)


def pixels(x: torch.Tensor) -> torch.Tensor:
    "Undo the normalisation: the uint8 values the batch was made from (as floats)."
    return (x * STD + MEAN) * 255


def same(a, b):
    for u, v in zip(a, b, strict=True): assert torch.equal(u, v)


def test_batches_are_normalised_uint8_views(tree):
    s = whole()
    assert len(s) == 24 and s.ids.tolist() == list(range(24))
    x, y, idx = next(s.batches(7, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (7, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.long
    assert torch.equal(y, s.y[idx]) and len(set(idx.tolist())) == 7
    v = pixels(x)
    assert torch.allclose(v, v.round(), atol=1e-3) and v.min() > -1e-3 and v.max() < 255 + 1e-3
    # evaluation: a plan of positions only, a batch larger than the split, one batch
    ev = whole(train=False)
    xs, ys, ids = zip(*ev.iterate({"order": torch.arange(2, 9)}, 512, augment=False))
    assert len(xs) == 1 and xs[0].shape == (7, 3, 224, 224) and torch.equal(ids[0], torch.arange(2, 9))
    # the grey JPEG (first file of the first class) comes out as three equal channels
    g = pixels(s.images([0]))[0].round()
    assert torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])


def test_augmentation_does_not_depend_on_workers(tree):
    p = whole().plan(True, torch.Generator().manual_seed(3))
    in_process = list(whole(workers=0).iterate(p, 5))
    two = whole(workers=2)
    same(sum(in_process, ()), sum(list(two.iterate(p, 5)), ()))
    loader = two._idle[0][0]
    same(sum(in_process, ()), sum(list(two.iterate(p, 5)), ()))         # the persistent loader, again
    assert len(two._idle) == 1 and two._idle[0][0] is loader
    other = list(whole(workers=0).iterate({**p, "aug_seed": p["aug_seed"] + 1}, 5))
    assert not torch.equal(other[0][0], in_process[0][0])               # another seed, other crops
    assert torch.equal(other[0][2], in_process[0][2])                   # same order


def test_resume_is_the_tail_of_the_pass(tree):
    s = whole()
    p = s.plan(True, torch.Generator().manual_seed(1))
    full = list(s.iterate(p, 5))
    assert [len(b[2]) for b in full] == [5, 5, 5, 5, 4]
    for b in (1, 4):
        same(sum(full[b:], ()), sum(list(s.iterate(p, 5, start=b)), ()))
    assert list(s.iterate(p, 5, start=5)) == []


def test_shards_make_up_the_batch(tree):
    s = whole()
    p = s.plan(True, torch.Generator().manual_seed(2))
    full = list(s.iterate(p, 7))                                         # 7, 7, 7, 3
    for world in (2, 3):
        parts = [list(s.iterate(p, 7, shard=(r, world))) for r in range(world)]
        assert {len(q) for q in parts} == {len(full)}                   # every rank takes every step
        for b, batch in enumerate(full):
            same(batch, [torch.cat(t) for t in zip(*(q[b] for q in parts))])
    empty = list(s.iterate(p, 7, shard=(2, 5)))[-1]                      # last batch of 3 over 5 ranks: rank 2 has one
    assert empty[0].shape == (1, 3, 224, 224)
    assert list(s.iterate(p, 7, shard=(4, 5)))[-1][0].shape == (0, 3, 224, 224)


def test_plan_round_trips_through_safetensors(tree, tmp_path):
    s = whole()
    p = s.plan(True, torch.Generator().manual_seed(4))
    assert sorted(p) == ["aug_seed", "order"] and p["aug_seed"].dtype == torch.int64
    save_file(p, tmp_path / "plan.safetensors")
    same(sum(list(s.iterate(p, 8, start=1)), ()), sum(list(s.iterate(load_file(tmp_path / "plan.safetensors"), 8, start=1)), ()))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    list(s.iterate(s.plan(True, g1), 8))
    s.plan(True, g2)
    assert torch.equal(g1.get_state(), g2.get_state())                 # iterate draws nothing from a generator


def test_exclude_ids_after_the_noise(tree):
    d = D.load_data(DataSpec("imagenet", n_val=4, noise=0.5, augment=True), seed=0)
    drop = tuple(d.train.ids[[1, 5, 6]].tolist())
    e = D.load_data(DataSpec("imagenet", n_val=4, noise=0.5, augment=True, exclude_ids=drop), seed=0)
    keep = ~torch.isin(d.train.ids, torch.tensor(drop))
    assert len(e.train) == 17 and torch.equal(e.train.ids, d.train.ids[keep])
    assert torch.equal(e.train.y, d.train.y[keep]) and torch.equal(e.clean_y, d.clean_y[keep])
    assert torch.equal(e.noisy, d.noisy[keep]) and int(d.noisy.sum()) == 10
    assert torch.equal(e.val.ids, d.val.ids) and torch.equal(e.test.ids, d.test.ids)
    assert e.train.paths.tolist() == d.train.paths[keep.numpy()].tolist()   # the files read are the kept ones


def test_example_images_on_imagenet(tree):
    b = get_bench("resnet50_imagenet", "smoke")
    from dataclasses import replace
    spec = b.run_spec(0.2, 0, data=replace(b.data, n_val=4), model=ModelSpec("resnet50", width=0.0625))
    st, net = Store(D.data_root().parent / "store"), build_model(spec.model, D.data_info("imagenet")).eval()
    st.save_level(spec, 0, {"val_err": 0.5}, {}, net.state_dict(), {})
    d = D.load_data(spec.data, spec.seed)
    x, y, pred = example_images([spec], st, d.train.ids[[3, 0, 7]], levels=[0])
    assert torch.equal(x, d.train.images([3, 0, 7])) and torch.equal(y, d.train.y[[3, 0, 7]])
    with torch.no_grad(): assert torch.equal(pred, net(x).argmax(1))


def test_views_match_pil(tree):
    """The batched path against the PIL transforms of the old per-image path, on every file (grey, CMYK, PNG
    included): torch's antialiased uint8 bilinear kernel is a port of PIL's, decoding is libjpeg-turbo in both, but
    the two round differently. Measured on 60 generated 500×375-like files: at most 1 grey level apart, a mean of
    0.006 (evaluation) and 0.03 (training) levels, up to 0.25 on an image whose crop is enlarged. Tolerance per image:
    2 levels max, 0.5 mean."""
    from torchvision import transforms as T
    tr, _ = I.imagenet_folders()
    s = whole()
    ev = pixels(next(s.iterate({"order": torch.arange(24)}, 24, augment=False))[0]).round()
    pil_eval = T.Compose([T.Resize(256), T.CenterCrop(224)])
    for k, (path, _) in enumerate(tr.samples):
        img = Image.open(path).convert("RGB")
        ref = torch.from_numpy(np.array(pil_eval(img))).permute(2, 0, 1).float()
        diff = (ev[k] - ref).abs()
        assert diff.max() <= 2 and diff.mean() < 0.5, (path, diff.max(), diff.mean())
        # the training view: the same crop and flip through PIL
        u = I.aug_draws(9, 0, k)
        t, l, h, w = I.rrc_params(u[:40].reshape(10, 4), img.height, img.width)
        ref = img.crop((l, t, l + w, t + h)).resize((224, 224), Image.BILINEAR)
        ref = torch.from_numpy(np.array(ref.transpose(Image.FLIP_LEFT_RIGHT) if u[40] < 0.5 else ref)).permute(2, 0, 1)
        mine = I.train_view(I.decode_rgb(I._read(path)), u)
        diff = (mine.int() - ref.int()).abs()
        assert diff.max() <= 2 and diff.float().mean() < 0.5, (path, diff.max(), diff.float().mean())


def test_gpu_decode_path_on_cpu(tree):
    """The main-process half of GPU decoding (bytes from the workers, decoded and cropped where the split lives), run
    on the CPU: the same batch as the workers' CPU decoding. nvJPEG itself needs a GPU and is not tested here."""
    s = whole()
    pos, offsets = np.array([4, 0, 1, 2, 23]), np.array([3, 4, 5, 6, 7])
    ref = I.load_batch(s.paths, pos, 2, offsets, 11, True)
    assert torch.equal(s._on_device(I.read_batch(s.paths, pos), 2, torch.from_numpy(offsets), 11, True), ref)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        next(I.ImageFolderSplit(s.folder, s.rows, s.y, True, workers=0, decode="gpu").batches(4))
    with pytest.raises(ConfigError, match="choose auto, cpu or gpu"):
        I.ImageFolderSplit(s.folder, s.rows, s.y, True, decode="nvjpeg")


def test_loader_workers_follow_the_allocation(monkeypatch):
    for k in ("PRUNING_REPRO_LOADER_WORKERS", "SLURM_CPUS_PER_TASK", "SLURM_CPU_BIND_TYPE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(D.os, "sched_getaffinity", lambda pid: set(range(16)))     # e.g. a Slurm job's 16 CPUs
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")         # shared by 4 ranks (torchrun, an unbound srun): divided
    assert I.loader_workers() == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert I.loader_workers() == 0
    # srun --ntasks-per-node 4 --cpus-per-task 16: Slurm bound this rank to its own 16 CPUs: not divided again
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4"); monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")
    assert I.loader_workers() == 15
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")     # affinity wider than the task's share: the ranks share it
    assert I.loader_workers() == 3
    monkeypatch.setenv("SLURM_CPU_BIND_TYPE", "mask_cpu:")        # srun set this task's own CPU mask
    assert I.loader_workers() == 15
    monkeypatch.setenv("PRUNING_REPRO_LOADER_WORKERS", "5")
    assert I.loader_workers() == 5


def test_open_passes_and_pickling(tree):
    "A pass opened while another is still open gets its own loader; a split with live loaders pickles without them."
    s = whole(workers=1)
    p = s.plan(True, torch.Generator().manual_seed(6))
    ref = list(whole().iterate(p, 6))
    outer = s.iterate(p, 6)
    first = next(outer)
    inner = list(s.iterate(p, 6))                                        # e.g. an evaluation inside an epoch
    same(sum([first, *outer], ()), sum(ref, ()))
    same(sum(inner, ()), sum(ref, ()))
    assert len(s._idle) == 2
    for _ in s.iterate(p, 6): break                                      # a pass left after one batch (SNIP's use)
    same(sum(list(s.iterate(p, 6)), ()), sum(ref, ()))                  # the next pass on that loader is whole
    t = pickle.loads(pickle.dumps(s))
    assert t._idle == [] and torch.equal(t.y, s.y) and t.paths.tolist() == s.paths.tolist()


def test_unreadable_file_is_named(tree):
    bad = tree / "train" / "n00000001" / "n00000001_3.JPEG"
    bad.write_bytes(b"\xff\xd8 truncated")
    s = whole(workers=1)
    with pytest.raises(D.DataError, match="n00000001_3.JPEG: not a readable image"):
        list(s.iterate({"order": torch.arange(len(s))}, 8, augment=False))
