"""``torch.backends.openmp``: manygrad's CPU threads come from NumPy's BLAS."""


def is_available() -> bool:
    return False
