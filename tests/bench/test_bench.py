"""manygrad bench: timing, explanation rules on synthetic figures, report and charts."""

import json
import time

import pytest

from manygrad import bench
from manygrad.bench.explain import Peaks


def test_measure_reports_median_spread_and_calibrates_calls():
    calls = []

    def work():
        calls.append(1)
        s = 0
        for i in range(2000):
            s += i
        return s

    t = bench.measure(work, "cpu", repeats=5, warmup=1, min_repeat_s=0.01)
    assert len(t.per_call) == 5 and t.calls_per_repeat >= 1
    lo, hi = t.spread
    assert lo <= t.median <= hi
    # every timed repeat ran calls_per_repeat calls (+ warm-up + calibration runs)
    assert len(calls) >= 1 + 5 * t.calls_per_repeat
    assert 0 <= t.overhead < 1


def test_measure_calls_the_given_sync_once_per_repeat():
    syncs = []
    bench.measure(lambda: None, "cpu", repeats=3, warmup=1, min_repeat_s=0.0,
                  sync=lambda: syncs.append(1))  # fmt: skip
    # warm-up 1, calibration 2, repeats 2 each, empty-loop probe 3x2
    assert len(syncs) == 1 + 2 + 3 * 2 + 3 * 2


def _row(workload, kind, device, seconds, flops=0.0, nbytes=0.0, size=1, ops=1):
    return {"workload": workload, "kind": kind, "device": device, "seconds": seconds,
            "flops": flops, "bytes": nbytes, "size": size, "ops": ops, "unit": "x",
            "size_label": "n"}  # fmt: skip


@pytest.mark.parametrize(
    "row,expect",
    [
        (_row("gemm_fp32", "compute", "cuda:0", 1e-3, flops=50e9), "compute: 50.00 TFLOP/s, 83%"),
        (
            _row("elementwise", "memory", "cuda:0", 1e-3, nbytes=3e9),
            "memory bandwidth: 3000.0 GB/s",
        ),
        (_row("train_mlp", "train", "cuda:0", 100e-6, flops=1e6, ops=40), "launch overhead"),
        (_row("train_cnn", "train", "cpu", 1e-2, flops=1e8, nbytes=1e6, ops=4), "overheads"),
        (
            _row("h2d_pinned", "transfer", "cuda:0", 1e-2, nbytes=2.5e8),
            "host-device link: 25.0 GB/s",
        ),
        (_row("launch", "latency", "cuda:0", 8e-6), "8.0 µs"),
    ],
)
def test_explanations_follow_the_figures(row, expect):
    peaks = Peaks(flops=60e12, bandwidth=4e12, launch=8e-6)
    if row["device"] == "cpu":
        peaks = Peaks(flops=1e12, bandwidth=20e9, launch=5e-6)
    assert expect in bench.explain(row, peaks)


def test_peaks_and_crossover_from_rows():
    rows = [
        _row("gemm_fp32", "compute", "cpu", 1.0, flops=1e11),
        _row("elementwise", "memory", "cpu", 1.0, nbytes=1e10),
        _row("launch", "latency", "cpu", 5e-6),
    ]
    p = bench.peaks_from(rows)["cpu"]
    assert p.flops == 1e11 and p.bandwidth == 1e10 and p.launch == 5e-6
    sweep = []
    for size, cpu_tp, gpu_tp in [(1, 100, 20), (32, 1000, 900), (128, 2000, 9000)]:
        sweep.append(dict(_row("train_mlp", "train", "cpu", 1, size=size), throughput=cpu_tp))
        sweep.append(dict(_row("train_mlp", "train", "cuda:0", 1, size=size), throughput=gpu_tp))
    note = bench.crossover(sweep, "train_mlp")
    assert "cuda:0 beats the CPU from size 128" in note and "4.5x" in note


def test_quick_suite_report_json_markdown_and_charts(tmp_path):
    pytest.importorskip("matplotlib", reason="charts need matplotlib")
    ws = bench.resolve("launch,elementwise")
    ws[1].sizes_quick = [1 << 14]  # keep the test small
    result = bench.run_suite(ws, ["cpu"], quick=True)
    assert {r["workload"] for r in result["rows"]} == {"launch", "elementwise"}
    for r in result["rows"]:
        assert r["seconds"] > 0 and r["bound"] and r["overhead_pct"] >= 0
    assert any("No GPU was measured" in n for n in result["notes"])
    text = bench.table(result, width=200)
    assert "elementwise" in text and "GB/s" in text
    files = bench.write_all(result, str(tmp_path))
    assert json.loads(open(files["json"]).read())["rows"]
    assert "| workload |" in open(files["markdown"]).read()


def test_baseline_rows_are_shown_beside_and_give_speedups():
    here = bench.finish({"machine": {}, "rows": [dict(_row("conv2d", "conv", "cpu", 0.1),
                                                     throughput=10.0)]})  # fmt: skip
    base = {"machine": {"host": "gpubox"},
            "rows": [dict(_row("conv2d", "conv", "cuda:0", 0.01), throughput=100.0)]}  # fmt: skip
    merged = bench.finish(here, base)
    gpu = [r for r in merged["rows"] if r["device"].startswith("cuda")]
    assert gpu and gpu[0]["device"] == "cuda:0@gpubox (baseline)"
    assert gpu[0]["vs_cpu"] == pytest.approx(10.0)


def test_bad_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown workload 'gemmm'.*gemm_fp32"):
        bench.resolve("gemmm")
    with pytest.raises(ValueError, match="available here: cpu"):
        bench.resolve_devices("tpu")


def test_out_of_memory_is_reported_and_the_suite_goes_on():
    def build(device, size, lib):
        if size > 1:
            raise MemoryError("cannot allocate")
        return bench.Case(lambda: time.sleep(0), flops=1.0)

    w = bench.Workload("fake", "compute", [1, 2], [1, 2], build)
    result = bench.run_suite([w], ["cpu"], quick=True)
    ok, oom = result["rows"]
    assert ok["seconds"] is not None
    assert oom["seconds"] is None and "out of memory at n 2" in oom["error"]


def test_without_peaks_the_explanation_says_what_to_add():
    assert "include the gemm" in bench.explain(_row("train_mlp", "train", "cpu", 1e-3), None)


@pytest.mark.parametrize("lib", ["manygrad", "torch"])
def test_training_workloads_build_in_both_libraries(lib):
    if lib == "torch":
        pytest.importorskip("torch", reason="the PyTorch twin needs PyTorch")
    case = bench.WORKLOADS["train_mlp"].build("cpu", 4, lib)
    assert case.samples == 4 and case.flops > 0
    loss = case.fn()
    assert float(loss.detach()) > 0


def test_workload_table_names_and_gpu_only():
    assert list(bench.WORKLOADS)[:4] == ["launch", "gemm_fp32", "gemm_fp16", "gemm_bf16"]
    gpu_only = {n for n, w in bench.WORKLOADS.items() if w.gpu_only}
    assert gpu_only == {"gemm_fp16", "gemm_bf16", "h2d_pageable", "h2d_pinned",
                        "d2h_pageable", "d2h_pinned"}  # fmt: skip
    assert [w.name for w in bench.resolve("train")] == ["train_mlp", "train_cnn", "train_gpt"]


@pytest.mark.parametrize("name", ["h2d_pageable", "h2d_pinned", "d2h_pageable", "d2h_pinned"])
def test_transfer_workloads_move_data_in_both_libraries(name):
    # manygrad on the fake GPU; the PyTorch twin must time PyTorch's own copy (here on cpu)
    torch = pytest.importorskip("torch")
    from manygrad.fakegpu import fake_stats

    case = bench.WORKLOADS[name].build("fakegpu", 1 << 12, "manygrad")
    fake_stats.reset()
    case.fn()
    assert (fake_stats.h2d if name.startswith("h2d") else fake_stats.d2h) == 1
    twin = bench.WORKLOADS[name].build("fakegpu", 1 << 12, "torch")
    out = twin.fn()
    assert isinstance(out, torch.Tensor) and out.numel() == 1 << 10
