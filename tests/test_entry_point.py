"""One front door: ``python -m submodular_attribution <task>`` runs every registered task, and the
older names (``smdl_explanation_<task>`` modules, ``scripts/<task>_multigpu.sh``) still answer."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from submodular_attribution import __main__ as entry
from submodular_attribution.tasks import MODEL_TASKS

ROOT = Path(__file__).resolve().parents[1]
ALL_TASKS = [*MODEL_TASKS, "detection", "grounding"]


def test_help_lists_every_task_with_a_description(capsys):
    assert entry.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^  (\S+)\s+\S", out, flags=re.M)
    assert listed == ALL_TASKS and len(listed) == 13


def test_a_task_help_from_a_fresh_process():
    done = subprocess.run([sys.executable, "-m", "submodular_attribution", "shapes", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "usage: python -m submodular_attribution shapes" in done.stdout
    assert "--search" in done.stdout and "--lambda1" in done.stdout


def test_unknown_task_is_one_error_line(capsys):
    assert entry.main(["shapez"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown task 'shapez'; choose from shapes,")


@pytest.mark.parametrize("name", ALL_TASKS)
def test_old_module_names_still_answer(name):
    module = importlib.import_module(f"submodular_attribution.smdl_explanation_{name}")
    assert callable(module.main)
    if name in MODEL_TASKS:  # the shim's TASK is the registry's entry (models hold closures: compare by name)
        import dataclasses

        from submodular_attribution.cli import get_smdl_task
        ours, registry = (dataclasses.replace(t, model=t.model.name) for t in (module.TASK, get_smdl_task(name)))
        assert ours == registry


def test_every_task_runs_through_the_entry_point(monkeypatch):
    """The entry point hands the arguments to the task's own command line."""
    from submodular_attribution import cli, detection_cli
    seen = []
    monkeypatch.setattr(cli, "main", lambda task, argv: seen.append((task.name, list(argv))) or 0)
    monkeypatch.setattr(detection_cli, "main", lambda kind, argv: seen.append((kind.name, list(argv))) or 0)
    for name in ALL_TASKS:
        assert entry.main([name, "--seed", "3"]) == 0
    assert seen == [(name, ["--seed", "3"]) for name in ALL_TASKS]
    assert entry.main(["default", "--seed", "3"]) == 0 and seen[-1][0] == "shapes"  # the alias


def test_launchers_name_registered_tasks():
    scripts = sorted((ROOT / "scripts").glob("*_multigpu.sh"))
    assert scripts
    for script in scripts:
        task = re.search(r'torchrun_task\.sh" (\S+)', script.read_text()).group(1)
        assert task in ALL_TASKS, script.name
    assert "-m submodular_attribution \"$task\"" in (ROOT / "scripts" / "torchrun_task.sh").read_text()
