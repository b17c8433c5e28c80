"""Issue 25's measures of the control floor, counted from the code and one traced command.

    python -m bench.control_floor            # all measures (traces one smoke section: ~2 min on 2 cores)
    python -m bench.control_floor --static   # only those read from the files (no training)

- frames from `cli.main` to the training loop (both counted), for level 0 and a later level: `pruning_repro.imp.train` is replaced by
  a function that records the stack, then `pruning-repro section sec4_noise --bench lenet_mnist1d --scale smoke
  --seeds 0 --workers 1` runs in this process into an empty store (a temporary folder);
- package modules in `sys.modules` at the end of that command, of the package's modules;
- the widest function's parameters (named ones; `self`/`cls` not counted) and the functions over 7;
- code cells of the control notebooks (`09_store`, `14_sweep`, `15_cli`, `18_executors`; then with `28_sections`,
  `29_study`, `30_plan`, `32_runtime`): count, mean / max lines;
- modules over 400 lines; every line of the package that names `os.environ`.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pruning_repro"
CONTROL = ("09_store", "14_sweep", "15_cli", "18_executors")
CONTROL_MORE = CONTROL + ("28_sections", "29_study", "30_plan", "32_runtime")


def modules() -> list[Path]:
    return sorted(p for p in PKG.glob("*.py") if p.name not in ("_modidx.py", "__init__.py"))


def widest() -> tuple[int, str, list[str]]:
    "(parameters of the widest function, its name, the functions with more than 7)."
    best, name, over = 0, "", []
    for p in modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                n = len([x for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")])
                q = f"{p.stem}.{node.name}"
                if n > best: best, name = n, q
                if n > 7: over.append(q)
    return best, name, over


def cells(names) -> tuple[int, float, int]:
    "Code cells of the notebooks `names`: (count, mean lines, max lines); empty cells not counted."
    sizes = []
    for n in names:
        nb = json.loads((ROOT / "nbs" / f"{n}.ipynb").read_text())
        for c in nb["cells"]:
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            if c["cell_type"] == "code" and src.strip(): sizes.append(len(src.rstrip("\n").splitlines()))
    return len(sizes), sum(sizes) / len(sizes), max(sizes)


def environ_lines() -> list[str]:
    return [f"{p.name}:{i}: {line.strip()}" for p in modules() for i, line in enumerate(p.read_text().splitlines(), 1)
            if "os.environ" in line]


def trace() -> tuple[list[list[str]], list[str]]:
    "The chains of frames from `main` to `train` (one per distinct chain) and the package modules imported."
    import pruning_repro.imp as imp
    from pruning_repro.cli import main
    chains, real = [], imp.train

    def recording(*a, **k):
        stack = traceback.extract_stack()[:-1]
        start = next(i for i, f in enumerate(stack) if f.name == "main" and f.filename.endswith("cli.py"))
        wrapper = ["(the precision decorator)"] if hasattr(real, "__wrapped__") else []   # the frame `real` adds
        chain = [f"{Path(f.filename).stem}.{f.name}" for f in stack[start:]] + wrapper + ["train"]
        if chain not in chains: chains.append(chain)
        return real(*a, **k)

    imp.train = recording
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rc = main(["section", "sec4_noise", "--bench", "lenet_mnist1d", "--scale", "smoke", "--seeds", "0",
                       "--workers", "1", "--store", f"{tmp}/store", "--figures", f"{tmp}/figures"])
    finally: imp.train = real
    if rc != 0: raise SystemExit(f"the traced command failed (exit {rc})")
    return chains, sorted(m for m in sys.modules if m.startswith("pruning_repro."))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--static", action="store_true", help="only the measures read from the files")
    a = p.parse_args(argv)
    if not a.static:
        chains, mods = trace()
        for c in chains: print(f"frames from main() to the training loop, both counted: {len(c)}: " + " > ".join(c))
        print(f"package modules imported by `section sec4_noise`: {len(mods)} of {len(modules())}")
    n, name, over = widest()
    print(f"widest function: {n} parameters ({name}); functions over 7: {len(over)} {over or ''}")
    for names in (CONTROL, CONTROL_MORE):
        k, mean, mx = cells(names)
        print(f"code cells of {', '.join(names)}: {k}, mean {mean:.1f} / max {mx} lines")
    big = {p.name: len(p.read_text().splitlines()) for p in modules()}
    print("modules over 400 lines: " + (", ".join(f"{k} {v}" for k, v in sorted(big.items(), key=lambda kv: -kv[1])
                                                 if v > 400) or "none")
          + f"; largest {max(big, key=big.get)} {max(big.values())}")
    print("os.environ in the package:"); print("\n".join("  " + s for s in environ_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
