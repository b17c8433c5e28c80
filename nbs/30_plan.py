# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Plans: what a study would train, before it trains
#
# > The runs, levels, epochs, examples, FLOPs and hours a study still lacks, counted without data; the throughput they are priced at.

# %%
#| default_exp plan

# %% [markdown]
# `14_sweep` names a study's runs; this chapter prices them. A dry run (`pruning-repro sweep --dry-run`) prints
# `study_plan`'s count before anything is submitted, so a cluster user sees the hours a study costs before spending
# them, on a login node that has no data.

# %%
#| export
from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

from pruning_repro.config import ConfigError, RunKey, RunSpec
from pruning_repro.sweep import (SECTION_AFTER, check_sections, dependent_runs, runs_appK2, section_noise, section_runs,
                                 study_runs)

# %%
#| hide
from fastcore.test import test_eq, test_fail
from pruning_repro.config import get_bench
from pruning_repro.sweep import imp_runs

_b = get_bench("lenet_mnist1d", "smoke")


# %% [markdown]
# ## What a study costs
#
# Before a study goes to a cluster, `study_cost` says what it would train, without reading any data (a login node
# often has none): the runs, the pruning levels and epochs still missing from the store, and the floating-point
# operations — 3 × the forward FLOPs (`models.forward_flops`) per training example and epoch, plus one forward pass
# over every split per level for the per-example evaluation. Counts are dense: masks zero weights but a GPU still
# multiplies them. A variant's dense level that its dense root (`imp.dense_root`) provides is counted once, where it is
# trained. The retrainings of App. D, E and K are named by the first stage's results, so they are counted once
# those exist; before that, `study_plan` counts them from the plan's rule (below).

# %%
#| export
def _cost() -> dict: return {"runs": 0, "levels": 0, "epochs": 0, "examples": 0, "flops": 0.0}

def _levels_to_train(specs: dict, store) -> list[tuple]:
    """(key, spec, levels) of what training `specs` would train: the levels each lacks, a variant's missing dense level
    in its dense root (`imp.dense_root`), each root once."""
    from pruning_repro.imp import dense_root
    work, roots = [], set()
    for label, spec in specs.items():
        lvs = store.levels_to_train(spec)
        if not lvs: continue
        if lvs[0] == 0 and spec.prune.levels > 0 and dense_root(spec) != spec:
            lvs, root = lvs[1:], dense_root(spec)           # the shared dense level: trained once, in its root
            if root.hash() not in roots and not store.level_ok(root, 0):
                roots.add(root.hash()); work.append((label, root, [0]))
        work.append((label, spec, lvs))
    return work


# %%
from pruning_repro.store import Store
import tempfile
from pruning_repro.imp import dense_root
_j = study_runs(_b, ["appJ_ablations"], (0,), (0.3,))
with tempfile.TemporaryDirectory() as _d: _w = _levels_to_train(_j, Store(_d))
# four variants at one (noise, seed) share one dense root: its level 0 once, then each variant's pruned levels
test_eq([lvs for _, _, lvs in _w], [[0]] + [list(range(1, _b.prune.levels + 1))] * 4)
test_eq(_w[0][1], dense_root(next(iter(_j.values()))))


# %%
#| export
def study_cost(specs: dict[Hashable, RunSpec], store, group=None) -> dict:
    """What training the runs of `specs` ({key: RunSpec}: `RunKey`s, or `study_plan`'s (stage, `RunKey`)) that `store`
    lacks would take: runs, levels, epochs, training examples processed and FLOPs (both None when a data set declares
    no sizes), without reading the data. `group(key)` names each run's group: the same counts per group under
    "groups" (a shared dense level is counted in the group of the first run that needs it)."""
    from pruning_repro.data import data_info, split_sizes
    from pruning_repro.models import forward_flops
    work = _levels_to_train(specs, store)
    total, groups = _cost(), {}
    for label, spec in specs.items():
        if not store.is_complete(spec):
            total["runs"] += 1
            if group is not None: groups.setdefault(group(label), _cost())["runs"] += 1
    for label, s, lvs in work:
        sizes, per_example = split_sizes(s.data), forward_flops(s.model, data_info(s.data.dataset))
        seen = s.train.steps_per_epoch * s.train.batch_size if s.train.steps_per_epoch else sizes and sizes[0]
        for c in (total, *((groups.setdefault(group(label), _cost()),) if group is not None else ())):
            for lv in lvs:
                ep = s.train.epochs if lv == 0 else s.train.epochs - s.prune.rewind_epoch
                c["levels"], c["epochs"] = c["levels"] + 1, c["epochs"] + ep
                c["examples"] = None if c["examples"] is None or seen is None else c["examples"] + seen * ep
                if c["flops"] is None or sizes is None: c["flops"] = None; continue
                c["flops"] += 3 * per_example * seen * ep + per_example * sum(sizes)
    if group is not None: total["groups"] = groups
    return total


# %%
from pruning_repro.store import Store
import tempfile
with tempfile.TemporaryDirectory() as _d:
    _c = study_cost(study_runs(_b, ["sec4_noise"], (0,), (0.3,)), Store(_d))
# one IMP trajectory (2 epochs on level 0, 2 on each of 3 pruned levels) and 2 EL2N models of 1 epoch each
test_eq((_c["runs"], _c["levels"], _c["epochs"]), (3, 4 + 2, 4 * 2 + 2 * 1))
_r50 = get_bench("resnet50_imagenet")
with tempfile.TemporaryDirectory() as _d:
    _c50 = study_cost(imp_runs(_r50, (0,), (0.0,)), Store(_d))
# one ResNet-50 trajectory: 90 + 9 x 80 epochs, ~25 EFLOP (3 x 8.2 GFLOP x 1.23M images x 810 epochs, + evaluation)
test_eq((_c50["levels"], _c50["epochs"]), (10, 90 + 9 * 80))
assert 2.4e19 < _c50["flops"] < 2.6e19, _c50
_c50


# %% [markdown]
# ## A cost plan before a sweep
#
# A dry run that left out the retrainings of App. D, E and K would leave out about a fifth of a full study's epochs.
# Their examples are chosen by the first stage's results, but their number and epochs are fixed by each section's
# rule (`SECTION_AFTER`), so `planned_retrainings` counts them from the rule alone — stand-in specs with the epochs
# and the examples per epoch the real ones will have, per noise level and seed:
#
# * **App. D**: per pruning level 1…L, two dense runs (TIE, RND) of the bench's epochs on 80% of the training set;
# * **App. E**: per level 0…L, one dense run with the dense run's steps per epoch (as many examples as a full epoch);
# * **App. K.2** (on `runs_appK2` benches): per level 1…L, two dense runs (TW, Rand) on 40% of the training set.
#
# This is the plan's upper bound, and its exact count but for two cases the results decide: App. E skips a level
# whose model fits every training example, and two retrainings that happen to select the same examples train once.
#
# `study_plan` adds the hours: training examples × seconds per training example of the bench, from a results file of
# `python -m bench` (`read_throughput`: a CSV with columns bench, what, seconds, examples — its first `train …` row
# per bench — or a markdown table with columns bench, what, seconds, examples/s — its `train epoch` rows), or, with
# none, from a short probe on the device at hand (`probe_throughput`: a few SGD steps of the bench's model on
# synthetic inputs, no data read). Evaluation (one forward pass over the splits per level: under 1% of a ResNet-50
# level, a few % of LeNet's) and the stores' writes are not counted.

# %%
#| export
def _stand_in(spec: RunSpec, n_examples: int | None) -> RunSpec:
    "A dense stand-in of `spec` seeing `n_examples` per epoch (its batches: `TrainSpec.steps_per_epoch`; None: unknown)."
    from dataclasses import replace
    steps = -(-n_examples // spec.train.batch_size) if n_examples is not None else None
    return replace(spec, prune=replace(spec.prune, levels=0), train=replace(spec.train, steps_per_epoch=steps))


# %%
_st = _stand_in(_b.run_spec(0.3, 0), 1000)
test_eq((_st.prune.levels, _st.train.steps_per_epoch), (0, -(-1000 // _b.train.batch_size)))
test_eq(_stand_in(_b.run_spec(), None).train.steps_per_epoch, None)


# %%
#| export
def planned_retrainings(b, sections, seeds, noise_levels=None) -> dict[RunKey, RunSpec]:
    """Stand-ins ({RunKey: RunSpec}) for the App. D, E, K retrainings of `sections` while their first stage is not in
    the store: each dense, with the epochs and the examples per epoch (`TrainSpec.steps_per_epoch`) the real one will
    have (see above)."""
    from pruning_repro.data import split_sizes
    out = {}
    for sec in check_sections(sections):
        if sec not in SECTION_AFTER or (sec == "appK_examples" and not runs_appK2(b)): continue
        for p in section_noise(sec, b, noise_levels):
            for s in seeds:
                spec = b.run_spec(p, s)
                sizes = split_sizes(spec.data)
                n = sizes[0] if sizes else None
                L = b.prune.levels
                if sec == "appD_leave_out":     # `leave_out.tie_rnd_specs`: 20% left out
                    for lv in range(1, L + 1):
                        for k in ("TIE", "RND"):
                            out[RunKey(b.name, "App. D", p, s, level=lv, kind=k)] = \
                                _stand_in(spec, None if n is None else n - int(round(0.2 * n)))
                elif sec == "appE_dense_subset":    # `leave_out.dense_subset_spec`: the dense run's steps
                    for lv in range(0, L + 1):
                        out[RunKey(b.name, "App. E", p, s, level=lv)] = _stand_in(spec, n)
                else:                               # `leave_out.top_worsened_specs`: 40% subsamples
                    for lv in range(1, L + 1):
                        for k in ("TW", "Rand"):
                            out[RunKey(b.name, "App. K", p, s, level=lv, kind=k)] = \
                                _stand_in(spec, None if n is None else int(round(0.4 * n)))
    return out


# %% [markdown]
# The plan's rule, counted for the MNIST-1D smoke bench (3 pruning levels, one seed, its App. E at its noisy levels):

# %%
_pr = planned_retrainings(_b, ["appD_leave_out", "appE_dense_subset", "appK_examples"], (0,))
_L, _nE = _b.prune.levels, len(section_noise("appE_dense_subset", _b))
test_eq(sorted({k.algorithm for k in _pr}), ["App. D", "App. E", "App. K"])
test_eq(len(_pr), 2 * _L + _nE * (_L + 1) + 2 * _L)
assert all(v.prune.levels == 0 for v in _pr.values())


# %%
#| export
def _num(x: str) -> float: return float(x.replace(",", "").strip())

def _throughput_rows(path, lines: list[str]) -> list[tuple]:
    "(bench, what, seconds per training example) of each training row of a results file's `lines` (see `read_throughput`)."
    import csv
    rows = []
    try:
        if path.suffix == ".md":
            table = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines if l.strip().startswith("|")]
            head = [h.lower() for h in table[0]] if table else []
            if not {"bench", "what", "seconds", "examples/s"} <= set(head): raise KeyError("columns")
            for r in table[1:]:
                d = dict(zip(head, r))
                if d["what"].startswith("train epoch") and d["examples/s"]:
                    rows.append((d["bench"], d["what"], 1 / _num(d["examples/s"])))
        else:
            data = list(csv.DictReader(l for l in lines if l.strip() and not l.startswith("#")))
            if not data or not {"bench", "what", "seconds", "examples"} <= set(data[0]): raise KeyError("columns")
            for d in data:
                if d["what"].startswith("train") and d["seconds"] and d["examples"]:
                    rows.append((d["bench"], d["what"], _num(d["seconds"]) / _num(d["examples"])))
    except (KeyError, ValueError, ZeroDivisionError):
        raise ConfigError(f"throughput file {str(path)!r}: expected a CSV with columns bench, what, seconds, examples "
                          f"(or a markdown table with bench, what, seconds, examples/s) and numbers in them") from None
    return rows


# %%
test_eq(_throughput_rows(Path("r.csv"), ["# c", "bench,what,seconds,examples", "x,train epoch,2,1000", "x,eval,1,10"]),
        [("x", "train epoch", 0.002)])
test_eq(_throughput_rows(Path("r.md"), ["| bench | what | seconds | examples/s |", "|---|---|---|---|",
                                        "| x | train epoch bf16 | 1 | 2,000 |"]), [("x", "train epoch bf16", 0.0005)])
test_fail(lambda: _throughput_rows(Path("r.csv"), ["bench,what", "x,train"]), contains="expected a CSV")


# %%
#| export
def read_throughput(path, precision: str = "fp32") -> dict:
    """{bench: (seconds per training example, what the row says)} from a results file of `python -m bench`: a CSV
    (comment lines `#`; columns bench, what, seconds, examples; per bench its first row whose `what` starts with
    'train') or a markdown table (columns bench, what, seconds, examples/s; its 'train epoch' rows). A bench with a
    row naming `precision` (e.g. 'train epoch bf16') takes that row."""
    path = Path(path)
    if not path.is_file(): raise ConfigError(f"throughput file {str(path)!r} is not a readable file")
    rows = _throughput_rows(path, path.read_text(errors="replace").splitlines())
    out, other = {}, {"fp32", "bf16"} - {precision}
    for bench in dict.fromkeys(r[0] for r in rows):
        mine = [(spe, what) for b_, what, spe in rows if b_ == bench]
        pick = next((r for r in mine if precision in r[1]), None) or \
            next((r for r in mine if not any(o in r[1] for o in other)), None)
        if pick: out[bench] = pick
    if not out: raise ConfigError(f"throughput file {str(path)!r} has no training row (`what` starting with 'train')")
    return out

def _probe_batch(spec: RunSpec, dev) -> int:
    "The batch a probe times: on a GPU the bench's, or one rank's share where its step does not fit; 4 on the CPU."
    from pruning_repro.placement import gpu_memory, train_step_bytes
    if dev.type != "cuda": return min(4, spec.train.batch_size)
    ranks, mem = 1, gpu_memory()
    while mem and ranks < spec.train.batch_size and train_step_bytes(spec, ranks) > mem: ranks *= 2
    return -(-spec.train.batch_size // ranks)


# %%
import torch
test_eq(_probe_batch(_b.run_spec(), torch.device("cpu")), min(4, _b.train.batch_size))


# %%
#| export
def probe_throughput(b, device=None, steps: int = 2, batch: int | None = None) -> tuple[float, str]:
    """(seconds per training example, what was timed) of bench `b`'s model: `steps` SGD steps (after one warm-up)
    on synthetic inputs on `device` (default: where its runs train), batch `batch` (default: the bench's on a GPU,
    whose memory `placement.train_step_bytes` allows; 4 on the CPU). Reads no data."""
    import time
    import torch
    import torch.nn.functional as F
    from pruning_repro.data import data_info
    from pruning_repro.models import build_model
    from pruning_repro.placement import run_device
    spec, info = b.run_spec(), data_info(b.data.dataset)
    dev = torch.device(run_device(spec, device))
    batch = batch or _probe_batch(spec, dev)
    model = build_model(spec.model, info).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, *info.input_shape, device=dev)
    y = torch.randint(0, info.num_classes, (batch,), device=dev)
    bf16 = spec.train.precision == "bf16" and dev.type == "cuda"
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, torch.bfloat16, enabled=bf16): loss = F.cross_entropy(model(x).float(), y)
        loss.backward(); opt.step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    step(); sync()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    sync()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return (time.perf_counter() - t0) / (steps * batch), f"probe: {steps} steps of batch {batch} on {name}"


# %% [markdown]
# The probe trains a bench's model for a few steps on random inputs: `tests/test_gpu_plan.py` runs it and a dry run
# that uses it, not this chapter.

# %%
#| export
def _rate(b, throughput, device) -> tuple:
    """(seconds per training example, its source) of bench `b`: from `throughput` (a results file, `read_throughput`;
    a probe where it has no row for `b`), a probe (`probe_throughput`) when it is 'probe', (None, None) when None."""
    if throughput is None: return None, None
    if throughput == "probe": return probe_throughput(b, device)
    rates = read_throughput(throughput, b.train.precision)
    if b.name in rates: return rates[b.name][0], f"{throughput}: {rates[b.name][1]}"
    spe, source = probe_throughput(b, device)
    return spe, source + f" ({b.name} has no row in {throughput})"


# %%
test_eq(_rate(_b, None, None), (None, None))


# %%
#| export
def _named_retrainings(b, sections, seeds, noise_levels, store) -> dict[RunKey, RunSpec]:
    "The App. D/E/K retrainings the store's complete first stage names (`dependent_runs`), each spec once."
    after, seen = {}, set()
    for sec in sections:
        for k, v in dependent_runs(sec, b, seeds, section_noise(sec, b, noise_levels), store).items():
            if v.hash() not in seen: seen.add(v.hash()); after[k] = v
    return after


# %%
#| export
def study_plan(b, sections, seeds, noise_levels, store, throughput=None, device=None) -> dict:
    """The cost plan of a study before a sweep, without reading data: `study_cost` of the runs the store lacks, the
    App. D/E/K retrainings included (named from the store when the first stage is complete, else counted by
    `planned_retrainings`), per section (a run shared by sections counts in the first that names it) and in total,
    with hours = training examples × seconds per example: from `throughput` (a results file, `read_throughput`),
    else a probe (`probe_throughput`) when `throughput` is 'probe', else none."""
    from pruning_repro.study import check_spec
    sections = check_sections(sections)
    first = study_runs(b, sections, seeds, noise_levels)
    for v in first.values(): check_spec(v)
    section_of = {}
    for sec in sections:
        for v in section_runs(sec, b, seeds, section_noise(sec, b, noise_levels)).values():
            section_of.setdefault(v.hash(), sec)
    complete = all(store.is_complete(v) for v in first.values())
    after = (_named_retrainings(b, sections, seeds, noise_levels, store) if complete
             else planned_retrainings(b, sections, seeds, noise_levels))
    sec_after = {"App. D": "appD_leave_out", "App. E": "appE_dense_subset", "App. K": "appK_examples"}
    specs = {("1", k): v for k, v in first.items()} | {("2", k): v for k, v in after.items()}
    group = lambda lab: (sec_after[lab[1].algorithm] if lab[0] == "2" else section_of[specs[lab].hash()])
    cost = study_cost(specs, store, group)
    retr = study_cost({k: v for k, v in specs.items() if k[0] == "2"}, store)
    spe, source = _rate(b, throughput, device)
    hours = lambda c: None if spe is None or c["examples"] is None else c["examples"] * spe / 3600
    for c in (cost, retr, *cost["groups"].values()): c["hours"] = hours(c)
    cost["sections"] = {sec: cost["groups"].get(sec, {**_cost(), "hours": hours(_cost())}) for sec in sections}
    del cost["groups"]
    cost.update(bench=b.name, retrainings=retr, retrainings_counted="named" if complete else "planned",
                seconds_per_example=spe, source=source)
    return cost


# %% [markdown]
# `study_plan` is checked on the MNIST-1D smoke bench below, with a throughput file; `plan_text` prints it.

# %%
#| export
def plan_text(c: dict) -> str:
    "The lines a dry run prints for `study_plan`'s cost `c`: per section, the retrainings, and the bench's total."
    cpu = c["source"] is not None and c["source"].startswith("probe") and c["source"].split(" (")[0].endswith(" cpu")
    unit = "CPU-hours" if cpu else "GPU-hours"
    h = lambda x: "?" if x.get("hours") is None else f"{x['hours']:,.1f}"
    row = lambda name, x: f"  {name:<38} {x['runs']:>7,} {x['epochs']:>9,} {h(x):>12}"
    rate = (f"{c['seconds_per_example']:.3g} s per training example ({c['source']})"
            if c["seconds_per_example"] is not None else "no throughput given")
    lines = [f"cost plan of {c['bench']}, the runs the store lacks; {unit} = training examples x {rate}"
             + ("; a GPU's hours need a measured throughput: --throughput-from bench/results/<file>" if cpu else ""),
             f"  {'section':<38} {'runs':>7} {'epochs':>9} {unit:>12}"]
    lines += [row(sec, x) for sec, x in c["sections"].items()]
    lines.append(row(f"  of which retrainings ({c['retrainings_counted']})", c["retrainings"]))
    lines.append(row(f"{c['bench']} (all sections)", c))
    return "\n".join(lines)


# %% [markdown]
# The MNIST-1D smoke bench's App. D with one seed, before its IMP run exists: 3 pruning levels × (TIE, RND) = 6
# retrainings of 2 epochs each on 80% of the training set; at 1 ms per example (a throughput file) the hours are
# examples × 0.001 / 3600.

# %%
from fastcore.test import test_close
from pruning_repro.data import split_sizes
with tempfile.TemporaryDirectory() as _d:
    _f = Path(_d) / "t.csv"
    _f.write_text("# a results file\nbench,what,seconds,examples\nlenet_mnist1d,train epoch (masks on),9.6,9600\n")
    _p = study_plan(_b, ["appD_leave_out"], (0,), None, Store(_d), throughput=_f)
_n_train = split_sizes(_b.run_spec().data)[0]
test_eq((_p["retrainings"]["runs"], _p["retrainings"]["epochs"]), (2 * _b.prune.levels, 2 * _b.prune.levels * 2))
test_eq(_p["retrainings"]["examples"], 2 * _b.prune.levels * 2 * -(-(_n_train - round(0.2 * _n_train)) // _b.train.batch_size) * _b.train.batch_size)
test_close(_p["hours"], _p["examples"] * 0.001 / 3600, eps=1e-9)
test_eq(_p["runs"], 1 + 2 * _b.prune.levels)                      # the IMP run and its retrainings
print(plan_text(_p))
