"""`bench/compare_outputs.py`, the before/after comparison of a refactor: what it sets aside (notebook metadata and
stderr, REPORT.md's time, PDF dates, each run's own folder names, a level's seconds and writer) and what it reports
(any other byte, a run or file on one side only)."""
import json
import sys

from conftest import REPO

sys.path.insert(0, str(REPO))
from bench.compare_outputs import main  # noqa: E402


def _nb(path, out, meta, stderr):
    cell = {"cell_type": "code", "source": ["print(1)"], "metadata": meta, "execution_count": meta.get("n"),
            "outputs": [{"output_type": "stream", "name": "stdout", "text": out},
                        {"output_type": "stream", "name": "stderr", "text": stderr}]}
    path.write_text(json.dumps({"cells": [cell], "metadata": meta}))


def _run(root, tag, table="a,b\n1,2\n", seconds=1.0, weights=b"w"):
    fig, st = root / f"fig_{tag}", root / f"store_{tag}"
    fig.mkdir(); (st / "r1" / "level_000").mkdir(parents=True)
    (fig / "table.csv").write_text(table)
    (fig / "REPORT.md").write_text(f"# b\n\nWritten 2026-12-0{len(tag)} 10:00 by `pruning-repro report`\n")
    (fig / "f.pdf").write_bytes(b"%PDF /CreationDate (D:2026" + tag.encode() + b") x")
    _nb(fig / "sec.ipynb", f"store {st}\n", {"n": len(tag)}, f"bar {tag}")
    (st / "r1" / "spec.json").write_text(json.dumps({"spec": {"seed": 0}, "label": tag}))
    (st / "r1" / "level_000" / "metrics.json").write_text(
        json.dumps({"test_err": 0.1, "train_seconds": seconds, "written_by": {"pid": len(tag)}}))
    (st / "r1" / "level_000" / "model.safetensors").write_bytes(weights)
    return ["--store-a" if tag == "a" else "--store-b", str(st)], fig


def test_two_runs_of_one_code_compare_identical(tmp_path, capsys):
    sa, fa = _run(tmp_path, "a")
    sb, fb = _run(tmp_path, "bb", seconds=2.0)
    assert main([str(fa), str(fb), *sa, *sb]) == 0
    out = capsys.readouterr().out
    assert "4 files in both, 1 byte-identical, 4 identical once normalized" in out and out.strip().endswith("identical")


def test_a_changed_number_weight_or_missing_run_is_reported(tmp_path, capsys):
    sa, fa = _run(tmp_path, "a")
    sb, fb = _run(tmp_path, "bb", table="a,b\n1,3\n", weights=b"v")
    (tmp_path / "store_bb" / "r2").mkdir()
    assert main([str(fa), str(fb), *sa, *sb]) == 1
    out = capsys.readouterr().out
    for line in ("differs: table.csv", "differs: r1/level_000/model.safetensors", "run only in B: r2", "3 difference(s)"):
        assert line in out


def test_a_missing_folder_is_one_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_notebook_whose_source_alone_changed_is_listed_apart(tmp_path, capsys):
    sa, fa = _run(tmp_path, "a")
    sb, fb = _run(tmp_path, "bb")
    nb = json.loads((fb / "sec.ipynb").read_text())
    nb["cells"][0]["source"] = ["print(1)  # the import moved"]
    nb["cells"][0]["outputs"][0]["text"] = nb["cells"][0]["outputs"][0]["text"].replace("\n", " ready in 7 s\n")
    (fb / "sec.ipynb").write_text(json.dumps(nb))
    (fa / "sec.ipynb").write_text((fa / "sec.ipynb").read_text().replace("\\n", " ready in 2 s\\n"))
    assert main([str(fa), str(fb), *sa, *sb]) == 0
    assert "sources differ, outputs identical: sec.ipynb" in capsys.readouterr().out
