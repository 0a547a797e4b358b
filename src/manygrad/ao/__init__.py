"""PyTorch's ``torch.ao``: quantized tensors (``qtensor``), eager-mode quantization
(``quantization``: observers, QConfig, prepare / convert, quantize_dynamic) and the quantized
modules (``nn.quantized``, ``nn.quantized.dynamic``, ``nn.intrinsic``, ``nn.qat``).

Example:
    >>> from manygrad.ao.quantization import quantize_dynamic
    >>> qmodel = quantize_dynamic(model, {mg.nn.Linear}, dtype=mg.qint8)
"""
