"""scripts/device_benchmark.sh's control flow, with a stand-in Python that records its calls
(the GPU runs themselves need a GPU machine)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, has_ximgproc: bool) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    # "-c" is the ximgproc probe; every other call is a benchmark, recorded
    fake.write_text(f"#!/usr/bin/env bash\nif [ \"$1\" = -c ]; then exit {0 if has_ximgproc else 1}; fi\n"
                    f"echo \"$*\" >> {log}\n")
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(REPO / "scripts" / "device_benchmark.sh")], capture_output=True, text=True,
                          env={**os.environ, "PY": str(fake), "DEVICE": "cpu", "PATH": os.environ["PATH"]},
                          timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return done, [c for c in calls if not c.startswith("-m pip ")]  # a local .whl/ is installed first


def test_device_benchmark_runs_every_check_and_skips_slico_without_ximgproc(tmp_path):
    done, calls = _run(tmp_path, has_ximgproc=False)
    assert done.returncode == 0, done.stderr
    assert [c.split()[1] for c in calls] == ["submodular_attribution.benchmark_engine"] * 3
    assert "--model open_clip:ViT-L-14" in calls[0] and "--precision fp32 bf16" in calls[0]
    assert "--model null" in calls[2] and all("--device cpu" in c for c in calls)
    assert "skipped evals.benchmark_search" in done.stdout and "opencv-contrib-python" in done.stdout

    (tmp_path / "calls.txt").unlink()
    done, calls = _run(tmp_path, has_ximgproc=True)
    assert done.returncode == 0 and calls[-1].split()[1] == "evals.benchmark_search"
