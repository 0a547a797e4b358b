"""``manygrad.fx`` (``torch.fx``): symbolic tracing of modules into graphs, graph editing,
code generation and interpretation, with PyTorch's names and behaviour.

``symbolic_trace(model)`` runs ``model.forward`` on ``Proxy`` values and records what it
does as a ``Graph`` of ``Node`` s; the result is a ``GraphModule`` that computes the same,
from generated Python code. Graphs feed passes: ``Interpreter`` / ``Transformer`` (run or
rewrite node by node), ``passes.shape_prop.ShapeProp`` (shapes and dtypes),
``subgraph_rewriter.replace_pattern`` (pattern rewriting), or feature extraction (point the
output at inner nodes and ``recompile``).

How calls are seen: PyTorch catches ``torch.relu(proxy)`` through ``__torch_function__``;
manygrad has no such dispatch, so while a trace runs (and while ``Transformer.transform``
runs) the public functions of ``manygrad``, ``manygrad.nn.functional``,
``manygrad.special``, ``manygrad.linalg`` and ``manygrad.fft`` (and of ``math``) are
patched with wrappers that record a ``call_function`` node when an argument is a Proxy
(and compare equal to the functions they wrap). The patches are undone when the trace
ends, also on error. The recorded targets are the original functions, so graphs print,
run, copy and pickle as usual. Tensor methods and operators on a Proxy (``x.view(...)``,
``x + y``) need no patch; those of a constant tensor used with a Proxy
(``self.scale * x``) are patched the same way. Outside these two, a manygrad function
handed a Proxy made by hand refuses it.

The limitation: a manygrad function is seen when called through its namespace
(``torch.relu``, ``F.relu``) or through a name imported into a module whose ``forward`` is
traced (``from torch import relu`` beside the model's class is patched as well), or kept
as an attribute of a traced module (``self.act = F.gelu``). A name bound anywhere else
holds the unpatched function, which then refuses the Proxy (``relu: expected a Tensor, got
Proxy``): ``from torch import relu`` at the top of a helper module that ``forward`` calls
into, or a function kept in a list or a dict. Call such a function through its
namespace, or keep the helper as one node with ``fx.wrap`` or
``Tracer(autowrap_functions=(helper,))``. PyTorch's tracer has the same rule for the
functions it patches (``math``'s, ``autowrap_functions``).

Example:
    >>> gm = manygrad.fx.symbolic_trace(model)
    >>> print(gm.graph)
    >>> print(gm.code)
"""

from . import immutable_collections, passes
from ._symbolic_trace import PH, ProxyableClassMeta, Tracer, symbolic_trace, wrap
from .graph import CodeGen, Graph
from .graph_module import GraphModule
from .interpreter import Interpreter, Transformer
from .node import Node, has_side_effect, map_aggregate, map_arg
from .proxy import Proxy
from .subgraph_rewriter import replace_pattern

__all__ = [
    "symbolic_trace", "Tracer", "wrap", "Graph", "GraphModule", "Interpreter", "Transformer",
    "Node", "Proxy", "replace_pattern", "has_side_effect", "map_arg", "map_aggregate",
    "CodeGen", "PH", "ProxyableClassMeta", "immutable_collections", "passes",
]  # fmt: skip
