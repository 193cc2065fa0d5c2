"""Provenance: every output folder records each invocation (command, arguments, version, commit)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from .atomic import append_line, ensure_dir
from .errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parents[2]
# The packages whose code can change a computed number (not the figures, tests or docs).
NUMERIC_PACKAGES = ("submodular_attribution", "baseline_attribution", "evals")


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


def source_fingerprint(root: Path | None = None) -> str:
    """``sources:<12 hex>``: SHA-256 of the Python files of :data:`NUMERIC_PACKAGES` under ``root``
    (default: where this package lives), paths and contents; local edits change it, a commit that
    touches only docs, tests or figures does not."""
    root = PACKAGE_DIR if root is None else Path(root)
    digest = hashlib.sha256()
    for name in NUMERIC_PACKAGES:
        for path in sorted((root / name).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sources:{digest.hexdigest()[:12]}"


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
    append_line(ensure_dir(run_dir) / "runs.jsonl", json.dumps(entry, default=str))


def check_same_setting(run_dir: str | Path, key: str, value, what: str) -> None:
    """Stop when ``run_dir`` already holds results made with another ``arguments[key]`` (the last
    recorded invocation), so that a resumed run never mixes, say, two region sizes under one
    folder name. ``what`` names the setting in the error."""
    log = Path(run_dir) / "runs.jsonl"
    if not log.is_file():
        return
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    try:
        previous = json.loads(lines[-1])["arguments"][key] if lines else None
    except (json.JSONDecodeError, KeyError, TypeError):
        return  # an older or foreign log: nothing to compare
    current = json.loads(json.dumps(value, default=str))
    if previous is not None and previous != current:
        raise InputError(f"{run_dir} holds results made with {what} {previous}, not {current}; "
                         "use another --save-dir (or remove that folder) so the two do not mix")


def check_resumable(run_dir: str | Path, division: dict, input_size) -> None:
    """A run folder's name omits the region size and input size: refuse to add results made with
    others to results already there."""
    check_same_setting(run_dir, "division_resolved", division, "the division")
    check_same_setting(run_dir, "input_size", list(input_size), "--input-size")
