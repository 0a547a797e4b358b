"""``torch.backends.cpu``: the CPU's vector capability, as far as NumPy reports it."""


def get_cpu_capability() -> str:
    """``"AVX512"``, ``"AVX2"`` or ``"DEFAULT"``, from NumPy's detected CPU features."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # older NumPy
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    if feats.get("AVX512F"):
        return "AVX512"
    return "AVX2" if feats.get("AVX2") else "DEFAULT"
