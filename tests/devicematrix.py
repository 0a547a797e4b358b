"""The device matrix every op test runs on.

``cpu`` always; ``fakegpu`` (NumPy arrays that behave like CuPy's: no implicit host
conversion, counted syncs) always; ``fakegpu:1``, the second fake GPU, whose arrays refuse
kernels while ``fakegpu`` is current (CuPy's current-device rule), always; ``cuda`` when
CuPy sees a working GPU. Set
``MANYGRAD_TEST_DEVICES=cuda`` (comma-separated) to choose devices, as
``scripts/gpu-check.sh`` does.
"""

import os

import manygrad as mg


def _devices():
    chosen = os.environ.get("MANYGRAD_TEST_DEVICES")
    if chosen:
        return [d.strip() for d in chosen.split(",") if d.strip()]
    devs = ["cpu", "fakegpu", "fakegpu:1"]
    if mg.cuda.is_available():
        devs.append("cuda")
    return devs


DEVICES = _devices()
