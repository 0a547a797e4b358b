"""torch._dynamo and torch._inductor: their settings (names, defaults, errors) and entry
points, compared with PyTorch's."""

import pickle
import warnings

import pytest
import torch
import torch._dynamo as tdynamo
import torch._inductor.config as tinductor

from manygrad import compat
from manygrad.compat import torch_dynamo as mdynamo
from manygrad.compat import torch_inductor_config as minductor

CONFIGS = [(mdynamo.config, tdynamo.config), (minductor, tinductor)]


@pytest.mark.parametrize("ours,theirs", CONFIGS, ids=["dynamo", "inductor"])
def test_every_setting_has_pytorchs_name_and_default(ours, theirs):
    for key, value in ours.get_config_copy().items():
        want = theirs
        with warnings.catch_warnings():  # NOTE: PyTorch warns of its deprecated settings
            warnings.simplefilter("ignore", FutureWarning)
            for part in key.split("."):
                want = getattr(want, part)
        assert value == want, key


@pytest.mark.parametrize("ours,theirs", CONFIGS, ids=["dynamo", "inductor"])
@pytest.mark.parametrize("name", ["no_such_setting", "triton.no_such_setting"])
def test_unknown_settings_raise_attribute_error_naming_them(ours, theirs, name):
    head, _, tail = name.rpartition(".")
    if head and ours is mdynamo.config:
        pytest.skip("dynamo's config has no sub-configs")
    for cfg in (ours, theirs):
        target = getattr(cfg, head) if head else cfg
        with pytest.raises(AttributeError, match=tail):
            getattr(target, tail)
        with pytest.raises(AttributeError, match=tail):
            setattr(target, tail, 1)


def test_assignments_are_recorded_and_aliases_share_a_value():
    cfg = mdynamo.config
    try:
        cfg.suppress_errors = True
        cfg.cache_size_limit = 64
        assert cfg.suppress_errors is True and cfg.recompile_limit == 64
        assert cfg.cache_size_limit == 64
    finally:
        del cfg.suppress_errors, cfg.recompile_limit
    assert cfg.suppress_errors is tdynamo.config.suppress_errors
    assert cfg.cache_size_limit == tdynamo.config.cache_size_limit


def test_sub_configs_record_and_patch_restores():
    try:
        minductor.triton.unique_kernel_names = False
        minductor.coordinate_descent_tuning = True
        assert minductor.triton.unique_kernel_names is False
        assert minductor.get_config_copy()["coordinate_descent_tuning"] is True
    finally:
        del minductor.coordinate_descent_tuning
        minductor.triton.unique_kernel_names = tinductor.triton.unique_kernel_names
    with minductor.patch("triton.cudagraphs", True):
        assert minductor.triton.cudagraphs is True
    assert minductor.triton.cudagraphs is tinductor.triton.cudagraphs

    @mdynamo.config.patch(verbose=True, recompile_limit=3)
    def inside():
        return mdynamo.config.verbose, mdynamo.config.recompile_limit

    assert inside() == (True, 3)
    assert mdynamo.config.verbose is False and mdynamo.config.recompile_limit == 8
    with pytest.raises(AttributeError, match="nope"):
        mdynamo.config.patch(nope=1)


def test_save_and_load_config_round_trip():
    saved = minductor.save_config()
    assert pickle.loads(saved)["max_autotune"] is False
    try:
        minductor.max_autotune = True
        minductor.load_config(saved)
        assert minductor.max_autotune is False
    finally:
        del minductor.max_autotune


def test_entry_points_behave_as_pytorchs_without_compilation():
    for mod in (mdynamo, tdynamo):
        assert mod.is_compiling() is False
        f = mod.disable(lambda x: x + 1)
        assert f(1) == 2
        assert mod.allow_in_graph(abs) is abs
        mod.reset()
    import manygrad as mg

    xm, xt = mg.zeros(3, 4, 5), torch.zeros(3, 4, 5)
    for mod, x in ((mdynamo, xm), (tdynamo, xt)):
        mod.mark_dynamic(x, 0)
        mod.mark_dynamic(x, [2])
        mod.maybe_mark_dynamic(x, 1)
    assert xm._dynamo_dynamic_indices == xt._dynamo_dynamic_indices
    assert xm._dynamo_weak_dynamic_indices == xt._dynamo_weak_dynamic_indices
    assert set(mdynamo.list_backends()) <= set(tdynamo.list_backends())


def test_ported_script_imports_and_sets_them(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(
        "import torch\n"
        "import torch._dynamo\n"
        "import torch._inductor.config\n"
        "from torch._inductor import config as inductor_config\n"
        "torch._dynamo.config.suppress_errors = True\n"
        "torch._dynamo.config.cache_size_limit = 64\n"
        "torch._inductor.config.triton.unique_kernel_names = True\n"
        "inductor_config.fx_graph_cache = True\n"
        "x = torch.ones(2, 3)\n"
        "torch._dynamo.mark_dynamic(x, 0)\n"
        "model = torch.compile(torch.nn.Linear(3, 1))\n"
        "try:\n"
        "    torch._dynamo.config.no_such_thing\n"
        "except AttributeError as e:\n"
        "    err = str(e)\n"
        "result = (torch._dynamo.config.recompile_limit, torch._dynamo.is_compiling(), err,\n"
        "          model(x).shape)\n"
        "torch._dynamo.config.suppress_errors = False\n"
        "torch._dynamo.config.cache_size_limit = 8\n"
        "torch._dynamo.reset()\n"
    )
    got = compat.run_script(str(path))["result"]
    assert got[0] == 64 and got[1] is False
    assert got[2] == "torch._dynamo.config.no_such_thing does not exist"
    assert tuple(got[3]) == (2, 1)
