"""``torch.backends.mps``: Apple's Metal backend, which manygrad does not have."""


def is_available() -> bool:
    """False: manygrad runs on NVIDIA GPUs (CuPy) and CPUs only."""
    return False


def is_built() -> bool:
    return False
