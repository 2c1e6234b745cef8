"""The wheel's package list stays complete, and embedded files are found from a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from latentlab.pretrained import pretrained_dirs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python 3.11+")
def test_every_subpackage_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "latentlab").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert "latentlab._embedded" in listed


def test_the_checkout_pretrained_folder_is_searched():
    assert ROOT / "pretrained" in pretrained_dirs()
    assert (ROOT / "pretrained" / "README.md").is_file()
