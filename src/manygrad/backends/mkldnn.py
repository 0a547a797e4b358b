"""``torch.backends.mkldnn``: oneDNN, which manygrad does not use (NumPy's BLAS does the work)."""

enabled = False


def is_available() -> bool:
    return False
