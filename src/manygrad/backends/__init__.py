"""``torch.backends`` flags: ``cudnn``, ``cuda``, ``mps``, ``mkldnn``, ``openmp``, ``quantized``.

The flags are plain module attributes that scripts read and set
(``torch.backends.cudnn.benchmark = True``); manygrad picks its own algorithms, so setting
them changes nothing except ``cudnn.deterministic``, which is recorded for code that reads it.
"""

from . import cpu, cuda, cudnn, mkldnn, mps, openmp, quantized  # noqa: F401
