"""The faults of long multi-worker runs: a repeated list line, a torchrun worker killed mid-run,
several ranks appending to failures.jsonl at once, and a full disk (ENOSPC) while writing."""
import errno
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from submodular_attribution import smdl_explanation_shapes as shapes_task
from submodular_attribution.common import atomic
from submodular_attribution.common.atomic import (
    append_line, atomic_save_npy, atomic_torch_save, atomic_write_json)
from submodular_attribution.common.distributed import Worker, finish_rank
from submodular_attribution.common.errors import DiskFull, run_reporting_input_errors
from submodular_attribution.common.lists import ListItem, check_items, skip_repeated_lines
from submodular_attribution.common.progress import record_failure, run_groups, run_items
from submodular_attribution.common.results import find_result_files, load_result
from submodular_attribution.shapes.data import write_eval_set

REPO = Path(__file__).resolve().parents[1]
FAST = ["--search", "fast", "--region-size", "32", "--device", "cpu"]  # 66 forward passes per image
RUN = "slico-0.01-0.0-20.0-5.0-fast"  # the shapes task's folder for them


@pytest.fixture(scope="module")
def shapes_list(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("shapes"), n=6)


def _lines(list_path):
    return list_path.read_text().splitlines()


def _shapes(list_path, save_dir, *extra):
    return shapes_task.main(["--eval-list", str(list_path), "--save-dir", str(save_dir), *FAST, *extra])


def _result_files(run_dir):
    """Every file under json/ and npy/, temporary ones included."""
    return sorted(p for sub in ("json", "npy") for p in (run_dir / sub).glob("*/*"))


def _all_valid(run_dir):
    """Every visible result file reads back (a JSON with its npy); no JSON without its npy."""
    for path in find_result_files(run_dir):
        assert load_result(path).npy is not None
    for path in run_dir.glob("npy/*/*.npy"):
        np.load(path)


# --------------------------------------------------------------------------- a repeated line


def test_a_repeated_line_is_skipped_with_one_note(shapes_list, tmp_path, capsys):
    lines = _lines(shapes_list)
    list_path = shapes_list.parent / "repeated.txt"
    list_path.write_text("\n".join([lines[0], lines[1], lines[0]]) + "\n")  # line 3 repeats line 1
    assert _shapes(list_path, tmp_path) == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {list_path}:3: repeats line 1 ({lines[0].rsplit(maxsplit=1)[0]}); skipped"]
    assert "0 of 2 images already done" in err
    assert len(find_result_files(tmp_path / RUN)) == 2


def test_lines_that_differ_are_kept_and_colliding_outputs_stay_an_error(capsys):
    items = [ListItem("a/x.png", 0, 1), ListItem("a/x.png", 1, 2), ListItem("a/x.png", 0, 4),
             ListItem("b/x.png", 0, 5)]
    kept = skip_repeated_lines(items, "list.txt")
    assert kept == [items[0], items[1], items[3]]  # another class is another output: kept
    assert capsys.readouterr().err == "note: list.txt:4: repeats line 1 (a/x.png); skipped\n"
    assert skip_repeated_lines(items, "list.txt", show=False) == kept and not capsys.readouterr().err
    with pytest.raises(ValueError, match=r"list.txt:5: same class and file name as line 1 \(0/x\); "
                                         "outputs would collide"):
        check_items(kept, "list.txt")  # another file of the same name and class


# --------------------------------------------------------------------------- a killed torchrun worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_of_rank(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` among the children of ``launcher`` (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if proc.name.isdigit() and parent == launcher and \
                    f"RANK={rank}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


def _torchrun(list_path, save_dir, log):
    env = {**os.environ, "NPROC": "2", "MASTER_PORT": str(_free_port()), "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    # niced, so that the test, polling for results, sees rank 1's first one before it finishes the next
    return subprocess.Popen(["nice", "-n", "19", "bash", str(REPO / "scripts" / "shapes_multigpu.sh"),
                             "--eval-list", str(list_path), "--save-dir", str(save_dir), *FAST,
                             "--images-at-once", "1"], env=env, cwd=REPO, stderr=log, stdout=log)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker's pid in /proc")
def test_a_killed_torchrun_worker_fails_the_run_and_the_rerun_finishes_only_the_rest(shapes_list, tmp_path):
    lines = _lines(shapes_list)
    list_path = shapes_list.parent / "killed.txt"
    # rank 0 takes lines 1, 3, 5, 7: a missing image first; rank 1 lines 2, 4, 6; line 8 repeats line 4
    list_path.write_text("\n".join(["images/missing.png 0", *lines, lines[2]]) + "\n")
    run_dir = tmp_path / "out" / RUN
    rank1 = [run_dir / "json" / label / f"{Path(path).stem}.json"
             for path, label in (line.rsplit(maxsplit=1) for line in lines[0::2])]

    with open(tmp_path / "first.log", "w") as log:
        launcher = _torchrun(list_path, tmp_path / "out", log)
        deadline = time.monotonic() + 300
        while launcher.poll() is None and not any(p.exists() for p in rank1) and time.monotonic() < deadline:
            time.sleep(0.01)
        victim = _worker_of_rank(launcher.pid, 1)
        assert victim is not None and sum(p.exists() for p in rank1) < len(rank1), "rank 1 ended before the kill"
        os.kill(victim, signal.SIGKILL)  # as the out-of-memory killer would
        status = launcher.wait(timeout=300)
    first = (tmp_path / "first.log").read_text()
    assert status != 0, first[-3000:]
    assert re.search(r"rank\s*:\s*1 \(local_rank: 1\)\s*\n\s*exitcode\s*:\s*-9", first), first[-3000:]
    assert first.count("note:") == 1 and f"{list_path}:8: repeats line 4" in first
    _all_valid(run_dir)
    done = {p: p.stat().st_mtime_ns for p in find_result_files(run_dir)}
    assert 1 <= len(done) < 6

    # the rerun: rank 0's missing image fails again, which must not stop rank 1; the last rank to end exits 1
    with open(tmp_path / "rerun.log", "w") as log:
        status = _torchrun(list_path, tmp_path / "out", log).wait(timeout=300)
    rerun = (tmp_path / "rerun.log").read_text()
    assert status != 0 and re.search(r"exitcode\s*:\s*1 ", rerun), rerun[-3000:]
    explained = [int(n) for n in re.findall(r": explained (\d+) images", rerun)]
    assert sum(explained) == 6 - len(done), rerun[-3000:]  # exactly the missing images
    _all_valid(run_dir)
    assert len(find_result_files(run_dir)) == 6 and len(list(run_dir.glob("npy/*/*.npy"))) == 6
    assert {p: p.stat().st_mtime_ns for p in done} == done  # none written twice
    assert not list(run_dir.rglob("*.tmp"))  # what the killed writes left is gone with their rewrite
    failures = [json.loads(line) for line in (run_dir / "failures.jsonl").read_text().splitlines()]
    assert [(f["image"], f["list_line"]) for f in failures] == [("images/missing.png", 1)] * 2  # once per run


def test_the_last_rank_to_end_carries_the_failures_of_the_others(monkeypatch, capsys):
    # torchrun stops every rank of a machine as soon as one exits with a non-zero status
    from torch.distributed import TCPStore

    port = _free_port()
    agent_store = TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)  # as torchrun's agent serves
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    assert finish_rank(1, Worker(0, 3)) == 0  # items failed, but ranks 1 and 2 still work
    assert finish_rank(0, Worker(2, 3)) == 0
    assert finish_rank(0, Worker(1, 3)) == 1  # the last to end
    assert capsys.readouterr().err.splitlines() == [
        "rank 0: exiting with status 0 while other ranks still work (torchrun would stop them); the last rank to "
        "end exits with status 1",
        "rank 1: the last rank to end; items of 1 rank(s) failed (see failures.jsonl): exiting with status 1"]
    assert finish_rank(1, Worker(0, 1)) == 1  # a single process keeps its status
    assert agent_store.add("smdl_attribution/attempt_0/ranks_ended", 0) == 3


# --------------------------------------------------------------------------- failures.jsonl from several ranks


def _append_failures(run_dir, rank, count):
    for i in range(count):
        record_failure(run_dir, ListItem(f"rank{rank}/img{i}.png", rank, i + 1),
                       f"reason {i} of rank {rank} " + "x" * (97 * i % 3000))


def test_failures_appended_by_several_ranks_at_once_stay_one_line_each(tmp_path):
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    workers = [context.Process(target=_append_failures, args=(tmp_path, rank, 150)) for rank in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    entries = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert sorted((e["class"], e["list_line"]) for e in entries) == [(r, i + 1) for r in range(4) for i in range(150)]
    assert all(e["image"] == f"rank{e['class']}/img{e['list_line'] - 1}.png" for e in entries)


# --------------------------------------------------------------------------- a full disk


class _FillingHandle:
    """A file handle on a disk with ``room`` bytes left: the write that would pass it fails."""

    def __init__(self, handle, room: int, code: int):
        self.handle, self.room, self.code = handle, room, code

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(self.code, os.strerror(self.code))
        self.room -= size
        return self.handle.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def __getattr__(self, name):
        return getattr(self.handle, name)


def _fill_disk(monkeypatch, room=0, code=errno.ENOSPC, where=lambda path: True):
    """Atomic writes to temporary files for which ``where(path)`` holds get ``room`` bytes."""
    fdopen = os.fdopen

    def filling(fd, mode="r", *args, **kwargs):
        handle = fdopen(fd, mode, *args, **kwargs)
        return _FillingHandle(handle, room, code) if where(Path(os.readlink(f"/proc/self/fd/{fd}"))) else handle

    monkeypatch.setattr(atomic.os, "fdopen", filling)


def _figure(path):
    from matplotlib.figure import Figure

    from visualization.canvas import save_figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    save_figure(fig, path)


@pytest.mark.parametrize("write, room, code", [
    (lambda path: atomic_save_npy(path, np.zeros((50, 50))), 100, errno.ENOSPC),       # result arrays
    (lambda path: atomic_write_json(path, {"x": list(range(500))}), 0, errno.ENOSPC),  # result records
    (lambda path: atomic_torch_save({"t": torch.zeros(10_000)}, path), 1000, errno.ENOSPC),  # torch wraps it
    (_figure, 100, errno.ENOSPC),                                                      # figures
    (lambda path: atomic_save_npy(path, np.zeros(3)), 0, errno.EDQUOT),                # a quota
], ids=["npy", "json", "torch", "figure", "quota"])
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads temporary file names from /proc")
def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_the_old_file(tmp_path, monkeypatch, write, room,
                                                                            code):
    path = tmp_path / "out" / "result.bin"
    path.parent.mkdir()
    path.write_bytes(b"the previous version")
    _fill_disk(monkeypatch, room, code)
    with pytest.raises(DiskFull) as caught:
        write(path)
    quota = " (disk quota exceeded)" if code == errno.EDQUOT else ""
    assert str(caught.value) == f"no space left on {path.parent}{quota}"
    assert path.read_bytes() == b"the previous version" and sorted(path.parent.iterdir()) == [path]


def test_a_full_disk_during_fsync_is_a_disk_full_too(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # NFS and delayed allocation report it here

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(DiskFull, match=f"no space left on {re.escape(str(tmp_path))}$"):
        atomic_write_json(tmp_path / "r.json", {})
    assert not list(tmp_path.iterdir())


def test_an_append_on_a_full_disk_leaves_no_part_of_its_line(tmp_path, monkeypatch):
    path = tmp_path / "failures.jsonl"
    append_line(path, '{"first": 1}')
    write = os.write

    def short_write(fd, data):  # room for half the line, as a nearly full disk gives
        return write(fd, data[: len(data) // 2]) if b"second" in data else write(fd, data)

    def no_room(fd, data):
        if b"second" in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    for fake in (short_write, no_room):
        monkeypatch.setattr(atomic.os, "write", fake)
        with pytest.raises(DiskFull, match=f"no space left on {re.escape(str(tmp_path))}$"):
            append_line(path, '{"second": 2}')
        assert path.read_text() == '{"first": 1}\n'


def test_a_full_disk_stops_the_item_loop_without_failing_the_items(tmp_path):
    items = [ListItem(f"{i}.png", 0, i + 1) for i in range(4)]
    calls = []

    def work(item):
        calls.append(item.line)
        if item.line == 2:
            raise OSError(errno.ENOSPC, "No space left on device")  # not through our writers: named by run_dir

    with pytest.raises(DiskFull, match=f"no space left on {re.escape(str(tmp_path))}$"):
        run_items(items, work, run_dir=tmp_path, desc="x", show=False)
    assert calls == [1, 2] and not (tmp_path / "failures.jsonl").exists()

    calls.clear()  # explained together: not retried one by one, not recorded
    with pytest.raises(DiskFull):
        run_groups(((item, None) for item in items), 4, lambda group: work(group[-1][0]) or [1] * len(group),
                   run_dir=tmp_path, desc="x", group=2, show=False)
    assert calls == [2] and not (tmp_path / "failures.jsonl").exists()


def test_a_command_ends_a_full_disk_with_one_line_and_status_3(tmp_path, capsys):
    def full():
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.png"))
        except OSError:
            raise RuntimeError("file write failed")  # as torch.save reports it

    assert run_reporting_input_errors(full) == 3
    assert capsys.readouterr().err == f"error: no space left on {tmp_path}\n"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads temporary file names from /proc")
def test_a_run_stops_on_a_full_disk_and_the_rerun_resumes(shapes_list, tmp_path, monkeypatch, capsys):
    lines = _lines(shapes_list)
    list_path = shapes_list.parent / "three.txt"
    list_path.write_text("\n".join(lines[:3]) + "\n")
    second_path, second_label = lines[1].rsplit(maxsplit=1)
    second = Path(second_path).stem
    # the disk fills up between the second image's npy and its JSON
    _fill_disk(monkeypatch, where=lambda path: path.name.startswith(f".{second}.json."))
    run_dir = tmp_path / RUN
    assert _shapes(list_path, tmp_path, "--images-at-once", "1") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: no space left on {run_dir / 'json' / second_label}"
    assert not any(line.startswith("failed") for line in err)  # no image marked as failed
    assert not (run_dir / "failures.jsonl").exists()
    first = find_result_files(run_dir)
    assert len(first) == 1 and len(_result_files(run_dir)) == 2  # the first image, and nothing of the second
    assert not list(run_dir.rglob("*.tmp"))
    mtime = first[0].stat().st_mtime_ns

    monkeypatch.undo()  # space freed
    assert _shapes(list_path, tmp_path, "--images-at-once", "1") == 0
    assert "1 of 3 images already done" in capsys.readouterr().err
    assert len(find_result_files(run_dir)) == 3 and first[0].stat().st_mtime_ns == mtime
    _all_valid(run_dir)


def test_a_full_disk_costs_the_prototype_cache_only_a_warning(tmp_path, monkeypatch):
    from submodular_attribution.adapters import clip

    protos = torch.eye(2, 4)
    monkeypatch.setattr(clip, "class_prototypes", lambda *args, **kwargs: protos)
    (tmp_path / "w.bin").write_bytes(b"weights")
    _fill_disk(monkeypatch)
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match=re.escape(f"cannot cache CLIP text prototypes (no space left on {cache})")):
        got = clip.cached_prototypes(None, None, "tiny", tmp_path / "w.bin", ["a", "b"], ["{}"], "cpu",
                                     cache_dir=cache)
    assert torch.equal(got, protos) and not list(cache.iterdir())  # the run goes on; nothing half-written
