"""``torch.distributed.elastic.utils``: its ``data`` helpers."""
