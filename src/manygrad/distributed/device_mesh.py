"""``DeviceMesh`` and ``init_device_mesh`` (``torch.distributed.device_mesh``).

A mesh lays the global ranks out as an n-d array; each dimension gets process groups
along its lines (in a (2, 4) mesh, dim 0's groups are the columns, dim 1's the rows), made
with ``new_group`` by every rank in one fixed order. ``mesh["dp"]`` is the sub-mesh of
this rank along the named dimensions; it shares the parent's groups.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from . import groups as G
from . import process_group as pgm
from .handles import group as _group

__all__ = ["DeviceMesh", "init_device_mesh"]


def _lines(mesh: np.ndarray, dim: int) -> list[list[int]]:
    """The ranks of each group of mesh dimension ``dim``, in a fixed order."""
    moved = np.moveaxis(mesh, dim, -1).reshape(-1, mesh.shape[dim])
    return [[int(r) for r in row] for row in moved]


class DeviceMesh:
    """The global ranks as an n-d array, with a process group per dimension.

    Args:
        device_type: "cpu" or "cuda".
        mesh: an integer array (nested list, NumPy array or tensor) of global ranks.
        mesh_dim_names: one unique name per dimension, for ``mesh["dp"]`` and
            ``get_group("dp")``.

    Example:
        >>> mesh = DeviceMesh("cpu", [[0, 1], [2, 3]], mesh_dim_names=("dp", "tp"))
        >>> dist.all_reduce(t, group=mesh.get_group("tp"))   # with the other rank of my row
    """

    def __init__(self, device_type: str, mesh, *, mesh_dim_names=None, backend_override=None,
                 _init_backend: bool = True, _root=None, _dims=None):  # fmt: skip
        if isinstance(mesh, Tensor):
            mesh = mesh.cpu().numpy()
        arr = np.array(mesh, dtype=np.int64)
        if arr.ndim == 0:
            raise ValueError(f"DeviceMesh: mesh must have at least one dim, got {mesh!r}")
        if len(set(arr.reshape(-1).tolist())) != arr.size:
            raise ValueError(f"DeviceMesh: every rank may appear once in the mesh, got {mesh!r}")
        if mesh_dim_names is not None:
            mesh_dim_names = tuple(mesh_dim_names)
            if len(mesh_dim_names) != arr.ndim:
                raise RuntimeError(
                    f"DeviceMesh: {len(mesh_dim_names)} mesh_dim_names {mesh_dim_names} for a "
                    f"mesh of {arr.ndim} dims; give one name per dim"
                )
        self._device_type = str(device_type)
        self._arr = arr
        self._mesh_dim_names = mesh_dim_names or None
        self._root = _root
        if _root is not None:  # a slice: the root's groups of the dims it keeps
            self._dims = list(_dims)
            self._groups = [_root._groups[d] for d in self._dims]
            return
        self._dims = list(range(arr.ndim))
        if not pgm.is_initialized():
            pgm.init_process_group(backend="nccl" if self._device_type == "cuda" else None)
        world = pgm.get_world_size()
        if arr.size > world or arr.min() < 0 or arr.max() >= world:
            raise RuntimeError(
                f"Mesh should not be bigger than default world size {world}, but found "
                f"{arr.size} ranks! (ranks {sorted(arr.reshape(-1).tolist())})"
            )
        me = pgm.get_rank()
        self._groups = []
        for d in range(arr.ndim):
            mine = None
            for line in _lines(arr, d):
                if line == list(range(world)):  # the whole world in order: the default group
                    g = _group.WORLD
                else:
                    g = G.new_group(line, sort_ranks=False)
                if me in line:
                    mine = g
            self._groups.append(mine)

    # ------------------------------------------------------------------ what it is
    @property
    def device_type(self) -> str:
        return self._device_type

    @property
    def mesh(self) -> Tensor:
        """The global ranks as an int32 tensor of the mesh's shape."""
        return _int_tensor(self._arr)

    @property
    def mesh_dim_names(self) -> tuple[str, ...] | None:
        return self._mesh_dim_names

    @property
    def ndim(self) -> int:
        return self._arr.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._arr.shape)

    def size(self, mesh_dim: int | None = None) -> int:
        """The number of ranks along ``mesh_dim`` (default: in the whole mesh)."""
        return int(self._arr.size if mesh_dim is None else self._arr.shape[mesh_dim])

    def get_rank(self) -> int:
        """This process's global rank."""
        return pgm.get_rank()

    def get_coordinate(self) -> tuple[int, ...] | None:
        """This rank's index in the mesh, or None when it is not in the mesh."""
        hit = np.argwhere(self._arr == pgm.get_rank())
        return None if hit.size == 0 else tuple(int(i) for i in hit[0])

    def _dim(self, what: str, mesh_dim) -> int:
        if mesh_dim is None:
            if self.ndim > 1:
                raise RuntimeError(
                    f"DeviceMesh.{what}: the mesh has {self.ndim} dimensions; give mesh_dim "
                    "(an index or a name)"
                )
            return 0
        if isinstance(mesh_dim, str):
            if not self._mesh_dim_names or mesh_dim not in self._mesh_dim_names:
                raise KeyError(
                    f"Mesh dimension '{mesh_dim}' does not exist. Available mesh dimensions "
                    f"are: mesh_dim_names={self._mesh_dim_names}"
                )
            return self._mesh_dim_names.index(mesh_dim)
        if not -self.ndim <= int(mesh_dim) < self.ndim:
            raise IndexError(
                f"DeviceMesh.{what}: mesh_dim={mesh_dim} is out of range for {self.ndim} dims"
            )
        return int(mesh_dim) % self.ndim

    def get_group(self, mesh_dim: int | str | None = None):
        """The process group of this rank along ``mesh_dim`` (optional for a 1-D mesh).

        Example:
            >>> dp = mesh.get_group("dp")
        """
        g = self._groups[self._dim("get_group", mesh_dim)]
        if g is None:
            raise RuntimeError(
                f"DeviceMesh.get_group: rank {pgm.get_rank()} is not in this mesh "
                f"({self._arr.tolist()})"
            )
        return g

    def get_all_groups(self) -> list:
        """One process group per mesh dimension."""
        return [self.get_group(d) for d in range(self.ndim)]

    def get_local_rank(self, mesh_dim: int | str | None = None) -> int:
        """This rank's index along ``mesh_dim`` (its rank in that dimension's group)."""
        return pgm.get_rank(self.get_group(self._dim("get_local_rank", mesh_dim)))

    # ------------------------------------------------------------------ slicing
    def __getitem__(self, mesh_dim_names) -> DeviceMesh:
        """The sub-mesh of this rank along the named dims, e.g. ``mesh["dp"]``."""
        if not self._mesh_dim_names:
            raise RuntimeError("Cannot slice a DeviceMesh without mesh_dim_names!")
        names = (mesh_dim_names,) if isinstance(mesh_dim_names, str) else tuple(mesh_dim_names)
        if names == self._mesh_dim_names:
            return self
        keep = []
        for n in names:
            if n not in self._mesh_dim_names:
                raise KeyError(
                    f"Invalid mesh_dim_names {names} specified. Valid mesh_dim_names are "
                    f"{self._mesh_dim_names}"
                )
            keep.append(self._mesh_dim_names.index(n))
        if len(set(keep)) != len(keep):
            raise KeyError(f"Invalid mesh_dim_names {names}: a dim is named twice")
        coord = self.get_coordinate()
        if coord is None:
            raise RuntimeError(
                f"DeviceMesh: rank {pgm.get_rank()} is not in this mesh; it has no sub-mesh"
            )
        index = tuple(slice(None) if d in keep else coord[d] for d in range(self.ndim))
        rest = [d for d in range(self.ndim) if d in keep]  # the kept dims, in mesh order
        sub = np.transpose(self._arr[index], [rest.index(d) for d in keep])
        root = self._get_root_mesh()
        return DeviceMesh(self._device_type, sub, mesh_dim_names=names, _root=root,
                          _dims=[self._dims[d] for d in keep])  # fmt: skip

    def _get_root_mesh(self) -> DeviceMesh:
        return self._root if self._root is not None else self

    # ------------------------------------------------------------------ identity
    def __repr__(self) -> str:
        root = self._get_root_mesh()._arr
        strides = [math.prod(root.shape[d + 1 :]) for d in range(root.ndim)]
        stride = tuple(strides[d] for d in self._dims)
        if self._mesh_dim_names:
            sizes = "(" + ", ".join(f"{k}={v}" for k, v in zip(self._mesh_dim_names,
                                                              self.shape)) + ")"  # fmt: skip
        else:
            sizes = str(self.shape)
        return f"DeviceMesh({sizes}, '{self._device_type}', stride={stride})"

    def _key(self) -> tuple:
        return (tuple(self._arr.reshape(-1).tolist()), self.shape, self._device_type,
                self._mesh_dim_names)  # fmt: skip

    def __eq__(self, other) -> bool:
        return self is other or (isinstance(other, DeviceMesh) and self._key() == other._key())

    def __hash__(self) -> int:
        return hash(self._key())

    def __enter__(self) -> DeviceMesh:
        return self

    def __exit__(self, *exc) -> None:
        return None


def _int_tensor(arr: np.ndarray) -> Tensor:
    from .. import creation  # noqa: PLC0415

    return creation.tensor(arr.astype(np.int32))


def init_device_mesh(device_type: str, mesh_shape, *, mesh_dim_names=None,
                     backend_override=None) -> DeviceMesh:  # fmt: skip
    """A mesh of ranks 0..N-1 laid out row-major in ``mesh_shape`` (the process group is
    started first when it is not yet).

    Args:
        device_type: "cpu" or "cuda" (no index).
        mesh_shape: the size of each dimension; their product is at most the world size.
        mesh_dim_names: one unique name per dimension.

    Example:
        >>> mesh = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
        >>> mesh["dp"].get_group()
    """
    mesh_shape = tuple(int(s) for s in mesh_shape)
    if mesh_dim_names is not None:
        mesh_dim_names = tuple(mesh_dim_names)
        if len(set(mesh_dim_names)) != len(mesh_dim_names):
            raise RuntimeError(
                "Each mesh_dim_name must be unique. Found repeated mesh_dim_name in "
                f"mesh_dim_names {mesh_dim_names}"
            )
        if len(mesh_shape) != len(mesh_dim_names):
            raise RuntimeError(
                "mesh_shape and mesh_dim_names should have same length! Found "
                f"len(mesh_dim_names): {len(mesh_dim_names)} and len(mesh_shape):"
                f"{len(mesh_shape)}."
            )
    if device_type and not str(device_type).isalpha():
        raise RuntimeError(
            f"Device type with index is not supported but got {device_type}. If you "
            "maintained a 'torch.device' object, it's recommended to pass in 'device.type'."
        )
    ranks = np.arange(math.prod(mesh_shape)).reshape(mesh_shape)
    return DeviceMesh(device_type, ranks, mesh_dim_names=mesh_dim_names,
                      backend_override=backend_override)  # fmt: skip
