"""``mg.distributed.elastic`` (``torch.distributed.elastic``): what torchrun scripts import
from it: the ``@record`` decorator (``multiprocessing.errors``) and the elastic data
helpers (``utils.data``). manygrad's launcher (``manygrad run``) does not restart ranks.
"""
