"""torch.cuda.memory, torch.cuda.random, torch.cuda.nccl and the torch.cuda names that
memory and monitoring code calls, compared with PyTorch's on this machine."""

import pickle
import warnings

import pytest
import torch
import torch.cuda.memory as t_memory
import torch.cuda.random as t_random

import manygrad as mg
from manygrad import compat
from manygrad.cuda import memory, nccl
from manygrad.cuda import random as mg_random


def _outcome(fn, *args):
    """What a call gives: its value and warnings, or its error's type and message."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            value = fn(*args)
        except Exception as e:  # noqa: BLE001 - compared below
            return ("raises", type(e).__name__, str(e))
    return ("returns", value, [(x.category, str(x.message)) for x in w])


@pytest.mark.parametrize("name", ["memory_cached", "max_memory_cached", "memory_allocated",
                                  "memory_reserved", "max_memory_allocated"])  # fmt: skip
def test_memory_queries_and_deprecated_names_as_pytorch(name):
    assert _outcome(getattr(mg.cuda, name)) == _outcome(getattr(torch.cuda, name))
    assert getattr(memory, name) is getattr(mg.cuda, name)


@pytest.mark.skipif(mg.cuda.is_available(), reason="PyTorch here is a CPU build")
@pytest.mark.parametrize(
    "name",
    ["utilization", "temperature", "power_draw", "clock_rate", "memory_usage",
     "list_gpu_processes", "is_tf32_supported", "memory_stats_as_nested_dict"],
)  # fmt: skip
def test_queries_without_a_gpu_answer_as_pytorch(name):
    assert _outcome(getattr(mg.cuda, name)) == _outcome(getattr(torch.cuda, name))


def test_nested_stats_and_reset_functions():
    with pytest.warns(FutureWarning, match="reset_peak_memory_stats"):
        memory.reset_max_memory_cached()
    mg.cuda.reset_accumulated_memory_stats()
    if not mg.cuda.is_available():
        with pytest.raises(RuntimeError, match="get_per_process_memory_fraction"):
            mg.cuda.get_per_process_memory_fraction()
        assert mg.cuda.memory_stats_as_nested_dict() == {}
        return
    nested = mg.cuda.memory_stats_as_nested_dict()
    flat = mg.cuda.memory_stats()
    assert nested["allocated_bytes"]["all"]["current"] == flat["allocated_bytes.all.current"]
    assert 0 < mg.cuda.get_per_process_memory_fraction() <= 1.0


def test_memory_history_and_snapshot_pickle(tmp_path, device):
    memory._record_memory_history(max_entries=1000)
    x = mg.randn(64, 64, device=device)
    (x @ x).sum()
    snap = memory._snapshot()
    path = tmp_path / "snapshot.pickle"
    memory._dump_snapshot(str(path))
    memory._record_memory_history(enabled=None)
    with open(path, "rb") as f:
        loaded = pickle.load(f)
    assert loaded == snap
    # PyTorch's layout at the top level: segments and one trace list per GPU
    assert set(loaded) == {"segments", "device_traces"}  # PyTorch's Snapshot TypedDict
    assert isinstance(loaded["segments"], list) and isinstance(loaded["device_traces"], list)
    assert all(isinstance(t, list) for t in loaded["device_traces"])
    assert memory.memory_snapshot() == loaded["segments"]
    with pytest.raises(ValueError, match="enabled"):
        memory._record_memory_history(enabled="everything")


def test_memory_module_names_exist_in_pytorchs():
    for name in memory.__all__:
        assert hasattr(t_memory, name), name


def test_random_module_reexports_the_cuda_functions():
    assert set(mg_random.__all__) == set(t_random.__all__)
    for name in mg_random.__all__:
        assert getattr(mg_random, name) is getattr(mg.cuda, name)
    mg_random.manual_seed(3)
    state = mg_random.get_rng_state("fakegpu")
    a = mg.rand(4, device="fakegpu")
    mg_random.set_rng_state(state, "fakegpu")
    assert (mg.rand(4, device="fakegpu") == a).all().item()


def test_nccl_without_nccl_answers_false_and_version_says_why():
    if mg.distributed.is_nccl_available():
        pytest.skip("NCCL is usable here")
    with pytest.warns(UserWarning, match="NCCL"):
        assert nccl.is_available([mg.zeros(2)]) is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.cuda.nccl.is_available([torch.zeros(2)]) is False
    with pytest.raises(RuntimeError, match="nccl.version"):
        nccl.version()


def test_importable_under_the_hook(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(
        "import torch\n"
        "import torch.cuda.memory\n"
        "from torch.cuda.random import manual_seed, get_rng_state\n"
        "import torch.cuda.nccl as nccl\n"
        "torch.cuda.memory._record_memory_history(max_entries=100)\n"
        "torch.cuda.memory._dump_snapshot(SNAP)\n"
        "torch.cuda.memory._record_memory_history(enabled=None)\n"
        "result = (torch.cuda.memory.memory_allocated(), callable(nccl.version),\n"
        "          torch.cuda.memory_stats_as_nested_dict())\n"
    )
    snap = tmp_path / "s.pickle"
    src = path.read_text().replace("SNAP", repr(str(snap)))
    path.write_text(src)
    got = compat.run_script(str(path))["result"]
    assert got[0] == torch.cuda.memory.memory_allocated() and got[1] is True
    assert snap.exists()
