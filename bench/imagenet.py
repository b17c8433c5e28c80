"""`python -m bench.imagenet`: images/s of the ImageNet input pipeline, the old per-image PIL path against the batched one.

1. Files: `pruning_repro.formats.write_imagefolder` writes `--images` ImageNet-like JPEGs (`--classes` class folders)
   into a temporary ImageFolder tree: sides drawn around 500×375 (log-normal factor, σ 0.2; one in four portrait), smooth
   colour regions + mid-scale texture + grain, quality 90 (about 100 KB a file, as ImageNet's average), with one grey
   JPEG, one CMYK JPEG and one PNG named `.JPEG` among them, as real ImageNet has.
2. Per transform (train: RandomResizedCrop 224 + flip; eval: Resize 256 + CenterCrop 224) and per worker count
   (`--workers`; 0 = in the main process), full passes over the files, best of `--repeats` after one warm-up pass
   (the cases take turns, round after round), each batch made ready for the model (float32, normalised, on
   `--device`):
   - `reference`: the old `ImageFolderSplit` path: `ImageFolder`'s PIL loader + torchvision's PIL transforms
     (`RandomResizedCrop(224)`/`RandomHorizontalFlip`, `Resize(256)`/`CenterCrop(224)`) + `ToTensor` + `Normalize`, one
     image per `__getitem__`, float32 batches collated by a `DataLoader` built for every pass, as the old code did;
   - `batched`: `pruning_repro.imagenet.ImageFolderSplit` (whole uint8 batches per worker, libjpeg-turbo, persistent
     workers; float conversion and normalisation on the device);
   - `batched, GPU decode` (CUDA only): the same split with `decode="gpu"` (nvJPEG in the main process).
   Context rows: decoding alone (libjpeg-turbo `decode_jpeg`, PIL `Image.open(...).convert("RGB")`), in this process.
3. Rows go to `bench/results/imagenet-pipeline-<date>-<device>.csv` and `bench/results/latest-imagenet-<device>.md`.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pruning_repro.data import INFO
from pruning_repro.formats import write_imagefolder
from pruning_repro.imagenet import ImageFolderSplit, decode_rgb, loader_workers

RESULTS = Path(__file__).parent / "results"


class PILFiles(torch.utils.data.Dataset):
    "The old per-image path: a PIL image per example (ImageFolder's loader), torchvision's PIL transforms, float32."

    def __init__(self, folder, transform):
        self.folder, self.transform = folder, transform

    def __len__(self): return len(self.folder.samples)

    def __getitem__(self, i):
        return self.transform(self.folder.loader(self.folder.samples[i][0])), i


def reference_transforms():
    from torchvision import transforms as T
    info = INFO["imagenet"]
    norm = [T.ToTensor(), T.Normalize(info.mean, info.std)]
    return {"train": T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), *norm]),
            "eval": T.Compose([T.Resize(256), T.CenterCrop(224), *norm])}


def _sync(device):
    if device.type == "cuda": torch.cuda.synchronize(device)


def reference_pass(folder, transform, batch_size: int, workers: int, device, shuffle: bool) -> int:
    "One pass of the old path (a DataLoader built for the pass, as the old `batches` did); returns the images seen."
    dl = torch.utils.data.DataLoader(PILFiles(folder, transform), batch_size=batch_size, shuffle=shuffle,
                                     generator=torch.Generator().manual_seed(0), num_workers=workers,
                                     pin_memory=device.type == "cuda")
    n = 0
    for xb, idx in dl:
        xb = xb.to(device, non_blocking=True)
        n += len(xb)
    _sync(device)
    return n


def batched_pass(split: ImageFolderSplit, batch_size: int, train: bool, seed: int) -> int:
    "One pass of the batched path: a shuffled, augmented training pass or an evaluation pass in order."
    it = (split.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed)) if train
          else split.iterate({"order": torch.arange(len(split))}, batch_size, augment=False))
    n = 0
    for xb, yb, idx in it: n += len(xb)
    _sync(split.device)
    return n


def timed(cases: list[tuple[dict, callable]], repeats: int) -> None:
    """Time every case's pass `repeats` times into its row's `all_seconds` (the best is `min`), after one pass not
    counted (worker start, caches). Rounds go over all cases in turn, so a slow spell of a shared machine (this VM's
    pass times vary by 2-5x over tens of seconds) spreads over cases instead of spoiling one case's every repeat."""
    for row, fn in cases: fn(); row["all_seconds"] = []
    for r in range(repeats):
        for row, fn in cases:
            t = time.perf_counter(); fn(); row["all_seconds"].append(time.perf_counter() - t)
        print(f"  round {r + 1}/{repeats} done", flush=True)


def files_info(folder) -> dict:
    sizes = [os.path.getsize(p) for p, _ in folder.samples]
    dims = [Image.open(p).size for p, _ in folder.samples]
    return {"files": len(sizes), "mean_file_kb": round(float(np.mean(sizes)) / 1e3, 1),
            "mean_width": round(float(np.mean([d[0] for d in dims])), 1),
            "mean_height": round(float(np.mean([d[1] for d in dims])), 1)}


def decode_cases(folder) -> list[tuple[dict, callable]]:
    "Decoding alone, in this process: libjpeg-turbo through torchvision, and PIL."
    paths = [p for p, _ in folder.samples]
    datas = [torch.frombuffer(bytearray(Path(p).read_bytes()), dtype=torch.uint8) for p in paths]
    def tv():
        for d in datas: decode_rgb(d)
    def pil():
        for p in paths: Image.open(p).convert("RGB")
    return [({"path": "decode only: torchvision decode_jpeg (libjpeg-turbo)", "transform": "", "workers": 0}, tv),
            ({"path": "decode only: PIL open + convert RGB", "transform": "", "workers": 0}, pil)]


def measure(folder, device, workers: list[int], batch_size: int, repeats: int) -> list[dict]:
    n = len(folder.samples)
    labels = torch.tensor(folder.targets)
    tfs = reference_transforms()
    cases = decode_cases(folder)
    decodes = ["cpu"] + (["gpu"] if device.type == "cuda" else [])
    for w in workers:
        for kind in ("train", "eval"):
            cases.append(({"path": "reference (per-image PIL, float32)", "transform": kind, "workers": w,
                           "bytes_per_image_shipped": 3 * 224 * 224 * 4},
                          lambda w=w, kind=kind: reference_pass(folder, tfs[kind], batch_size, w, device, kind == "train")))
            for dec in decodes:      # one split per case: its loader and persistent workers live through the rounds
                split = ImageFolderSplit(folder, range(n), labels, train=True, workers=w, decode=dec).to(device)
                cases.append(({"path": "batched (uint8 batches)" + (", GPU decode" if dec == "gpu" else ""),
                               "transform": kind, "workers": w,
                               "bytes_per_image_shipped": (3 * 224 * 224) if dec == "cpu" else None},
                              lambda split=split, kind=kind: batched_pass(split, batch_size, kind == "train", 0)))
    timed(cases, repeats)
    rows = [row for row, _ in cases]
    ref = {(r["transform"], r["workers"]): min(r["all_seconds"]) for r in rows if r["path"].startswith("reference")}
    for r in rows:
        best = min(r["all_seconds"])
        r.update(device=str(device), batch_size=batch_size, images=n, seconds=round(best, 4),
                 images_per_s=round(n / best, 1), all_seconds=" ".join(f"{t:.3f}" for t in r["all_seconds"]))
        if r["path"].startswith("batched"): r["speedup_vs_reference"] = round(ref[r["transform"], r["workers"]] / best, 2)
        print(f"  {r['path']} {r['transform']} workers={r['workers']}: {r['images_per_s']} images/s"
              + (f" ({r['speedup_vs_reference']}x the reference)" if r.get("speedup_vs_reference") else ""))
    return rows


COLS = ["path", "transform", "workers", "batch_size", "images", "seconds", "images_per_s", "speedup_vs_reference",
        "bytes_per_image_shipped", "all_seconds"]


def to_markdown(rows: list[dict], meta: dict) -> str:
    out = [f"# ImageNet input pipeline on {meta['host']} ({meta['device']}, {meta['cpus']} CPUs, torch {meta['torch']}, "
           f"torchvision {meta['torchvision']}) — {meta['date']}", "",
           f"Files: {meta['files']} generated ImageNet-like JPEGs ({meta['classes']} classes, mean "
           f"{meta['mean_width']}×{meta['mean_height']} px, mean {meta['mean_file_kb']} KB, quality 90; one grey JPEG, "
           f"one CMYK JPEG, one PNG named .JPEG). Seconds: the best of {meta['repeats']} full passes after a warm-up "
           f"pass, the cases measured in turn in each round (`all_seconds`: every measured pass); every batch is "
           f"made ready for the model (float32, normalised, on {meta['device']}). `workers` 0 = in the main process; "
           f"the package's default here is {meta['default_workers']} (`loader_workers()`). "
           f"Command: `{meta['command']}`.", "",
           "| " + " | ".join(COLS) + " |", "|" + "---|" * len(COLS)]
    for r in rows:
        out.append("| " + " | ".join("" if r.get(c) in (None, "") else str(r.get(c)) for c in COLS) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.imagenet", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda adds the GPU-decoding rows)")
    p.add_argument("--images", type=int, default=1000, help="files generated")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, nargs="+", default=None,
                   help="loader worker counts to measure (default: 0 and the package's default, loader_workers())")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS), help="results folder")
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda asked but no CUDA device is available", file=sys.stderr); return 2
    device = torch.device(a.device)
    workers = a.workers if a.workers is not None else sorted({0, loader_workers()})
    from torchvision import __version__ as tv_version
    from torchvision.datasets import ImageFolder
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_imagefolder(tmp, n_train=a.images // a.classes, n_val=1, classes=a.classes, size=(375, 500),
                          seed=0, odd=True)
        folder = ImageFolder(str(Path(tmp) / "imagenet" / "train"))
        info = files_info(folder)
        print(f"{info['files']} files written in {time.perf_counter() - t:.1f}s: mean {info['mean_width']}x"
              f"{info['mean_height']} px, {info['mean_file_kb']} KB", flush=True)
        rows = measure(folder, device, workers, a.batch_size, a.repeats)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "device": str(device),
            "command": "python -m bench.imagenet " + " ".join(argv if argv is not None else sys.argv[1:]),
            "host": platform.node(), "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "torchvision": tv_version, "python": platform.python_version(), "classes": a.classes,
            "repeats": a.repeats, "default_workers": loader_workers(), **info}
    if device.type == "cuda": meta["gpu"] = torch.cuda.get_device_name(device)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = f"imagenet-pipeline-{datetime.date.today()}-{device.type}"
    with open(out / f"{stem}.csv", "w", newline="") as f:
        f.write("".join(f"# {k}: {v}\n" for k, v in meta.items()))
        w = csv.DictWriter(f, ["device", *COLS]); w.writeheader()
        w.writerows({k: r.get(k) for k in ["device", *COLS]} for r in rows)
    (out / f"latest-imagenet-{device.type}.md").write_text(to_markdown(rows, meta))
    print(f"wrote {out / (stem + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
