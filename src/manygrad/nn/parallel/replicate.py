"""``replicate``: copies of a module on several devices whose parameters stay connected to
the original's (their gradients add up in it), as ``torch.nn.parallel.replicate``."""

from __future__ import annotations

from ..module import Module
from .scatter_gather import as_device, device_kind


def _copy_to(t, dev, detach: bool):
    if t is None:
        return None
    if detach or not t.requires_grad:
        out = t.detach().to(dev)
        # NOTE: as PyTorch, a detached replica keeps requires_grad (a leaf of its own)
        return out.requires_grad_(t.requires_grad) if detach and t.requires_grad else out
    return t.to(dev)  # NOTE: differentiable: the replica's gradient reaches t


def _shallow(module: Module) -> Module:
    replica = module.__new__(type(module))
    d = replica.__dict__
    d.update(module.__dict__)
    d["_parameters"] = dict(module._parameters)
    d["_buffers"] = dict(module._buffers)
    d["_modules"] = dict(module._modules)
    d["_is_replica"] = True
    return replica


def replicate(network: Module, devices, detach: bool = False) -> list[Module]:
    """One copy of ``network`` per device in ``devices``.

    A replica shares the original's structure and options; its parameters and buffers
    are copies on its device made with ``.to`` (on the original's own device, the same
    tensors), so gradients of a replica's parameters flow back into the original's.

    Args:
        network: the module to copy.
        devices: device indices or devices.
        detach: make the copies leaves instead (no gradient reaches the original).

    Example:
        >>> r0, r1 = replicate(model, [0, 1])
    """
    kind = device_kind(network)
    devs = [as_device(d, kind) for d in devices]
    if not devs:
        return []
    modules = list(network.modules())
    index = {id(m): i for i, m in enumerate(modules)}
    replicas = [[_shallow(m) for m in modules] for _ in devs]
    for copies, dev in zip(replicas, devs):
        memo: dict[int, object] = {}  # NOTE: a tensor shared by two modules stays shared
        for m, r in zip(modules, copies):
            for key, child in m._modules.items():
                r._modules[key] = None if child is None else copies[index[id(child)]]
            for store in ("_parameters", "_buffers"):
                target = r.__dict__[store]
                for key, t in getattr(m, store).items():
                    if t is None:
                        continue
                    if id(t) not in memo:
                        memo[id(t)] = _copy_to(t, dev, detach)
                    target[key] = memo[id(t)]
    return [copies[0] for copies in replicas]


__all__ = ["replicate"]
