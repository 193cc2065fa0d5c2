import pytest
import torch
from torch import nn

from submodular_attribution.common.checkpoints import load_weights
from submodular_attribution.common.errors import InputError


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_prefixed_and_wrapped_state_dicts_load(tmp_path):
    src = _net()
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, tmp_path / "a.pth")
    dst = load_weights(_net(), tmp_path / "a.pth")
    x = torch.rand(5, 3)
    assert torch.equal(dst(x), src(x))


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.pop("2.bias"), "missing keys: 2.bias"),
    (lambda s: s.update(extra=torch.zeros(1)), "unexpected keys: extra"),
    (lambda s: s.update({"0.weight": torch.zeros(4, 7)}), "shape mismatch: 0.weight (4, 7)≠(4, 3)"),
])
def test_mismatched_weights_name_file_and_keys(tmp_path, edit, message):
    state = _net().state_dict()
    edit(state)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(InputError, match=r"w\.pt: weights do not fit Sequential \(.*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_weights(_net(), tmp_path / "w.pt")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="nope.pt: checkpoint not found"):
        load_weights(_net(), tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.pt: cannot read checkpoint"):
        load_weights(_net(), tmp_path / "bad.pt")
