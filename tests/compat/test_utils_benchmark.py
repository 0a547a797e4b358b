"""torch.utils.benchmark's Timer, Measurement and Compare on manygrad."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import compat
from manygrad.utils import benchmark as B


def test_timeit_measures_per_run_time():
    calls = []
    t = B.Timer("f()", globals={"f": lambda: calls.append(1)}, label="calls", sub_label="one")
    m = t.timeit(200)
    assert len(calls) == 200 + 2  # the warm-up (max(number // 100, 2)) and the measurement
    assert m.number_per_run == 200 and len(m.times) == 1
    assert m.times[0] == pytest.approx(m.raw_times[0] / 200)
    assert m.median == m.mean == m.times[0] and m.iqr == 0.0
    assert m.title == "calls: one"
    assert "1 measurement, 200 runs , 1 thread" in repr(m)


def test_blocked_autorange_spends_at_least_min_run_time():
    import time

    t = B.Timer("sleep(0.002)", globals={"sleep": time.sleep})
    m = t.blocked_autorange(min_run_time=0.05)
    assert sum(m.raw_times) >= 0.05 and len(m.times) >= 2
    assert 0.002 <= m.median < 0.05
    assert m.significant_figures in (1, 2, 3, 4)


def test_adaptive_autorange_stops_at_max_run_time():
    rng = np.random.default_rng(0)
    import time

    t = B.Timer("sleep(r.uniform(0, 0.002))", globals={"sleep": time.sleep, "r": rng})
    m = t.adaptive_autorange(threshold=1e-9, max_run_time=0.1)  # a threshold never met
    assert 0.1 <= sum(m.raw_times) < 1.0


def test_noisy_measurements_warn_and_compare_prints_a_table(capsys):
    spec = B.TaskSpec("x + 1", "pass", label="add", sub_label="10", description="cpu")
    m = B.Measurement(10, [1e-5, 1e-5, 3e-5, 1e-5, 5e-5, 1e-5], spec)
    assert m.has_warnings and "Interquartile range" in repr(m)
    quiet = B.Measurement(10, [1e-5] * 6, B.TaskSpec("x + 1", "pass", label="add",
                                                     sub_label="10", description="gpu"))  # fmt: skip
    assert not quiet.has_warnings
    B.Compare([m, quiet]).print()
    out = capsys.readouterr().out
    assert "cpu" in out and "gpu" in out and "Times are in microseconds (us)." in out
    assert "10  |  1  |  1" in out  # medians of 1 us per run (10 runs in 10 us)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="Python source"):
        B.Timer(lambda: None)
    with pytest.raises(ValueError, match="C\\+\\+"):
        B.Timer("pass", global_setup="#include <x>")


def test_importable_as_torch_utils_benchmark(tmp_path):
    path = tmp_path / "bench.py"
    path.write_text(
        "import torch\n"
        "import torch.utils.benchmark as benchmark\n"
        "x = torch.ones(8)\n"
        "m = benchmark.Timer('x * 2', globals={'x': x}).timeit(50)\n"
        "result = (m.number_per_run, type(m).__name__)\n"
    )
    assert compat.run_script(str(path))["result"] == (50, "Measurement")
    assert mg.utils.benchmark.Timer is B.Timer
