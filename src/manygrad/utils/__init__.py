"""``mg.utils``: PyTorch's ``torch.utils`` tree (``checkpoint``, ``data``)."""
