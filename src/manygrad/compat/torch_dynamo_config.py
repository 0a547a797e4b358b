"""``torch._dynamo.config``: TorchDynamo's settings with PyTorch 2.13's defaults. manygrad
compiles nothing, so they are recorded and change nothing (see ``_torch_config``).

Example:
    >>> import torch._dynamo
    >>> torch._dynamo.config.suppress_errors = True
    >>> torch._dynamo.config.cache_size_limit  # recompile_limit, under its older name
    8
"""

from __future__ import annotations

from ._torch_config import install

_DEFAULTS = {
    # recompilation and errors
    "recompile_limit": 8,
    "accumulated_recompile_limit": 256,
    "fail_on_recompile_limit_hit": False,
    "suppress_errors": False,
    "error_on_recompile": False,
    "report_guard_failures": True,
    "verbose": False,
    "verify_correctness": False,
    "disable": False,
    "minimum_call_count": 1,
    "log_file_name": None,
    "replay_record_enabled": False,
    "cprofile": False,
    # dynamic shapes
    "dynamic_shapes": True,
    "assume_static_by_default": True,
    "automatic_dynamic_shapes": True,
    "automatic_dynamic_shapes_mark_as": "dynamic",
    "force_parameter_static_shapes": True,
    "force_nn_module_property_static_shapes": True,
    "allow_ignore_mark_dynamic": False,
    "specialize_int": False,
    "specialize_float": False,
    "capture_scalar_outputs": False,
    "capture_dynamic_output_shape_ops": False,
    "allow_unspec_int_on_nn_module": False,
    "prefer_deferred_runtime_asserts_over_guards": False,
    # modules, guards and tracing
    "guard_nn_modules": True,
    "inline_inbuilt_nn_modules": True,
    "skip_nnmodule_hook_guards": True,
    "skip_fsdp_guards": True,
    "optimize_ddp": True,
    "raise_on_ctx_manager_usage": True,
    "rewrite_assert_with_torch_assert": True,
    "allow_rnn": False,
    "trace_numpy": True,
    "use_numpy_random_stream": False,
    "numpy_default_float": "float64",
    "numpy_default_complex": "complex128",
    "numpy_default_int": "int64",
    "capture_autograd_function": True,
    "capture_func_transforms": True,
    "compiled_autograd": False,
    "enable_compiler_collectives": False,
    "only_allow_pt2_compliant_ops": False,
    "allow_empty_graphs": False,
    "nested_graph_breaks": False,
    "use_graph_deduplication": False,
    "cudagraph_backend_keep_input_mutation": False,
    "cudagraph_backend_support_input_mutation": False,
    # minifier (repro) settings
    "repro_after": None,
    "repro_level": 2,
    "repro_forward_only": False,
    "repro_tolerance": 0.001,
    "repro_ignore_non_fp": False,
    "same_two_models_use_fp64": True,
}

# older names that PyTorch still accepts
_ALIASES = {
    "cache_size_limit": "recompile_limit",
    "accumulated_cache_size_limit": "accumulated_recompile_limit",
}

install(__name__, "torch._dynamo.config", _DEFAULTS, _ALIASES)
