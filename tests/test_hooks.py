"""capture: one tensor read out of a forward pass, the hook gone after the block."""
import pytest
import torch
from torch import nn

from submodular_attribution.common.hooks import capture


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(3, 3)

    def forward(self, x):
        return self.inner(self.inner(x))


def test_input_and_output_of_one_call_and_no_hook_left():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    with capture(net[2], "head", of="input") as seen_in, capture(net[0], "first") as seen_out:
        y = net(x)
    hidden = net[0](x)
    assert torch.equal(seen_out.one(), hidden) and torch.equal(seen_in.one(), hidden.relu())
    assert seen_in.one().requires_grad  # still in the graph, for gradient methods
    assert torch.equal(net[2](seen_in.one()), y)
    assert not net[0]._forward_hooks and not net[2]._forward_pre_hooks


def test_a_module_run_twice_is_an_error_naming_it_and_the_hook_goes_on_errors_too():
    net = Twice()
    with capture(net.inner, "inner layer") as seen:
        net(torch.randn(1, 3))
    with pytest.raises(RuntimeError, match=r"inner layer ran 2 times in one forward pass \(need 1\)"):
        seen.one()
    with pytest.raises(ZeroDivisionError), capture(net.inner, "inner layer"):
        1 / 0
    assert not net.inner._forward_hooks
