"""torch.profiler under manygrad: counts and times per op (forward and backward), nested
record_function blocks, schedules and trace files."""

import json
import os

import pytest

import manygrad as mg
from manygrad import autograd
from manygrad.profiler import (
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    tensorboard_trace_handler,
)


def _step(model, x):
    model(x).sum().backward()


def _model():
    return mg.nn.Sequential(mg.nn.Linear(8, 8), mg.nn.ReLU(), mg.nn.Linear(8, 2))


def test_ops_and_backward_ops_are_counted():
    m, x = _model(), mg.randn(4, 8)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("forward_and_backward"):
            _step(m, x)
    counts = {a.key: a.count for a in prof.key_averages()}
    assert counts["Linear"] == 2 and counts["LinearBackward0"] == 2
    assert counts["Relu"] == 1 and counts["ReluBackward0"] == 1
    assert counts["forward_and_backward"] == 1
    avg = {a.key: a for a in prof.key_averages()}
    block = avg["forward_and_backward"]
    inner = sum(a.cpu_time_total for k, a in avg.items() if k != "forward_and_backward")
    assert block.cpu_time_total >= inner and block.self_cpu_time_total <= block.cpu_time_total
    shapes = {a.input_shapes for a in prof.key_averages(group_by_input_shape=True)
              if a.key == "Linear"}  # fmt: skip
    assert "[[4, 8], [8, 8], [8]]" in shapes
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=3)
    assert "forward_and_backward" in table and table.count("\n") == 7
    with pytest.raises(ValueError, match="sort by"):
        prof.key_averages().table(sort_by="flops")


def test_nothing_is_recorded_outside_the_block_and_after_an_error():
    m, x = _model(), mg.randn(4, 8)
    with pytest.raises(RuntimeError, match="boom"):
        with profile():
            raise RuntimeError("boom")
    assert autograd._profile is None
    with profile() as prof:
        pass
    _step(m, x)
    assert len(prof.events()) == 0


def test_schedule_keeps_the_active_steps_and_writes_traces(tmp_path):
    m, x = _model(), mg.randn(4, 8)
    out = str(tmp_path / "tb")
    sched = schedule(wait=1, warmup=1, active=2, repeat=1)
    with profile(schedule=sched, on_trace_ready=tensorboard_trace_handler(out)) as prof:
        for _ in range(6):
            _step(m, x)
            prof.step()
    counts = {a.key: a.count for a in prof.key_averages()}
    assert counts["Linear"] == 4  # two recorded steps of two layers
    files = os.listdir(out)
    assert len(files) == 1 and files[0].endswith(".pt.trace.json")
    trace = json.load(open(os.path.join(out, files[0])))
    assert {e["name"] for e in trace["traceEvents"]} >= {"Linear", "LinearBackward0"}
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in trace["traceEvents"])


def test_record_function_as_decorator_and_torch_autograd_path(tmp_path):
    @record_function("helper")
    def helper(x):
        return x * 2

    with profile() as prof:
        helper(mg.ones(3))
    keys = {a.key for a in prof.key_averages()}
    assert {"helper", "Mul"} <= keys
    path = tmp_path / "p.py"
    path.write_text(
        "import torch\nfrom torch.autograd.profiler import profile, record_function\n"
        "with profile() as p:\n    with record_function('x'):\n        torch.ones(2) + 1\n"
        "print(sorted(a.key for a in p.key_averages()))\n"
    )
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "manygrad", "run", str(path)], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "'Add'" in r.stdout and "'x'" in r.stdout
