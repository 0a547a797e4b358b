"""``nn.Module`` machinery against PyTorch, differentially: each case runs the same code on
``torch`` and on ``manygrad`` and compares results, errors (type and key message part) and
side effects. Registration, state dicts and their hooks, iteration, containers, forward and
backward hooks, conversions, copying."""

import copy
import pickle
import warnings
from collections import OrderedDict

import pytest

import manygrad as mg

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")
LIBS = [torch, mg]


def _outcome(fn, lib):
    try:
        return ("ok", fn(lib))
    except Exception as e:  # noqa: BLE001 - the outcome itself is under test
        return ("err", e)


def same(fn):
    """``fn(lib)`` returns equal values on torch and manygrad (or both raise alike)."""
    t, m = _outcome(fn, torch), _outcome(fn, mg)
    if t[0] == "err" or m[0] == "err":
        assert t[0] == m[0] == "err", f"torch: {t}, manygrad: {m}"
        assert isinstance(m[1], _builtin(t[1])), f"torch: {t[1]!r}, manygrad: {m[1]!r}"
        return
    assert m[1] == t[1]


def _builtin(e: Exception) -> type:
    return next(k for k in type(e).__mro__ if k.__module__ == "builtins")


def same_error(fn, exc, match):
    """``fn(lib)`` raises ``exc`` with a message matching ``match`` on both."""
    for lib in LIBS:
        with pytest.raises(exc, match=match):
            fn(lib)


def _dt(t) -> str:
    return str(t.dtype).split(".")[-1]


def _names(it) -> list:
    return [n for n, _ in it]


def _lin(lib, w=((1.0, 2.0), (3.0, 4.0)), b=(0.5, -0.5)):
    m = lib.nn.Linear(2, 2)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(w))
        m.bias.copy_(lib.tensor(b))
    return m


# ---------------------------------------------------------------------- registration
def _reg(lib, *steps):
    m = lib.nn.Module()
    for s in steps:
        s(m, lib)
    return (sorted(m._parameters), sorted(m._buffers), sorted(m._modules),
            sorted(m._non_persistent_buffers_set))  # fmt: skip


def _p(name):
    return lambda m, lib: setattr(m, name, lib.nn.Parameter(lib.ones(2)))


def _b(name, persistent=True):
    return lambda m, lib: m.register_buffer(name, lib.ones(2), persistent=persistent)


def _m(name):
    return lambda m, lib: setattr(m, name, lib.nn.Linear(1, 1))


def _none(name):
    return lambda m, lib: setattr(m, name, None)


@pytest.mark.parametrize("steps", [
    (_b("x"), _p("x")),  # a Parameter over a buffer
    (_b("x", False), _p("x")),
    (_b("x"), _m("x")),
    (_m("x"), _p("x")),
    (_p("x"), _m("x")),
    (_p("x"), _none("x")),  # None keeps the name registered
    (_b("x"), _none("x")),
    (_m("x"), _none("x")),
    (lambda m, lib: setattr(m, "x", 3), _p("x")),  # over a plain attribute
    (_b("x", False), _b("x")),  # re-registering makes it persistent
    (_b("x", False), lambda m, lib: delattr(m, "x")),
    (lambda m, lib: setattr(m, "x", lib.nn.Buffer(lib.ones(1), persistent=False)),),
    (_m("a.b"),),  # setattr with a dotted module name registers it as it is
])  # fmt: skip
def test_setattr_registration_matches_torch(steps):
    same(lambda lib: _reg(lib, *steps))


@pytest.mark.parametrize("fn, exc, match", [
    (lambda m, lib: setattr(m, "w", lib.ones(2)), TypeError, "as parameter 'w'"),
    (lambda m, lib: setattr(m, "w", 3), TypeError, "cannot assign 'int' as parameter 'w'"),
    (lambda m, lib: setattr(m, "b", 3), TypeError, "cannot assign 'int' as buffer 'b'"),
    (lambda m, lib: setattr(m, "c", 3), TypeError, "as child module 'c'"),
    (lambda m, lib: m.register_buffer("w", lib.ones(1)), KeyError, "attribute 'w' already"),
    (lambda m, lib: m.register_parameter("c", None), KeyError, "attribute 'c' already"),
    (lambda m, lib: m.add_module("b", None), KeyError, "attribute 'b' already exists"),
    (lambda m, lib: m.register_buffer("training", None), KeyError, "already exists"),
    (lambda m, lib: m.register_buffer("", None), KeyError, "be empty string"),
    (lambda m, lib: m.register_parameter("", None), KeyError, "be empty string"),
    (lambda m, lib: m.add_module("", None), KeyError, "be empty string"),
    (lambda m, lib: m.register_module("a.b", None), KeyError, 'contain "\\."'),
    (lambda m, lib: m.register_buffer("a.b", None), KeyError, 'contain "\\."'),
    (lambda m, lib: setattr(m, "a.b", lib.nn.Parameter(lib.ones(1))), KeyError, "contain"),
    (lambda m, lib: m.register_buffer(1, None), TypeError, "name should be a string"),
    (lambda m, lib: m.add_module("z", 3), TypeError, "int is not a Module subclass"),
    (lambda m, lib: m.register_buffer("z", 3), TypeError, "cannot assign 'int' object to"),
    (lambda m, lib: m.register_parameter("z", lib.ones(1)), TypeError, "to parameter 'z'"),
    (lambda m, lib: m.register_parameter("z", lib.nn.Parameter(lib.ones(1)) * 2), TypeError,
     "to parameter 'z'"),
    (lambda m, lib: m.nope, AttributeError, "'Module' object has no attribute 'nope'"),
    (lambda m, lib: delattr(m, "nope"), AttributeError, "has no attribute 'nope'"),
])  # fmt: skip
def test_registration_errors_match_torch(fn, exc, match):
    def case(lib):
        m = lib.nn.Module()
        m.w = lib.nn.Parameter(lib.ones(2))
        m.register_buffer("b", lib.ones(2))
        m.c = lib.nn.Linear(1, 1)
        fn(m, lib)

    same_error(case, exc, match)


def test_assignment_before_init_is_refused_as_torch():
    for what, make in [("parameters", lambda lib: lib.nn.Parameter(lib.ones(1))),
                       ("module", lambda lib: lib.nn.Linear(1, 1))]:  # fmt: skip

        def case(lib, make=make):
            class M(lib.nn.Module):
                def __init__(self):
                    self.x = make(lib)

            M()

        same_error(case, AttributeError, f"cannot assign {what} before Module.__init__")


def test_buffer_assignment_keeps_the_object_and_persistence():
    def case(lib):
        m = lib.nn.Module()
        m.register_buffer("b", lib.ones(1), persistent=False)
        t = lib.zeros(3)
        m.b = t
        return m.b is t, list(m.state_dict()), type(m.b).__name__, "b" in m._buffers

    same(case)


# ---------------------------------------------------------------------- state dicts
def _net(lib):
    return lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.BatchNorm1d(3))


def test_state_dict_prefix_keep_vars_and_metadata():
    def case(lib):
        class M(lib.nn.Module):
            _version = 3

            def __init__(self):
                super().__init__()
                self.net = _net(lib)

        sd = M().state_dict(prefix="p.")
        kv = M().state_dict(keep_vars=True)
        return (list(sd), {k: dict(v) for k, v in sd._metadata.items()},
                type(kv["net.0.weight"]).__name__, kv["net.0.weight"].requires_grad,
                type(sd["p.net.0.weight"]).__name__, sd["p.net.0.weight"].requires_grad)  # fmt: skip

    same(case)


def test_state_dict_into_a_given_destination():
    def case(lib):
        d = OrderedDict(pre=1)
        out = lib.nn.Linear(1, 1).state_dict(destination=d, prefix="x.")
        return out is d, list(d), hasattr(d, "_metadata")

    same(case)


def test_load_non_strict_returns_incompatible_keys_with_torch_repr():
    def case(lib):
        m = _net(lib)
        sd = m.state_dict()
        del sd["0.bias"]
        sd["extra"] = lib.ones(1)
        sd["0.sub.x"] = lib.ones(1)
        r = m.load_state_dict(sd, strict=False)
        ok = m.load_state_dict(m.state_dict())
        return (repr(r), str(r), type(r).__name__, r._fields, tuple(r), repr(ok), str(ok),
                tuple(ok))  # fmt: skip

    same(case)


def test_load_errors_are_collected_into_one_runtime_error():
    msgs = {}
    for lib in LIBS:
        m = _net(lib)
        sd = m.state_dict()
        del sd["0.bias"]
        sd["extra"] = lib.ones(1)
        sd["0.weight"] = lib.ones(5, 5)
        with pytest.raises(RuntimeError) as e:
            m.load_state_dict(sd)
        msgs[lib] = str(e.value).split("\n")
    t, m = msgs[torch], msgs[mg]
    assert m[:3] == t[:3]  # the head, then the missing and unexpected keys, as PyTorch
    assert t[3].startswith("\tsize mismatch for 0.weight: copying a param with shape")
    assert m[3].startswith("\tsize mismatch for 0.weight: copying a param with shape")


def test_load_shape_mismatch_raises_even_when_not_strict():
    def case(lib):
        m = lib.nn.Linear(2, 2)
        sd = m.state_dict()
        sd["weight"] = lib.zeros(1, 1, 2, 2)
        m.load_state_dict(sd, strict=False)

    same_error(case, RuntimeError, "size mismatch for weight")


def test_load_refuses_a_non_tensor_value():
    def case(lib):
        m = lib.nn.Linear(2, 2)
        sd = m.state_dict()
        sd["weight"] = 3
        m.load_state_dict(sd)

    same_error(case, RuntimeError, 'While copying the parameter named "weight", expected')


def test_load_one_element_into_a_scalar_and_bumps_the_version():
    def case(lib):
        m = lib.nn.Module()
        m.register_buffer("s", lib.tensor(1.0))
        v = m.s._version
        m.load_state_dict({"s": lib.tensor([7.0])})
        return float(m.s), m.s._version - v, tuple(m.s.shape)

    same(case)


def test_load_assign_takes_the_state_dicts_tensors():
    def case(lib):
        m = lib.nn.BatchNorm1d(2)
        m.weight.requires_grad_(False)
        w = m.weight
        sd = lib.nn.BatchNorm1d(2).double().state_dict()
        m.load_state_dict(sd, assign=True)
        return (m.weight is w, type(m.weight).__name__, m.weight.requires_grad, _dt(m.weight),
                m.running_mean is sd["running_mean"], _dt(m.running_mean),
                m.weight.data_ptr() == sd["weight"].data_ptr())  # fmt: skip

    same(case)


def test_load_copies_in_place_keeping_dtype():
    def case(lib):
        m = lib.nn.Linear(2, 2)
        w = m.weight
        sd = {"weight": lib.ones(2, 2, dtype=lib.float64), "bias": lib.zeros(2, dtype=lib.int64)}
        m.load_state_dict(sd)
        return m.weight is w, _dt(m.weight), _dt(m.bias), m.weight.tolist()

    same(case)


def test_batchnorm_uses_the_metadata_version_for_num_batches_tracked():
    def case(lib):
        bn = lib.nn.BatchNorm1d(3)
        sd = bn.state_dict()
        del sd["num_batches_tracked"]
        old = bn.load_state_dict(dict(sd))  # no metadata: an old checkpoint, count 0
        try:
            bn.load_state_dict(sd)
        except RuntimeError as e:
            return repr(old), str(e).split("\n")[1]

    same(case)


def test_load_from_state_dict_override_gets_torch_arguments():
    def case(lib):
        seen = []

        class M(lib.nn.Module):
            _version = 3

            def __init__(self):
                super().__init__()
                self.lin = lib.nn.Linear(1, 1)

            def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs):  # fmt: skip
                seen.append((prefix, dict(local_metadata), strict, sorted(state_dict)))
                super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                              missing_keys, unexpected_keys, error_msgs)  # fmt: skip

        m = M()
        m.load_state_dict(m.state_dict(), strict=False)
        m.load_state_dict(dict(m.state_dict()), assign=True)
        return seen

    same(case)


def test_state_dict_hooks_run_with_metadata_and_may_edit():
    def case(lib):
        calls = []
        m = _net(lib)
        m.register_state_dict_pre_hook(lambda mod, prefix, kv: calls.append(("pre", prefix, kv)))
        m[0].register_state_dict_pre_hook(lambda mod, prefix, kv: calls.append(("pre0", prefix)))

        def post(mod, sd, prefix, local_metadata):
            calls.append(("post", prefix, dict(local_metadata), list(sd)))
            sd[prefix + "added"] = lib.ones(1)

        m[0].register_state_dict_post_hook(post)
        sd = m.state_dict(prefix="p.", keep_vars=True)
        return calls, list(sd)

    same(case)


def test_state_dict_post_hook_return_value_rules():
    def public(lib):
        m = lib.nn.Linear(1, 1)
        m.register_state_dict_post_hook(lambda mod, sd, prefix, md: {})
        m.state_dict()

    same_error(public, RuntimeError, "post-hook must return None")

    def older(lib):
        m = lib.nn.Sequential(lib.nn.Linear(1, 1))
        m._register_state_dict_hook(lambda mod, sd, prefix, md: OrderedDict(a=1))
        m[0]._register_state_dict_hook(lambda mod, sd, prefix, md: OrderedDict(b=1))
        return list(m.state_dict()), list(m[0].state_dict())

    same(older)


def test_load_state_dict_hooks_order_and_forms():
    def case(lib):
        calls = []
        m = _net(lib)

        def pre(mod, sd, prefix, md, strict, missing, unexpected, errors):
            calls.append(("pre", type(mod).__name__, prefix, strict, dict(md)))

        def old(sd, prefix, md, strict, missing, unexpected, errors):
            calls.append(("old", prefix))
            sd[prefix + "bias"] = sd.pop(prefix + "b")  # renames for this module only

        def old_with_module(mod, sd, prefix, *rest):
            calls.append(("with_module", type(mod).__name__))

        def post(mod, keys):
            calls.append(("post", type(mod).__name__, list(keys.missing_keys)))
            if "1.running_var" in keys.missing_keys:
                keys.missing_keys.remove("1.running_var")

        m[1].register_load_state_dict_pre_hook(pre)
        m[1]._register_load_state_dict_pre_hook(old)
        m[1]._register_load_state_dict_pre_hook(old_with_module, with_module=True)
        m[0].register_load_state_dict_post_hook(post)
        m.register_load_state_dict_post_hook(post)
        sd = m.state_dict()
        sd["1.b"] = sd.pop("1.bias")
        del sd["1.running_var"]
        return calls, repr(m.load_state_dict(sd))

    same(case)


def test_extra_state_round_trips_and_is_checked():
    def case(lib):
        class M(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.s = 5

            def get_extra_state(self):
                return {"s": self.s}

            def set_extra_state(self, state):
                self.s = state["s"]

        class OnlyGet(lib.nn.Module):
            def get_extra_state(self):
                return 1

        m, m2 = M(), M()
        m2.s = 0
        sd = m.state_dict()
        m2.load_state_dict(sd)
        missing = repr(M().load_state_dict({}, strict=False))
        try:
            OnlyGet().load_state_dict(OnlyGet().state_dict())
        except RuntimeError as e:
            unexpected = str(e).split("\n")[1]
        return list(sd), m2.s, missing, unexpected

    same(case)


# ---------------------------------------------------------------------- iteration, access
def _tied(lib):
    lin = lib.nn.Linear(2, 2)
    lin.register_buffer("b1", lib.ones(1))
    lin.register_buffer("b2", lin.b1)
    return lib.nn.Sequential(lin, lib.nn.ReLU(), lin)


def test_named_modules_memo_prefix_and_duplicates():
    def case(lib):
        m = _tied(lib)
        memo = {m[1]}
        return (_names(m.named_modules()), _names(m.named_modules(remove_duplicate=False)),
                _names(m.named_modules(prefix="p")), _names(m.named_modules(memo)), len(memo),
                len(list(m.modules())), len(list(m.modules(remove_duplicate=False))),
                _names(m.named_children()))  # fmt: skip

    same(case)


def test_named_parameters_and_buffers_with_tied_tensors():
    def case(lib):
        m = _tied(lib)
        a, b = lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)
        b.weight = a.weight
        ab = lib.nn.Sequential(a, b)
        return (_names(m.named_parameters()), _names(m.named_parameters(remove_duplicate=False)),
                _names(m.named_parameters(prefix="x", recurse=False)),
                _names(m.named_buffers()), _names(m.named_buffers(remove_duplicate=False)),
                _names(ab.named_parameters()), list(ab.state_dict()),
                len(list(ab.parameters())))  # fmt: skip

    same(case)


def _tree(lib):
    m = lib.nn.Sequential(OrderedDict(a=lib.nn.Sequential(OrderedDict(b=lib.nn.Linear(1, 1)))))
    m.register_buffer("buf", lib.ones(1))
    m.plain = 3
    return m


@pytest.mark.parametrize("fn, exc, match", [
    (lambda m, lib: m.get_submodule("a.c"), AttributeError, "Sequential has no attribute `c`"),
    (lambda m, lib: m.get_submodule("a.b.weight"), AttributeError, "`weight` is not an nn.Module"),
    (lambda m, lib: m.get_submodule("plain"), AttributeError, "`plain` is not an nn.Module"),
    (lambda m, lib: m.get_parameter("a.b.nope"), AttributeError, "Linear has no attribute `nope`"),
    (lambda m, lib: m.get_parameter("buf"), AttributeError, "`buf` is not an nn.Parameter"),
    (lambda m, lib: m.get_parameter("x.weight"), AttributeError, "has no attribute `x`"),
    (lambda m, lib: m.get_buffer("a.b.weight"), AttributeError, "`weight` is not a buffer"),
    (lambda m, lib: m.get_buffer("plain"), AttributeError, "`plain` is not a buffer"),
    (lambda m, lib: m.set_submodule("", lib.nn.ReLU()), ValueError, "without a target name"),
    (lambda m, lib: m.set_submodule("a.c", 3), ValueError, "`module` is not an nn.Module"),
    (lambda m, lib: m.set_submodule("x.c", lib.nn.ReLU()), AttributeError, "no attribute `x`"),
    (lambda m, lib: m.set_submodule("a.c", lib.nn.ReLU(), strict=True), AttributeError,
     "Sequential has no attribute `c`"),
    (lambda m, lib: m.set_submodule("plain", lib.nn.ReLU()), AttributeError,
     "`plain` is not an nn.Module"),
    (lambda m, lib: m.set_submodule("a.b.weight", lib.nn.ReLU()), AttributeError,
     "`weight` is not an nn.Module"),
])  # fmt: skip
def test_dotted_access_errors_match_torch(fn, exc, match):
    same_error(lambda lib: fn(_tree(lib), lib), exc, match)


def test_dotted_access_results():
    def case(lib):
        m = _tree(lib)
        out = [
            type(m.get_submodule("a.b")).__name__,
            m.get_submodule("") is m,
            tuple(m.get_parameter("a.b.weight").shape),
            m.get_buffer("buf") is m.buf,
        ]
        m.set_submodule("a.c", lib.nn.ReLU())
        m.set_submodule("a.b", lib.nn.Tanh(), strict=True)
        return out, _names(m.named_modules())

    same(case)


def test_apply_train_eval_requires_grad_and_zero_grad():
    def case(lib):
        seen = []
        m = lib.nn.Sequential(lib.nn.Sequential(lib.nn.Linear(2, 1)), lib.nn.BatchNorm1d(1))
        r = [m.apply(lambda x: seen.append(type(x).__name__)) is m, seen]
        r += [m.eval() is m, [x.training for x in m.modules()]]
        r += [m.train() is m, [x.training for x in m.modules()]]
        r += [m.requires_grad_(False) is m, [p.requires_grad for p in m.parameters()]]
        m.requires_grad_()
        m.train()
        m(lib.ones(2, 2)).sum().backward()
        g = m[0][0].weight.grad
        m.zero_grad(set_to_none=False)
        r += [m[0][0].weight.grad is g, g.abs().sum().item(), g.requires_grad]
        m.zero_grad()
        return r + [[p.grad for p in m.parameters()]]

    same(case)
    same_error(lambda lib: lib.nn.Linear(1, 1).train(1), ValueError, "expected to be boolean")


def test_dir_lists_registered_names_without_digits():
    def case(lib):
        class M(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("bb", lib.ones(1))
                self.pp = lib.nn.Parameter(lib.ones(1))
                self.seq = lib.nn.Sequential(lib.nn.ReLU())
                self.x = 1

        d, ds = dir(M()), dir(M().seq)
        return (d == sorted(d), [k in d for k in ("bb", "pp", "seq", "x", "forward", "training")],
                "0" in ds, ds == sorted(ds))  # fmt: skip

    same(case)


# ---------------------------------------------------------------------- repr, containers
def _norm(s: str) -> str:
    return s.replace("torch.", "").replace("manygrad.", "")


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ModuleList(
        [lib.nn.ReLU(), lib.nn.ReLU(), lib.nn.Tanh(), lib.nn.ReLU()]),
        lib.nn.ModuleDict({"a": lib.nn.Identity(), "b": lib.nn.Sequential()})),
    lambda lib: lib.nn.ModuleList([lib.nn.Sequential(lib.nn.ReLU(), lib.nn.ReLU())
                                   for _ in range(2)] + [lib.nn.Tanh()]),
    lambda lib: (lib.nn.ModuleList(), lib.nn.ModuleDict(), lib.nn.Sequential(),
                 lib.nn.ParameterList(), lib.nn.ParameterDict(), lib.nn.Module()),
    lambda lib: lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 3)), lib.ones(4), 3,
                                      lib.nn.Linear(1, 1), lib.ones(2, dtype=lib.float64)]),
    lambda lib: lib.nn.ParameterDict({"a": lib.ones(2, 3), "s": "str", "m": lib.nn.Identity(),
                                      "d": lib.ones(1, dtype=lib.float64)}),
])  # fmt: skip
def test_container_reprs_match_torch(make):
    same(lambda lib: _norm(repr(make(lib))))


def test_extra_repr_layout_matches_torch():
    def case(lib):
        class Multi(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lib.nn.Linear(1, 1)

            def extra_repr(self):
                return "a=1\nb=2"

        class One(lib.nn.Module):
            def extra_repr(self):
                return "only"

        return repr(lib.nn.Sequential(Multi(), One()))

    same(case)


def _kinds(seq) -> list:
    return [type(m).__name__ for m in seq]


def test_sequential_slicing_and_editing():
    def case(lib):
        nn = lib.nn
        s = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity())
        named = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh(), c=nn.Sigmoid()))
        r = [
            _kinds(s[1:3]),
            list(s[1:3]._modules),
            list(s[::2]._modules),
            list(named[1:]._modules),
            list(named[::-1]._modules),
        ]
        s.append(nn.ELU())
        s.insert(1, nn.Softsign())
        s.insert(-1, nn.GELU())
        s.extend([nn.SiLU()])
        popped = s.pop(0)
        del s[::3]
        s[-1] = nn.Mish()
        return r + [_kinds(s), list(s._modules), type(popped).__name__]

    same(case)


def test_sequential_add_mul_and_their_errors():
    def case(lib):
        nn = lib.nn
        a, b = nn.Sequential(nn.ReLU(), nn.Tanh()), nn.Sequential(nn.Sigmoid())
        c, d, e = a + b, a * 2, 2 * a
        f = nn.Sequential(nn.ReLU())
        f += b
        g = nn.Sequential(nn.ReLU(), nn.Tanh())
        g *= 3
        return ([list(x._modules) for x in (c, d, e, f, g)], d[0] is d[2], c[0] is a[0],
                _kinds(g))  # fmt: skip

    same(case)
    same_error(lambda lib: lib.nn.Sequential() * 0, ValueError, "Non-positive multiplication")
    same_error(lambda lib: lib.nn.Sequential() * 1.5, TypeError, "unsupported operand")
    same_error(lambda lib: lib.nn.Sequential() + [1], ValueError, "only objects of Sequential")
    same_error(lambda lib: lib.nn.Sequential().__iadd__([1]), ValueError, "only objects of")
    same_error(lambda lib: lib.nn.Sequential()[0], IndexError, "index 0 is out of range")


def test_module_list_editing():
    def case(lib):
        nn = lib.nn
        m = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        m.insert(1, nn.ELU())
        m.append(nn.Identity()).extend([nn.GELU()])
        m += [nn.SiLU()]
        p = m.pop(0)
        del m[1:3]
        a = m + [nn.ReLU()]
        return _kinds(m), list(m._modules), type(p).__name__, type(a).__name__, _kinds(m[::-1])

    same(case)
    same_error(lambda lib: lib.nn.ModuleList().extend(3), TypeError, "should be called with")
    same_error(lambda lib: lib.nn.ModuleList().append(3), TypeError, "is not a Module subclass")


def test_module_dict_update_keeps_order_and_checks_pairs():
    def case(lib):
        nn = lib.nn
        d = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
        d.update([("c", nn.ELU())])
        d.update({"z": nn.ReLU(), "a": nn.Identity()})
        d.x = nn.GELU()
        r = list(d.keys()), _kinds(d.values()), [k for k, _ in d.items()]
        p = d.pop("b")
        d.clear()
        return r, type(p).__name__, len(d)

    same(case)
    same_error(lambda lib: lib.nn.ModuleDict().update(3), TypeError, "iterable of key/value")
    same_error(
        lambda lib: lib.nn.ModuleDict().update([("a", lib.nn.ReLU(), 1)]),
        ValueError,
        "element #0 has length 3; 2 is required",
    )


def test_parameter_dict_methods_and_ordering():
    def case(lib):
        d = lib.nn.ParameterDict({"b": lib.ones(1), "a": lib.ones(2)})  # plain dict: sorted
        d.update([("z", lib.ones(3)), ("c", lib.ones(3))])  # pairs: in order
        d.update({"a": lib.ones(4)})
        r = [list(d.keys()), tuple(d["a"].shape), type(d["a"]).__name__, list(reversed(d))]
        r += [type(d.pop("b")).__name__, list(d)]
        c = d.copy()
        r += [list(c.keys()), c["a"] is d["a"], d.get("nope", 5), "a" in d, len(d)]
        d.setdefault("q", lib.ones(1))
        r += [list(d.keys()), list((d | {"w": lib.ones(1)}).keys()), d.popitem()[0], list(d)]
        r += [list(d.fromkeys(["k", "j"]).keys()), _names(d.named_parameters())]
        d.clear()
        return r + [len(d), list(d.keys())]

    same(case)
    same_error(lambda lib: lib.nn.ParameterDict()[0], TypeError, "cannot be used as a key")
    same_error(lambda lib: lib.nn.ParameterDict().update(3), TypeError, "iterable of key/value")
    same_error(lambda lib: lib.nn.ParameterDict()(1), RuntimeError, "should not be called")


def test_parameter_list_holds_parameters_and_other_objects():
    def case(lib):
        p = lib.nn.ParameterList([lib.ones(1), lib.nn.Parameter(lib.ones(2))])
        p.extend([lib.ones(3)])
        p += [lib.ones(4)]
        p.append("tag")
        p.append(lib.nn.Linear(1, 1))
        p[0] = lib.ones(5)
        return ([type(x).__name__ for x in p], _names(p.named_parameters()), list(p._modules),
                tuple(p[0].shape), [tuple(x.shape) for x in p[1:3]], type(p[1:3]).__name__,
                "0" in dir(p))  # fmt: skip

    same(case)
    same_error(lambda lib: lib.nn.ParameterList().extend(3), TypeError, "should be called with")
    same_error(lambda lib: lib.nn.ParameterList()[0], IndexError, "index 0 is out of range")
    same_error(lambda lib: lib.nn.ParameterList()(1), RuntimeError, "should not be called")


# ---------------------------------------------------------------------- forward hooks
def test_forward_hook_order_with_prepend_and_globals():
    def case(lib):
        calls = []
        mm = lib.nn.modules.module
        hs = [mm.register_module_forward_pre_hook(lambda m, a: calls.append("gpre")),
              mm.register_module_forward_hook(lambda m, a, o: calls.append("gpost")),
              mm.register_module_forward_hook(lambda m, a, kw, o: calls.append(("gkw", kw)),
                                              with_kwargs=True)]  # fmt: skip
        m = _lin(lib)
        m.register_forward_pre_hook(lambda mod, args: calls.append("a"))
        m.register_forward_pre_hook(lambda mod, args: calls.append("b"), prepend=True)
        m.register_forward_hook(lambda mod, args, out: calls.append("c"))
        m.register_forward_hook(lambda mod, args, out: calls.append("d"), prepend=True)
        try:
            m(lib.ones(1, 2))
        finally:
            for h in hs:
                h.remove()
        m(lib.ones(1, 2))
        return calls

    same(case)


def test_forward_hooks_with_kwargs_replace_arguments_and_output():
    def case(lib):
        calls = []

        class M(lib.nn.Module):
            def forward(self, x, scale=1.0):
                return x * scale

        m = M()

        def pre(mod, args, kwargs):
            calls.append((len(args), dict(kwargs)))
            return (args[0] + 1,), {"scale": 3.0}

        def post(mod, args, kwargs, out):
            calls.append(("post", args[0].tolist(), dict(kwargs)))
            return out + 1

        m.register_forward_pre_hook(pre, with_kwargs=True)
        m.register_forward_hook(post, with_kwargs=True)
        m.register_forward_pre_hook(lambda mod, args: args[0] * 2)  # a non-tuple is wrapped
        m.register_forward_hook(lambda mod, args, out: (out, "extra"))
        return calls, m(lib.ones(1), scale=2.0)[0].tolist(), calls

    same(case)

    def bad(lib):
        m = lib.nn.Identity()
        m.register_forward_pre_hook(lambda mod, args, kw: args, with_kwargs=True)
        m(lib.ones(1))

    same_error(bad, RuntimeError, "must return None or a tuple of \\(new_args, new_kwargs\\)")


class _BoomError(Exception):
    pass


def _raising(lib):
    class M(lib.nn.Module):
        def forward(self, x):
            raise _BoomError("forward")

    return M()


def test_always_call_forward_hooks_run_when_forward_raises():
    def case(lib):
        calls = []
        m = _raising(lib)
        m.register_forward_hook(lambda mod, a, o: calls.append(("always", o)), always_call=True)
        m.register_forward_hook(lambda mod, a, o: calls.append("normal"))
        m.register_forward_hook(lambda mod, a, kw, o: calls.append(("kw", kw, o)),
                                always_call=True, with_kwargs=True)  # fmt: skip
        h = lib.nn.modules.module.register_module_forward_hook(
            lambda mod, a, o: calls.append("global"), always_call=True)  # fmt: skip
        try:
            with pytest.raises(_BoomError):
                m(lib.ones(1))
        finally:
            h.remove()
        ok = _lin(lib)  # an always_call hook that already ran is not run again
        ok.register_forward_hook(lambda *a: calls.append("ran"), always_call=True)
        ok.register_forward_hook(lambda *a: (_ for _ in ()).throw(_BoomError("hook")))
        with pytest.raises(_BoomError):
            ok(lib.ones(1, 2))
        return calls

    same(case)


def test_always_call_hook_error_is_a_warning_after_forward_error():
    def case(lib):
        m = _raising(lib)

        def bad(mod, args, out):
            raise ValueError("inner")

        m.register_forward_hook(bad, always_call=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with pytest.raises(_BoomError):
                m(lib.ones(1))
        return [str(x.message).split(":")[0] for x in w]

    same(case)


def test_removable_handle_and_hook_dicts_as_torch():
    def case(lib):
        m = _lin(lib)
        calls = []
        h = m.register_forward_hook(lambda *a: calls.append(1), with_kwargs=False)
        with h:
            m(lib.ones(1, 2))
        m(lib.ones(1, 2))
        h.remove()
        h2 = m.register_forward_hook(print, with_kwargs=True, always_call=True)
        h3 = m.register_forward_pre_hook(print, with_kwargs=True)
        sizes = [
            len(m._forward_hooks),
            len(m._forward_hooks_with_kwargs),
            len(m._forward_hooks_always_called),
            len(m._forward_pre_hooks_with_kwargs),
        ]
        stored = (m._forward_hooks[h2.id] is print, m._forward_pre_hooks[h3.id] is print)
        h2.remove()
        h3.remove()
        sizes += [
            len(m._forward_hooks),
            len(m._forward_hooks_with_kwargs),
            len(m._forward_hooks_always_called),
            len(m._forward_pre_hooks_with_kwargs),
        ]
        return calls, sizes, stored, h2.id > h.id, type(h).__name__

    same(case)


def test_hook_free_call_and_an_instance_forward():
    def case(lib):
        m = _lin(lib)
        x = lib.ones(1, 2)
        r = [m(x).tolist(), m._call_impl(x).tolist()]
        m.forward = lambda x: x * 10  # an instance attribute wins, as in PyTorch
        r.append(m(x).tolist())
        m.register_forward_hook(lambda mod, a, o: o + 1)
        r.append(m(x).tolist())
        return r

    same(case)


# ---------------------------------------------------------------------- backward hooks
def test_backward_hooks_order_and_shapes():
    def case(lib):
        calls = []
        m = _lin(lib)
        x = lib.ones(1, 2, requires_grad=True)
        m.register_full_backward_pre_hook(lambda mod, go: calls.append(("pre", len(go))))
        m.register_full_backward_hook(
            lambda mod, gi, go: calls.append(("full", gi[0].tolist(), go[0].tolist()))
        )
        m.register_full_backward_hook(lambda mod, gi, go: calls.append("full0"), prepend=True)
        m.register_full_backward_pre_hook(lambda mod, go: calls.append("pre0"), prepend=True)
        m(x).sum().backward()
        return calls

    same(case)


def test_backward_hooks_replace_gradients():
    def case(lib):
        m = _lin(lib)
        x = lib.ones(1, 2, requires_grad=True)
        m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0] + 100,))
        m(x).mul(3).sum().backward()
        return x.grad.tolist(), m.weight.grad.tolist()

    same(case)


def test_backward_hook_grad_tuples_have_none_for_non_tensors_and_unused_outputs():
    def case(lib):
        calls = []

        class M(lib.nn.Module):
            def forward(self, a, k, b):
                return a * b * k, a + b

        m = M()
        m.register_full_backward_hook(
            lambda mod, gi, go: calls.append(([g is None for g in gi], [g is None for g in go]))
        )
        a, b = lib.ones(2, requires_grad=True), lib.ones(2)
        m(a, 3, b)[0].sum().backward()
        return calls

    same(case)


def test_backward_hook_errors():
    def wrong_len(lib):
        m = _lin(lib)
        m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
        m(lib.ones(1, 2, requires_grad=True)).sum().backward()

    same_error(wrong_len, RuntimeError, "invalid number of grad_input, got 2, but expected 1")

    def no_input_grad(lib):
        calls = []
        m = _lin(lib)
        m.register_full_backward_hook(lambda mod, gi, go: calls.append(gi))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            m(
                lib.ones(1, 2),
            ).sum().backward()
        return calls

    same(no_input_grad)


def test_global_backward_hooks():
    def case(lib):
        calls = []
        mm = lib.nn.modules.module
        h = mm.register_module_full_backward_hook(lambda m, gi, go: calls.append(type(m).__name__))
        h2 = mm.register_module_full_backward_pre_hook(lambda m, go: calls.append("pre"))
        try:
            s = lib.nn.Sequential(_lin(lib), lib.nn.ReLU())
            s(lib.ones(1, 2, requires_grad=True)).sum().backward()
        finally:
            h.remove()
            h2.remove()
        return calls

    same(case)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_weight_norm_spectral_norm_and_prune_store_their_hook_objects():
    def case(lib):
        import torch.nn.utils.prune  # noqa: F401 - PyTorch imports it on demand

        utils = lib.nn.utils
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's deprecation of the hook-based norms
            a = utils.weight_norm(lib.nn.Linear(2, 2))
        b = utils.spectral_norm(lib.nn.Linear(2, 2))
        c = lib.nn.Linear(3, 3)
        utils.prune.l1_unstructured(c, "weight", amount=0.3)
        utils.prune.random_unstructured(c, "weight", amount=0.3)
        hooks = [[type(h).__name__ for h in m._forward_pre_hooks.values()] for m in (a, b, c)]
        keys = [list(m.state_dict()) for m in (a, b, c)]
        utils.remove_weight_norm(a)
        utils.remove_spectral_norm(b)
        utils.prune.remove(c, "weight")
        return hooks, keys, [(len(m._forward_pre_hooks), list(m.state_dict())) for m in (a, b, c)]

    same(case)
    same_error(
        lambda lib: lib.nn.utils.weight_norm(lib.nn.utils.weight_norm(lib.nn.Linear(1, 1))),
        RuntimeError,
        "Cannot register two weight_norm hooks",
    )


def test_parametrized_state_dicts_and_functional_call():
    def case(lib):
        m = lib.nn.utils.parametrizations.weight_norm(_lin(lib))
        m2 = lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(2, 2))
        r = [list(m.state_dict()), repr(m2.load_state_dict(m.state_dict())), type(m).__name__]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = lib.nn.utils.weight_norm(_lin(lib)).state_dict()  # weight_g / weight_v
        r.append(repr(m2.load_state_dict(old)))
        lin = _lin(lib)
        out = lib.func.functional_call(lin, ({"weight": lib.ones(2, 2)}, {"bias": lib.zeros(2)}),
                                       (lib.ones(1, 2),))  # fmt: skip
        return r + [out.tolist(), lin.weight.tolist(), type(lin.weight).__name__]

    same(case)


# ---------------------------------------------------------------------- conversions
def test_to_dtype_keeps_parameters_and_replaces_buffers():
    def case(lib):
        m = lib.nn.BatchNorm1d(2)
        m(lib.ones(3, 2)).sum().backward()
        w, g, rm, nbt = m.weight, m.weight.grad, m.running_mean, m.num_batches_tracked
        r = m.to(lib.float64) is m
        return (r, m.weight is w, _dt(w), m.weight.grad is g, _dt(g), m.running_mean is rm,
                _dt(m.running_mean), _dt(rm), m.num_batches_tracked is nbt,
                _dt(m.num_batches_tracked), m.to(lib.float64).running_mean is m.running_mean)  # fmt: skip

    same(case)


def test_to_argument_forms_and_errors():
    def case(lib):
        m = lib.nn.Linear(1, 1)
        m.to(lib.float64, False)  # a positional non_blocking
        r = [_dt(m.weight)]
        m.to("cpu", lib.float16, non_blocking=True)
        r.append(_dt(m.weight))
        m.to(lib.ones(1, dtype=lib.float32))
        r.append(_dt(m.weight))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's note that complex modules are new
            m.to(dtype=lib.complex64)
        r.append(_dt(m.weight))
        m.double()  # complex stays complex, as PyTorch's
        return r + [_dt(m.weight)]

    same(case)
    same_error(
        lambda lib: lib.nn.Linear(1, 1).to(lib.int32),
        TypeError,
        "only accepts floating point or complex dtypes",
    )


def test_float_double_half_type_and_their_reach():
    def case(lib):
        m = lib.nn.BatchNorm1d(2)
        w = m.weight
        r = [
            (f(m) is m, _dt(m.weight), m.weight is w, _dt(m.num_batches_tracked))
            for f in (
                lambda m: m.half(),
                lambda m: m.bfloat16(),
                lambda m: m.double(),
                lambda m: m.float(),
                lambda m: m.cpu(),
            )
        ]
        m.type(lib.float64)  # type() casts every tensor, integer buffers too
        return r + [_dt(m.weight), _dt(m.num_batches_tracked)]

    same(case)


def test_apply_passes_tensors_and_recurses_through_overrides():
    def case(lib):
        seen = []

        class Cached(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = lib.nn.Linear(1, 1)
                self.cache = lib.ones(2)  # not registered: moved by the _apply override

            def _apply(self, fn, recurse=True):
                super()._apply(fn, recurse)
                self.cache = fn(self.cache)
                seen.append(type(self.cache).__name__)
                return self

        top = lib.nn.Sequential(Cached())
        top.double()
        top[0].to_empty(device="cpu", recurse=False)
        return seen, _dt(top[0].cache), _dt(top[0].lin.weight)

    same(case)


def test_to_empty_and_share_memory_return_the_module():
    def case(lib):
        m = lib.nn.Sequential(lib.nn.Linear(1, 1))
        w = m[0].weight
        return (m.to_empty(device="cpu") is m, m[0].weight is w, tuple(w.shape),
                m.share_memory() is m, m[0].weight.is_shared())  # fmt: skip

    same(case)


# ---------------------------------------------------------------------- copying
def _global_hook(m, a, o):
    return None


def test_deepcopy_and_pickle_keep_hooks():
    def case(lib):
        m = lib.nn.Sequential(_lin(lib))
        m.register_forward_hook(_global_hook)
        m.register_forward_pre_hook(lambda *a: None)

        def pre(mod, *rest):
            seen.append(mod)

        seen = []
        m._register_load_state_dict_pre_hook(pre, with_module=True)
        c = copy.deepcopy(m)
        c.load_state_dict(c.state_dict())
        m.__dict__["_forward_pre_hooks"].clear()
        p = pickle.loads(pickle.dumps(lib.nn.Sequential(_lin(lib)).requires_grad_(False)))
        return (len(c._forward_hooks), len(c._forward_pre_hooks), seen[0] is c,
                c[0].weight is not m[0].weight, c[0].weight.tolist(),
                p[0].weight.requires_grad, p[0].weight.tolist(), type(p).__name__)  # fmt: skip

    same(case)


def test_setstate_fills_hook_dicts_of_old_pickles():
    def case(lib):
        m = lib.nn.Linear(1, 1)
        keep = ("_parameters", "_buffers", "_modules", "training", "in_features",
                "out_features", "_forward_hooks")  # fmt: skip
        state = {k: v for k, v in m.__getstate__().items() if k in keep}
        m2 = lib.nn.Linear.__new__(lib.nn.Linear)
        m2.__setstate__(state)
        m2.register_forward_hook(lambda *a: None, with_kwargs=True)
        filled = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_pre_hooks",
                  "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                  "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                  "_load_state_dict_post_hooks", "_non_persistent_buffers_set",
                  "_is_full_backward_hook")  # fmt: skip
        return [k in m2.__dict__ for k in filled], len(m2._forward_hooks_with_kwargs)

    same(case)
