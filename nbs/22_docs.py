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
# # Documentation: the notebooks as a static site
#
# > `make docs` renders the index (the README), every component chapter, the tutorial and the executed section notebooks of the embedded reproduction into `_docs/`, offline.

# %%
#| default_exp docs

# %% [markdown]
# nbdev's own site generator needs Quarto, whose PyPI package downloads a binary at install time (impossible here).
# The notebooks are therefore rendered with **nbconvert** (pip-installable, offline, the renderer Jupyter itself
# uses): each chapter becomes an HTML page with its code, text and any outputs; the section notebooks are taken from
# `figures/<bench>/`, where `pruning-repro reproduce` saved them executed, with their figures. A navigation bar links
# every page; links to notebooks become links to their pages, links to other files of the repository are copied
# along, and `broken_links` checks that every internal link of the site resolves.
#
# `nbs/index.ipynb` is the README's content (`sync_index` writes it from README.md; a test keeps them equal).

# %%
#| export
from __future__ import annotations

import re
import shutil
import sys
from html import escape
from pathlib import Path
from urllib.parse import unquote, urlparse

# %%
#| hide
from fastcore.test import test_eq

# %%
#| export
_HDR = """# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---
"""

def _md(text: str) -> str:
    "A py:percent markdown cell's body: every line commented."
    return "\n".join("# " + l if l else "#" for l in text.split("\n"))

def sync_index(repo: Path) -> Path:
    """Write `nbs/index.py` (py:percent) from README.md; `make export` pairs it to index.ipynb. Two markdown cells:
    the title and its first paragraphs, then the rest from the first `## ` heading. nbdev reads the first markdown
    cell's `- ` lines as front matter, so the README's bullet lists must not be in it."""
    text = (repo / "README.md").read_text().rstrip("\n")
    head, sep, rest = text.partition("\n\n## ")
    cells = [head] + (["## " + rest] if sep else [])
    out = repo / "nbs" / "index.py"
    out.write_text(_HDR + "".join(f"\n# %% [markdown]\n{_md(c)}\n" for c in cells))
    return out

def _pages(repo: Path, figures: Path) -> dict[str, Path]:
    "{page name: notebook}: the index, the chapters and the tutorial from nbs/, executed sections from `figures`."
    nbs = repo / "nbs"
    pages = {"index": nbs / "index.ipynb"}
    pages |= {p.stem: p for p in sorted(nbs.glob("[0-9][0-9]_*.ipynb"))}
    pages |= {p.stem: p for p in sorted(nbs.glob("embedded_benchmarks.ipynb"))}
    for p in sorted(nbs.glob("*.ipynb")):
        if p.stem.startswith(("sec", "app")):
            ran = sorted(figures.glob(f"*/{p.name}"))
            pages[p.stem] = ran[0] if ran else p        # executed (with figures) when a reproduction saved it
    return pages

def _nav(pages) -> str:
    links = " · ".join(f'<a href="{n}.html">{escape(n)}</a>' for n in pages)
    return f'<nav style="font:13px sans-serif;padding:6px;border-bottom:1px solid #ccc">{links}</nav>'

def build_docs(out="_docs", repo=None, figures=None) -> list[Path]:
    "Render the site into `out`; returns the pages written. Needs nbconvert."
    from nbconvert import HTMLExporter
    repo = Path(repo or Path.cwd()).resolve()
    figures = Path(figures or repo / "figures")
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    pages, exporter, written = _pages(repo, figures), HTMLExporter(template_name="lab"), []
    nav = _nav(pages)
    for name, nb in pages.items():
        html, _ = exporter.from_filename(str(nb))
        html = re.sub(r'href="(?!https?:|#|mailto:)([^"]*?)([\w.-]+)\.ipynb(#[^"]*)?"',
                      lambda m: f'href="{m.group(2)}.html{m.group(3) or ""}"', html)   # notebooks -> their pages
        html = re.sub(r"(<body[^>]*>)", r"\1" + nav, html, count=1)
        def local(m):                      # a file of the repository the page links to: copied along, link rewritten
            attr, target = m.group(1), m.group(2)
            base = repo if name == "index" else nb.parent  # the index is the README: its links start at the root
            src = (base / unquote(target)).resolve()
            if not src.is_file() or repo not in src.parents: return m.group(0)
            rel = src.relative_to(repo).as_posix()
            (out / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copyfile(src, out / rel)
            return f'{attr}="{rel}"'
        html = re.sub(r'(href|src)="(?!https?:|#|mailto:|data:)([^"#?]+\.(?:png|pdf|md|csv|svg|jpg))"', local, html)
        (out / f"{name}.html").write_text(html); written.append(out / f"{name}.html")
    return written

def broken_links(out) -> list[str]:
    "Internal links (href/src) of the site's pages whose target does not exist: '<page>: <target>'."
    out, bad = Path(out), []
    for page in sorted(out.glob("*.html")):
        text = re.sub(r"<pre.*?</pre>", "", page.read_text(), flags=re.S)     # code shown on a page is not a link
        for target in re.findall(r'(?:href|src)="([^"]+)"', text):
            u = urlparse(target)
            if u.scheme or target.startswith(("#", "mailto:", "data:")): continue
            if not (out / unquote(u.path)).exists(): bad.append(f"{page.name}: {target}")
    return bad

def main(argv=None) -> int:
    "`python -m pruning_repro.docs [OUT]` builds the site (exit 1 on a broken link); `--sync-index` writes the index."
    argv = sys.argv[1:] if argv is None else argv
    if "--sync-index" in argv: sync_index(Path.cwd()); return 0
    o = argv[0] if argv else "_docs"
    pages, bad = build_docs(o), broken_links(o)
    print(f"{len(pages)} pages in {o}/ ({o}/index.html); broken internal links: {len(bad)}")
    for b in bad: print("  broken:", b)
    return 1 if bad else 0


# %%
#| export
#| eval: false
if __name__ == "__main__": sys.exit(main())

# %%
import tempfile
_t = Path(tempfile.mkdtemp())
(_t / "a.html").write_text('<a href="b.html">b</a> <a href="https://x.org">x</a> <img src="missing.png"> <a href="#top">t</a>'
                           '<pre>print("<a href=\\"nowhere.html\\">")</pre>')
(_t / "b.html").write_text("")
test_eq(broken_links(_t), ["a.html: missing.png"])
