"""The built wheel holds every package of the tree (`pyproject.toml` lets setuptools find them) and their typing
markers. The wheel is built offline (`pip wheel --no-build-isolation`) from a copy of the sources, so the checkout
gets no `build/` or `.egg-info`; without the build backend `pyproject.toml` asks for, the test is skipped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("optimizer", "passes")


def _required_setuptools() -> tuple[int, ...]:
    found = re.search(r'"setuptools>=([0-9.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert found, "pyproject.toml's build-system requires setuptools>=N"
    return tuple(int(part) for part in found.group(1).split("."))


def _installed_setuptools() -> tuple[int, ...] | None:
    try:
        version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return None
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _package_dirs() -> set[str]:
    """Every folder of the tree with an `__init__.py`, as a path inside the wheel (`optimizer/sub`)."""
    return {
        init.parent.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for init in (ROOT / package).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_the_wheel_holds_every_package(tmp_path: Path) -> None:
    required, installed = _required_setuptools(), _installed_setuptools()
    if installed is None or installed < required:
        pytest.skip(f"setuptools {installed or 'missing'}: pyproject.toml needs setuptools >= {required}")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    built = subprocess.run(
        [*command, "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = _package_dirs()
    assert {"optimizer", "passes"} <= wanted
    assert {directory for directory in wanted if f"{directory}/__init__.py" not in names} == set()
    assert {f"{package}/py.typed" for package in PACKAGES} <= names
    modules = {path.relative_to(ROOT).as_posix() for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    assert {module for module in modules if "__pycache__" not in module} <= names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
