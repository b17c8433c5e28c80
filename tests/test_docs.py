"""The literate docs: rendered offline into a static site with no broken internal link, opened in headless Chromium
(index and a section page with its figures), and the index kept equal to the README."""
import json
import shutil
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

from conftest import REPO, run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_index_is_the_readme():
    cells = json.loads((REPO / "nbs" / "index.ipynb").read_text())["cells"]
    assert len(cells) == 2 and all(c["cell_type"] == "markdown" for c in cells)   # the title cell, then the rest
    assert not any(l.startswith("- ") for l in cells[0]["source"])                 # nbdev reads those as front matter
    text = "\n\n".join("".join(c["source"]).strip() for c in cells)
    assert text == (REPO / "README.md").read_text().strip()   # `make export` syncs it


def test_site_renders_without_broken_links_and_opens_in_chromium(tmp_path):
    out = tmp_path / "site"
    r = run([sys.executable, "-m", "pruning_repro.docs", str(out)])
    assert r.returncode == 0 and "broken internal links: 0" in r.stdout, r.stdout + r.stderr[-2000:]
    pages = {p.name for p in out.glob("*.html")}
    assert {"index.html", "03_models.html", "17_algorithms.html", "20_tutorial.html", "sec4_noise.html"} <= pages
    sec4 = (out / "sec4_noise.html").read_text()
    assert "data:image/png;base64" in sec4 and "Fig. 3" in sec4            # executed, with its figures
    assert 'href="embedded_benchmarks.html"' in (out / "index.html").read_text()   # notebook links -> pages
    assert CHROMIUM, "Chromium is not installed: `make test` installs Debian's chromium"
    for page, height in (("index.html", 1400), ("sec4_noise.html", 2400)):
        png = tmp_path / f"{page}.png"
        r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / ('chromium-' + page)}",
                            f"--window-size=1200,{height}", f"--screenshot={png}", (out / page).as_uri()],
                           capture_output=True, text=True, timeout=180)
        assert png.exists() and png.stat().st_size > 20_000, r.stderr[-2000:]
        img = mpimg.imread(png)
        assert img.std() > 0.05                                             # a page was drawn, not a blank one
