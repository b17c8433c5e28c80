"""Compare two reproductions of one study, made on one machine by two versions of the code (a refactor's before and
after): the run stores (which runs, and every stored weight and per-example file) and the figures folders (every
table, figure, report and executed notebook).

    python -m bench.compare_outputs FIG_A FIG_B [--store-a STORE_A --store-b STORE_B]

Set aside, because they differ between any two runs of the same code: the PDF's creation date, REPORT.md's
"Written <time>" line, the executed notebooks' metadata, execution counts, stderr streams (progress bars) and
printed wall times ("ready in 2 s"), and the folder names the two runs were given (each run's own paths are replaced by a placeholder), and in a level's
metrics its training seconds and writer (host, pid). A notebook whose source changed but whose outputs are the
same is listed apart (a refactor changes a notebook's imports, not its results). Prints one line per file that
differs and a summary; exits 1 when anything else differs. Results are bit-identical run to run on one machine only: compare runs made on one machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

VOLATILE_METRICS = ("train_seconds", "written_by")


def _digest(b: bytes) -> str: return hashlib.sha256(b).hexdigest()


TIMING = re.compile(r"\b(in|took) \d+(\.\d+)? s\b")      # "ready in 2 s": a wall time the notebook prints


def _notebook(raw: bytes, roots: list[str], part: str) -> str:
    """An executed notebook's sources (`part` 'source') or outputs ('outputs'), without what changes from run to run:
    metadata, execution counts, stderr (progress bars), printed wall times and each run's folder names."""
    nb = json.loads(raw)
    cells = []
    for c in nb.get("cells", []):
        if part == "source": cells.append("".join(c.get("source", ""))); continue
        cells.append([{k: v for k, v in o.items() if k not in ("execution_count", "metadata")}
                      for o in c.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")])
    return TIMING.sub(r"\1 <t> s", _unroot(json.dumps(cells, sort_keys=True), roots))


def _unroot(text: str, roots: list[str]) -> str:
    for r in sorted(roots, key=len, reverse=True): text = text.replace(r, "<ROOT>")
    return text


def normalized(path: Path, roots: list[str]) -> bytes:
    "The bytes of an output file with what differs between two runs of the same code set aside."
    raw = path.read_bytes()
    if path.suffix == ".ipynb": return (_notebook(raw, roots, "source") + _notebook(raw, roots, "outputs")).encode()
    if path.suffix == ".pdf": return re.sub(rb"/(CreationDate|ModDate) \([^)]*\)", b"", raw)
    if path.name == "REPORT.md":
        return _unroot(re.sub(r"^Written [^\n]* by ", "Written <time> by ", raw.decode(), flags=re.M), roots).encode()
    if path.suffix in (".md", ".txt", ".csv"): return _unroot(raw.decode(), roots).encode()
    return raw


def compare_figures(a: Path, b: Path, roots_a: list[str], roots_b: list[str]) -> tuple[dict, list[str]]:
    "Counts (files, byte-identical, identical once normalized) and the differences between two figures folders."
    fa = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    diffs = [f"only in A: {p}" for p in sorted(fa - fb)] + [f"only in B: {p}" for p in sorted(fb - fa)]
    n = {"files": len(fa & fb), "byte_identical": 0, "normalized_identical": 0, "sources_only": []}
    for p in sorted(fa & fb):
        ra, rb = (a / p).read_bytes(), (b / p).read_bytes()
        if ra == rb: n["byte_identical"] += 1; n["normalized_identical"] += 1; continue
        if normalized(a / p, roots_a) == normalized(b / p, roots_b): n["normalized_identical"] += 1
        elif p.suffix == ".ipynb" and _notebook(ra, roots_a, "outputs") == _notebook(rb, roots_b, "outputs"):
            n["sources_only"].append(str(p))        # the code changed its notebook's text, not what it computed
        else: diffs.append(f"differs: {p}")
    return n, diffs


def _metrics(path: Path) -> dict:
    m = json.loads(path.read_text())
    for k in VOLATILE_METRICS: m.pop(k, None)
    return m


def compare_stores(a: Path, b: Path) -> tuple[dict, list[str]]:
    "Counts (runs, levels, stored files) and the differences between two run stores."
    ra = {p.name for p in a.iterdir() if p.is_dir()}
    rb = {p.name for p in b.iterdir() if p.is_dir()}
    diffs = [f"run only in A: {r}" for r in sorted(ra - rb)] + [f"run only in B: {r}" for r in sorted(rb - ra)]
    n = {"runs": len(ra & rb), "levels": 0, "files": 0}
    for r in sorted(ra & rb):
        for f in sorted((a / r).rglob("*")):
            rel = f.relative_to(a / r)
            g = b / r / rel
            if not f.is_file() or f.name.endswith((".lock", ".tmp")) or rel.name == "spec.json": continue
            if not g.is_file(): diffs.append(f"only in A: {r}/{rel}"); continue
            n["files"] += 1
            if f.name == "metrics.json":
                n["levels"] += 1
                same = _metrics(f) == _metrics(g)
            else: same = _digest(f.read_bytes()) == _digest(g.read_bytes())
            if not same: diffs.append(f"differs: {r}/{rel}")
        sa, sb = json.loads((a / r / "spec.json").read_text()), json.loads((b / r / "spec.json").read_text())
        if sa.get("spec") != sb.get("spec"): diffs.append(f"spec differs: {r}")
    return n, diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("figures_a", type=Path); ap.add_argument("figures_b", type=Path)
    ap.add_argument("--store-a", type=Path); ap.add_argument("--store-b", type=Path)
    ap.add_argument("--root-a", action="append", default=[], help="a path of run A to set aside in text (repeatable)")
    ap.add_argument("--root-b", action="append", default=[], help="a path of run B to set aside in text (repeatable)")
    a = ap.parse_args(argv)
    for p in (a.figures_a, a.figures_b, a.store_a, a.store_b):
        if p is not None and not p.is_dir():
            print(f"error: {p} is not a folder", file=sys.stderr); return 2
    roots_a = [str(a.figures_a.resolve()), str(a.figures_a), *a.root_a] + ([str(a.store_a)] if a.store_a else [])
    roots_b = [str(a.figures_b.resolve()), str(a.figures_b), *a.root_b] + ([str(a.store_b)] if a.store_b else [])
    n, diffs = compare_figures(a.figures_a, a.figures_b, roots_a, roots_b)
    print(f"figures: {n['files']} files in both, {n['byte_identical']} byte-identical, "
          f"{n['normalized_identical']} identical once normalized, {len(n['sources_only'])} notebooks whose sources "
          f"differ and outputs are identical")
    for p in n["sources_only"]: print(f"sources differ, outputs identical: {p}")
    if a.store_a and a.store_b:
        s, d = compare_stores(a.store_a, a.store_b)
        diffs += d
        print(f"stores: {s['runs']} runs in both, {s['levels']} levels, {s['files']} stored files compared")
    for d in diffs: print(d)
    print("identical" if not diffs else f"{len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
