"""mg.quasirandom.SobolEngine against torch.quasirandom.SobolEngine: unscrambled points bit
for bit; scrambled ones by the properties of a scrambled Sobol' sequence."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import quasirandom

torch = pytest.importorskip("torch")


def _same(got, want):
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_direction_table_rebuilds_torchs_state_for_every_dimension():
    state = torch.zeros(quasirandom.SobolEngine.MAXDIM, 30, dtype=torch.long)
    torch._sobol_engine_initialize_state_(state, state.shape[0])
    np.testing.assert_array_equal(quasirandom._direction_numbers(state.shape[0]), state.numpy())


@pytest.mark.parametrize("dim", [1, 2, 7, 40, 1111, 1112, 21201])
def test_unscrambled_points_equal_torchs(dim):
    ours, theirs = mg.quasirandom.SobolEngine(dim), torch.quasirandom.SobolEngine(dim)
    _same(ours.sobolstate, theirs.sobolstate)
    _same(ours.draw(), theirs.draw())  # the first point alone
    _same(ours.draw(5, dtype=mg.float64), theirs.draw(5, dtype=torch.float64))
    ours.fast_forward(1000), theirs.fast_forward(1000)
    _same(ours.draw(7), theirs.draw(7))
    _same(ours.quasi, theirs.quasi)
    assert ours.num_generated == theirs.num_generated == 1013
    ours.reset(), theirs.reset()
    ours.fast_forward(3), theirs.fast_forward(3)
    _same(ours.draw(61), theirs.draw(61))
    _same(ours.draw_base2(6, dtype=mg.float64), theirs.draw_base2(6, dtype=torch.float64))


@pytest.mark.parametrize(
    "steps", [[("draw", 64)], [("ff", 5), ("draw", 3)], [("ff", 0), ("draw", 1), ("ff", 2**20)]]
)
def test_sequences_of_calls_equal_torchs(steps):
    ours, theirs = mg.quasirandom.SobolEngine(3), torch.quasirandom.SobolEngine(3)
    for what, n in steps + [("draw", 9)]:
        if what == "ff":
            ours.fast_forward(n), theirs.fast_forward(n)
        else:
            _same(ours.draw(n), theirs.draw(n))
        assert ours.num_generated == theirs.num_generated
        _same(ours.quasi, theirs.quasi)


def test_state_out_and_repr_as_torch():
    ours, theirs = mg.quasirandom.SobolEngine(4), torch.quasirandom.SobolEngine(4)
    assert (ours.MAXBIT, ours.MAXDIM) == (theirs.MAXBIT, theirs.MAXDIM)
    _same(ours.shift, theirs.shift)
    _same(ours._first_point, theirs._first_point)
    out, t_out = mg.empty(0, dtype=mg.float64), torch.empty(0, dtype=torch.float64)
    assert ours.draw(3, out=out) is out
    _same(out, theirs.draw(3, out=t_out))
    ours.reset(), theirs.reset()
    _same(ours.draw(1, dtype=mg.float16), theirs.draw(1, dtype=torch.float16))  # first point
    assert repr(ours) == repr(theirs) == "SobolEngine(dimension=4)"
    s = mg.quasirandom.SobolEngine(2, scramble=True, seed=3)
    assert repr(s) == repr(torch.quasirandom.SobolEngine(2, scramble=True, seed=3))


def _balanced(points, m):
    """Every dyadic interval [j 2^-m, (j + 1) 2^-m) holds exactly one point, per column."""
    cells = np.floor(points * 2**m).astype(np.int64)
    return all(sorted(c) == list(range(2**m)) for c in cells.T)


def _net_2d(points, m):
    """Every dyadic box of area 2^-m holds exactly one point (a (0, m, 2)-net)."""
    for a in range(m + 1):
        cells = np.floor(points[:, 0] * 2**a) * 2 ** (m - a) + np.floor(points[:, 1] * 2 ** (m - a))
        if sorted(cells.astype(np.int64)) != list(range(2**m)):
            return False
    return True


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_scrambled_points_keep_sobols_balance(seed):
    eng = mg.quasirandom.SobolEngine(16, scramble=True, seed=seed)
    pts = eng.draw_base2(9, dtype=mg.float64).numpy()
    assert pts.shape == (512, 16) and (pts >= 0).all() and (pts < 1).all()
    for m in range(10):
        assert _balanced(pts[: 2**m], m), m
    assert _net_2d(pts[:256], 8)  # the first two dimensions stay a (0, m, 2)-net
    unscrambled = mg.quasirandom.SobolEngine(16).draw_base2(9, dtype=mg.float64).numpy()
    assert not np.array_equal(pts, unscrambled)
    assert _net_2d(unscrambled[:256], 8) and not _net_2d(
        np.random.default_rng(0).random((256, 2)), 8
    )


def test_scrambling_is_determined_by_the_seed_or_the_global_generator():
    a = mg.quasirandom.SobolEngine(5, scramble=True, seed=11).draw(40)
    b = mg.quasirandom.SobolEngine(5, scramble=True, seed=11).draw(40)
    c = mg.quasirandom.SobolEngine(5, scramble=True, seed=12).draw(40)
    assert np.array_equal(a.numpy(), b.numpy()) and not np.array_equal(a.numpy(), c.numpy())
    mg.manual_seed(4)
    d = mg.quasirandom.SobolEngine(5, scramble=True).draw(40)
    mg.manual_seed(4)
    e = mg.quasirandom.SobolEngine(5, scramble=True).draw(40)
    assert np.array_equal(d.numpy(), e.numpy())
    # reset and fast_forward move through the same scrambled sequence
    eng = mg.quasirandom.SobolEngine(5, scramble=True, seed=11)
    eng.fast_forward(10)
    np.testing.assert_array_equal(eng.draw(30).numpy(), a.numpy()[10:])
    np.testing.assert_array_equal(eng.reset().draw(40).numpy(), a.numpy())


def test_bad_arguments_raise_as_torch():
    for dim in (0, 21202):
        with pytest.raises(ValueError, match=r"\[1, 21201\]"):
            mg.quasirandom.SobolEngine(dim)
    eng = mg.quasirandom.SobolEngine(2)
    with pytest.raises(NotImplementedError, match="float32 or float64"):
        eng.draw(3, dtype=mg.float16)
    with pytest.raises(RuntimeError, match="positive"):
        eng.draw(0)
    eng.draw(3)
    with pytest.raises(ValueError, match="power of 2"):
        eng.draw_base2(2)
    with pytest.raises(ValueError, match="n must be >= 0"):
        eng.fast_forward(-1)
    with pytest.raises(TypeError, match="dimension must be an int"):
        mg.quasirandom.SobolEngine(2.5)


def test_torch_quasirandom_maps_to_manygrad():
    from manygrad.compat.importer import target_name

    assert target_name("torch.quasirandom") == "manygrad.quasirandom"
