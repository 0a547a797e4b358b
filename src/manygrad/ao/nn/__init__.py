"""``torch.ao.nn``: quantized (``quantized``, ``quantized.dynamic``), fused (``intrinsic``)
and quantization-aware-training (``qat``) modules."""
