"""Execute the tutorial notebooks in fresh kernels and save them, as the test suite executes them.

    python tutorial/run_all.py                        # every tutorial/*.ipynb
    python tutorial/run_all.py smdl_quickstart ...    # some of them

Each notebook runs in a new kernel of this Python (not whatever ``python3`` kernel Jupyter would
find first), with the notebook's folder as working directory and the default folders (``ckpt/``,
``datasets/``, results) under ``$SMDL_HOME`` when set, else the checkout. It is saved with its
outputs, so its figures show on the web, unless it needs weights that are not in ``ckpt/``
(:data:`NEEDS_WEIGHTS`): those fall back to random-initialised models, whose outputs mean nothing,
and are saved without outputs. The test suite (``tests/test_tutorial.py``) calls :func:`execute`.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

TUTORIAL = Path(__file__).resolve().parent
# Notebooks that need real weights (CLIP ViT-L/14, SAM, the CUB ResNet-101, ImageBind, LanguageBind,
# QuiltNet); without them they run random-initialised stand-ins through the same code, so their
# outputs are not worth committing.
NEEDS_WEIGHTS = ("smdl_clip_imagenet", "smdl_sam_regions", "smdl_cub", "smdl_imagebind", "smdl_languagebind",
                 "smdl_quilt")
CELL_TIMEOUT_S = 300
_KERNEL = "smdl-tutorial-python"


def notebooks(names: Sequence[str] = ()) -> list[Path]:
    """``tutorial/<name>.ipynb`` for each name (``.ipynb`` optional), or every notebook."""
    if not names:
        return sorted(TUTORIAL.glob("*.ipynb"))
    paths = [TUTORIAL / (name if name.endswith(".ipynb") else f"{name}.ipynb") for name in names]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SystemExit(f"error: no such notebook: {', '.join(missing)}")
    return paths


@contextmanager
def kernel_manager() -> Iterator[KernelManager]:
    """A manager whose kernel is ``sys.executable -m ipykernel_launcher`` (a throwaway kernelspec)."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / _KERNEL
        spec.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
        specs = KernelSpecManager(kernel_dirs=[folder], ensure_native_kernel=False)
        yield KernelManager(kernel_name=_KERNEL, kernel_spec_manager=specs)


def execute(path: str | os.PathLike, home: str | os.PathLike | None = None,
            timeout: int = CELL_TIMEOUT_S) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` in a fresh kernel; return the executed notebook
    (the file is not changed). The kernel's working directory is the notebook's folder;
    ``home`` becomes its ``$SMDL_HOME``. ``timeout``: seconds per cell. A failing cell raises
    ``nbclient.exceptions.CellExecutionError``, whose message shows the cell and its traceback."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if home is not None:
        env["SMDL_HOME"] = str(home)
    with kernel_manager() as km:
        client = NotebookClient(nb, km=km, timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute(env=env)
    return nb


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def main(argv: Sequence[str] | None = None) -> int:
    for path in notebooks(sys.argv[1:] if argv is None else argv):
        start = time.perf_counter()
        nb = execute(path)
        seconds = time.perf_counter() - start
        if path.stem in NEEDS_WEIGHTS:
            clear_outputs(nb)
        nbformat.write(nb, path)
        saved = "without outputs" if path.stem in NEEDS_WEIGHTS else "with outputs"
        print(f"{path.name}: {seconds:.1f} s, saved {saved} ({path.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
