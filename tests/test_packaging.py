"""A non-editable install works from any directory: its prompts, eval sets, training sets and corpus travel
in the wheel, and every package of the source tree is in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT

pytestmark = pytest.mark.slow  # builds a wheel and runs the CLI from it


def test_every_package_of_the_source_tree_is_listed() -> None:
    """pyproject.toml lists its packages (the data folders are mapped into them): a new package must be
    added there, or the wheel silently lacks it."""
    listed = set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(PROJECT_ROOT)).replace("/", ".") for p in (PROJECT_ROOT / "assistant").rglob("__init__.py")}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"


def test_an_installed_wheel_answers_from_another_directory(index_settings, tmp_path: Path) -> None:  # noqa: ANN001
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(PROJECT_ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "POLICY_QA_INDEX_DIR": str(index_settings.index_dir),
           "POLICY_QA_DB_PATH": str(elsewhere / "db.sqlite3"), "HF_HUB_OFFLINE": "1"}
    where = subprocess.run([sys.executable, "-c", "import assistant.config as c, assistant.answering.llm as l, "
                            "assistant.evaluation.sets as s; print(c.__file__, l.PROMPTS_DIR, s.EVAL_DIR)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(part.startswith(str(site)) for part in where), where  # the installed copy, not the checkout
    assert (Path(where[1]) / "system.txt").is_file() and (Path(where[2]) / "real_questions.jsonl").is_file()
    answer = subprocess.run([str(site / "bin" / "policy-qa"), "ask", "--json", "简易注销怎么办理？"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr
    reply = json.loads(answer.stdout)
    assert reply["citations"] and not reply["abstained"]
    assert not (elsewhere / "index").exists()  # everything it wrote went where the settings said
