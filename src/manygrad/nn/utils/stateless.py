"""``nn.utils.stateless``: PyTorch's older home of ``functional_call`` (now ``mg.func``)."""

from ...func import functional_call

__all__ = ["functional_call"]
