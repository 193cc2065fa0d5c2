"""Provenance: every output folder records each invocation (command, arguments, version, commit)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .atomic import ensure_dir

PACKAGE_DIR = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    """The checkout's commit (``-dirty`` with local changes), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=PACKAGE_DIR, capture_output=True, text=True,
                               timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def package_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("smdl-attribution")
    except PackageNotFoundError:
        return None


def write_provenance(run_dir: str | Path, arguments: dict) -> None:
    """Append one JSON line per invocation to ``<run_dir>/runs.jsonl`` (shards and reruns accumulate)."""
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(getattr(sys, "orig_argv", sys.argv)),  # as typed, including "-m module"
        "argv": sys.argv,
        "arguments": arguments,
        "package_version": package_version(),
        "git_commit": git_commit(),
    }
    run_dir = ensure_dir(run_dir)
    with open(run_dir / "runs.jsonl", "a") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")
