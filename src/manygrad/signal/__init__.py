"""``torch.signal``: window functions (``mg.signal.windows``)."""

from . import windows  # noqa: F401
