"""`python -m bench`: how close training and evaluation come to this machine's limit, in one process run.

1. The machine's GEMM rate (float32 `torch.mm`, best of several repeats): the bound every row is compared with.
2. Per bench, on data of the bench's shape resident in memory (speed does not depend on the pixel values):
   - `train`: the package's training loop (`pruning_repro.train.train`) with masks on (one magnitude-pruning level
     applied), examples/s, and the same steps through the reference per-example DataLoader + PIL pipeline
     (`bench/reference.py`); `data_share` is the fraction of the step spent producing the batch;
   - `eval`: per-example loss/correctness of the whole split (`pruning_repro.train.evaluate`);
   - `imp_level`: one full IMP level (prune, rewind, retrain every epoch, evaluate every split per example, store
     the result). Measured where it fits in minutes, else `projected` from the measured step time (column `how`);
   - variants tried to pick the package's defaults (optimizer implementation, memory format, one process per core
     versus one process with every core).
   Every row carries `bound_s` (FLOPs counted from the model ÷ GEMM rate; training = 3× the forward FLOPs) and
   `fraction_of_bound` = bound_s / seconds, and, where the reference ran, `speedup_vs_reference`.
3. Rows go to `bench/results/<date>-<device>.csv`, and a markdown table to `bench/results/latest-<device>.md`.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import sys
from pathlib import Path

import torch

from .core import RESULTS, Rows, bench_cifar, bench_lenet, gemm_rate, machine_info


def to_markdown(rows: list[dict], meta: dict) -> str:
    cols = ["bench", "what", "how", "seconds", "examples_per_s", "bound_s", "fraction_of_bound", "bound_1thread_s",
            "reference_s",
            "speedup_vs_reference", "data_share", "reference_data_share"]
    out = [f"# Speed on {meta['host']} ({meta['device']}, {meta['threads']} threads, torch {meta['torch']}) — "
           f"{meta['date']}", "",
           f"GEMM rate (float32, 2048²): **{meta['gemm_gflops']:.1f} GFLOP/s** with {meta['threads']} threads"
           + (f", {meta['gemm_gflops_1thread']:.1f} with one" if meta.get("gemm_gflops_1thread") else "")
           + f". `bound_s` = FLOPs ÷ the first rate (training FLOPs = 3 × forward), `bound_1thread_s` = FLOPs ÷ the "
           f"second. Command: `{meta['command']}`.", "",
           "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--benches", nargs="+", default=["lenet", "resnet20", "vgg16"], choices=["lenet", "resnet20", "vgg16"])
    p.add_argument("--quick", action="store_true", help="small sizes: checks the runner, numbers not meaningful")
    p.add_argument("--out", default=str(RESULTS), help="results folder")
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda asked but no CUDA device is available", file=sys.stderr); return 2
    device = torch.device(a.device)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rate = gemm_rate(1024 if a.quick else 2048, device=a.device)
    rate_1 = gemm_rate(1024 if a.quick else 2048, device=a.device, threads=1) if device.type == "cpu" else None
    print(f"GEMM rate: {rate / 1e9:.1f} GFLOP/s" + (f" ({rate_1 / 1e9:.1f} with one thread)" if rate_1 else ""),
          flush=True)
    rows = Rows(rate, device, rate_1)
    for name in a.benches:
        print(f"{name}:", flush=True)
        if name == "lenet": bench_lenet(rows, device, a.quick)
        else: bench_cifar(rows, device, a.quick, name)
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "device": str(device),
            "gemm_gflops": rate / 1e9, "gemm_gflops_1thread": rate_1 / 1e9 if rate_1 else None, "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
            **machine_info(device)}
    stem = f"{datetime.date.today()}-{device.type}" + ("-quick" if a.quick else "")
    keys = list(dict.fromkeys(k for r in rows.rows for k in r))
    with open(out / f"{stem}.csv", "w", newline="") as f:
        f.write("".join(f"# {k}: {v}\n" for k, v in meta.items()))
        w = csv.DictWriter(f, keys); w.writeheader(); w.writerows(rows.rows)
    (out / f"latest-{device.type}{'-quick' if a.quick else ''}.md").write_text(to_markdown(rows.rows, meta))
    print(f"wrote {out / (stem + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
