"""``manygrad bench``: CPU against GPU on the user's machine, and why each wins where it does.

Example:
    >>> from manygrad import bench
    >>> result = bench.run_suite(bench.resolve("gemm_fp32,elementwise"), ["cpu"], quick=True)
    >>> print(bench.table(result))
"""

from .explain import Peaks, crossover, explain, peaks_from
from .report import charts, markdown, table, write_all
from .suite import available_devices, finish, machine_info, resolve_devices, run_suite
from .timing import Timing, measure
from .workloads import WORKLOADS, Case, Workload, resolve

__all__ = [
    "WORKLOADS", "Case", "Peaks", "Timing", "Workload", "available_devices", "charts",
    "crossover", "explain", "finish", "machine_info", "markdown", "measure", "peaks_from",
    "resolve", "resolve_devices", "run_suite", "table", "write_all",
]  # fmt: skip
