"""The layering of docs/design.md is enforced: import-linter keeps the contract in pyproject.toml, and breaks it
when a lower layer imports a higher one (tried on a copy of the package with one bad import added)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def _copy_package(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "latentlab", tmp_path / "latentlab", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_layer_contract_is_kept():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 1 kept, 0 broken." in r.stdout


@pytest.mark.parametrize(("module", "bad_import", "importer", "imported"), [
    ("io/images.py", "from ..registry import resolve", "io", "registry"),
    ("nn/config.py", "from ..cli import cli", "nn", "cli"),
    ("perceptual/pixels.py", "from ..data import FACTORS", "perceptual", "data"),  # independent siblings
    ("metrics/frechet.py", "from .. import __version__", "metrics", "pretrained"),  # the root imports everything
])  # fmt: skip
def test_an_upward_import_breaks_the_contract(tmp_path, module, bad_import, importer, imported):
    root = _copy_package(tmp_path)
    path = root / "latentlab" / module
    path.write_text(path.read_text() + f"\n\ndef _upward():\n    {bad_import}\n")  # function-level counts too
    r = _lint(root, pythonpath=root)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BROKEN" in r.stdout
    assert f"latentlab.{importer} is not allowed to import latentlab.{imported}" in r.stdout, r.stdout


def test_a_new_module_needs_a_layer(tmp_path):
    root = _copy_package(tmp_path)
    (root / "latentlab" / "notebook.py").write_text('"""A notebook widget without a place in the house."""\n')
    r = _lint(root, pythonpath=root)
    assert r.returncode == 1 and "latentlab.notebook" in r.stdout, r.stdout + r.stderr
