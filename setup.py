"""Packaging driven by settings.ini (the nbdev 2 convention): `pip install .` installs the
`pruning_repro` package exported from nbs/ and the `pruning-repro` console script."""
import shutil
from configparser import ConfigParser
from pathlib import Path

import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=["="])
cfg.read(Path(__file__).parent / "settings.ini")
cfg = cfg["DEFAULT"]


class BuildWithNotebooks(build_py):
    """The wheel is the product: it ships the section notebooks (which `pruning-repro section/reproduce` and papermill
    run) as package data, `pruning_repro/notebooks/`. An editable install runs them from the checkout's nbs/."""
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False): return
        src, dst = Path(__file__).parent / "nbs", Path(self.build_lib) / cfg["lib_path"] / "notebooks"
        dst.mkdir(parents=True, exist_ok=True)
        for nb in sorted(src.glob("*.ipynb")):
            if nb.name.startswith(("sec", "app")): shutil.copyfile(nb, dst / nb.name)


setuptools.setup(
    cmdclass={"build_py": BuildWithNotebooks},
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=(Path(__file__).parent / "README.md").read_text(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    python_requires=">=" + cfg["min_python"],
    packages=setuptools.find_packages(include=[cfg["lib_name"], cfg["lib_name"] + ".*"]),
    include_package_data=True,
    install_requires=cfg["requirements"].split(),
    extras_require={"dev": cfg["dev_requirements"].split()},
    entry_points={
        "console_scripts": cfg["console_scripts"].split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
