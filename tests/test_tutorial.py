"""The tutorial notebook's code cells run against the repository (display cells skipped)."""
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
NOTEBOOK = Path(__file__).resolve().parents[1] / "tutorial" / "smdl_quickstart.ipynb"


def test_quickstart_notebook_runs(tmp_path, trained_shapes, monkeypatch):
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec("".join(cells[0]["source"]), namespace)
    namespace["CHECKPOINT"], namespace["DATA_ROOT"] = trained_shapes[0], tmp_path / "shapes"
    for cell in cells[1:]:
        source = "".join(cell["source"])
        if "IPython" not in source:
            exec(source, namespace)
    assert 0.5 < namespace["insertion"] <= 1 and os.path.getsize(namespace["figure"]) > 0
