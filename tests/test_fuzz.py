"""`scripts/fuzz.py`: a short run of mutated real models through the CLI ends with no bug, over several kinds; a
case is rebuilt from its number alone."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_script", ROOT / "scripts" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_script"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz()


def test_a_short_run_finds_no_bug(tmp_path: Path) -> None:
    report = tmp_path / "fuzz.json"
    # 40 cases from 10010: every kind once, the corpus seeds included when ../shared is there, one scenario.
    command = [sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--cases", "40", "--first", "10010"]
    done = subprocess.run(
        [*command, "--progress", "0", "--json", str(report)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["cases"] == 40 and data["bugs"] == 0
    kinds = {item["kind"] for item in data["results"].values()}
    assert len(kinds) >= 30 and {"bitflip", "op-swap", "recursion", "options", "scenario"} <= kinds, kinds
    assert sum(item["outcome"] in ("correct", "not verified") for item in data["results"].values()) >= 3, out
    assert any(item["options"] for item in data["results"].values())
    assert "total" in out and "kind" in out


def test_a_case_is_rebuilt_from_its_number(tmp_path: Path) -> None:
    seeds = fuzz.load_seeds()
    first = fuzz.make_case(123, 7, seeds, 10)
    again = fuzz.make_case(123, 7, seeds, 10)
    assert (first.kind, first.data, first.args) == (again.kind, again.data, again.args)
    assert fuzz.main(["--case", "123", "--seed", "7", "--save", str(tmp_path / "case")]) == 0
    assert (tmp_path / "case" / "command.txt").read_text().startswith("cd ")
    assert (tmp_path / "case" / first.model).read_bytes() == first.data


def test_every_outcome_is_classified() -> None:
    assert fuzz.classify(2, "", "optimize: error: m.pb: broken\n", "m.pb", False) == "clean error"
    assert fuzz.classify(2, "", "optimize: error: broken\n", "m.pb", False) == "messy error"
    assert fuzz.classify(2, "", "optimize: error: m.pb: a\nmore\n", "m.pb", False) == "messy error"
    assert fuzz.classify(0, "verification: outputs match\n", "", "m.pb", False) == "correct"
    assert fuzz.classify(4, "verification: not run: x\n", "optimize: warning: w\n", "m.pb", False) == "not verified"
    assert fuzz.classify(3, "", "optimize: error: pass\n", "m.pb", False) == "internal error"
    assert fuzz.classify(1, "", "", "m.pb", False) == "wrong result"
    assert fuzz.classify(2, "Traceback (most recent call last):\n", "", "m.pb", False) == "traceback"
