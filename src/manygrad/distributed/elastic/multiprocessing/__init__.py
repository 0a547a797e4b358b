"""``torch.distributed.elastic.multiprocessing``: only its ``errors`` module
(``@record``); manygrad starts ranks with ``manygrad run`` / ``mpiexec``."""
