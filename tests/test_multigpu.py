"""The torchrun launcher with 2 CPU workers equals a single-process run: same files, same orders."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import skimage.data
import torch

from submodular_attribution import smdl_explanation_imagenet_classifier as task
from submodular_attribution.adapters.classifier import build_classifier
from submodular_attribution.common.distributed import Worker, shard
from submodular_attribution.common.results import find_result_files, load_result

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shards_are_disjoint_and_cover_the_list():
    items = list(range(11))
    parts = [shard(items, Worker(rank, 3)) for rank in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]


def test_torchrun_two_cpu_workers_match_single_process(tmp_path):
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket(),
              skimage.data.immunohistochemistry()]
    lines = []
    for i, photo in enumerate(photos):
        cv2.imwrite(str(tmp_path / f"img {i}.png"), cv2.resize(photo[..., ::-1], (48, 48)))
        lines.append(f"img {i}.png {i % 3}")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    net, _ = build_classifier("resnet18", 3)
    torch.save(net.state_dict(), tmp_path / "w.pth")
    flags = ["--eval-list", str(tmp_path / "list.txt"), "--arch", "resnet18", "--num-classes", "3",
             "--checkpoint", str(tmp_path / "w.pth"), "--input-size", "48", "--division", "slico",
             "--region-size", "16", "--search", "bidirectional", "--pending-samples", "2", "--device", "cpu"]

    assert task.main([*flags, "--save-dir", str(tmp_path / "single")]) == 0
    env = {**os.environ, "NPROC": "2", "MASTER_PORT": str(_free_port()), "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", str(REPO / "scripts" / "imagenet_classifier_multigpu.sh"), *flags,
                           "--save-dir", str(tmp_path / "multi")], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 of 2" in done.stderr

    (single_dir,) = (tmp_path / "single").iterdir()
    multi_dir = tmp_path / "multi" / single_dir.name
    single = {f.relative_to(single_dir): load_result(f) for f in find_result_files(single_dir)}
    multi = {f.relative_to(multi_dir): load_result(f) for f in find_result_files(multi_dir)}
    assert sorted(single) == sorted(multi) and len(single) == 5  # every image exactly once
    for key, a in single.items():
        b = multi[key]
        assert a.record["region_order"] == b.record["region_order"]
        assert (a.npy == b.npy).all()
        assert a.record["consistency_score"] == pytest.approx(b.record["consistency_score"], abs=1e-5)
    ranks = [line for line in (multi_dir / "runs.jsonl").read_text().splitlines()]
    assert len(ranks) == 2  # one provenance line per rank
