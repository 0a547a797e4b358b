"""Fixes found by the ports of round t (tests/ports/scripts), each against PyTorch."""

import pytest

import manygrad as mg
from manygrad.utils.flop_counter import FlopCounterMode

torch = pytest.importorskip("torch")
TorchFlopCounterMode = pytest.importorskip("torch.utils.flop_counter").FlopCounterMode


def _gpt_like(lib):
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.proj = nn.Linear(8, 16), nn.Linear(16, 8)

        def forward(self, x):
            return x + self.proj(self.fc(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList([Block() for _ in range(2)])  # never called itself
            self.head = nn.Sequential(nn.Linear(8, 3))

        def forward(self, x):
            for block in self.h:
                x = block(x)
            return self.head(x)

    return GPT()


def test_flop_counter_names_modules_under_an_uncalled_container_by_their_path(device):
    # PyTorch's ModuleTracker names a module's whole subtree when it first enters it, so the
    # blocks of a ModuleList are "GPT.h.0" and "GPT.h.1", counted apart
    def counts(lib, dev):
        model = _gpt_like(lib).to(dev)
        x = lib.ones(4, 8, device=dev)
        with (TorchFlopCounterMode if lib is torch else FlopCounterMode)(display=False) as mode:
            model(x).sum().backward()
        return {m: sum(ops.values()) for m, ops in mode.get_flop_counts().items()}

    want, got = counts(torch, "cpu"), counts(mg, device)
    assert got == want and "GPT.h.1.proj" in got
