from __future__ import annotations

import math
import pickle
import random
import tracemalloc

from river import stats

from streams.learning.preprocessing import OTHER, AutoPreprocessor
from streams.learning.snapshots import restricted_loads


def test_unique_strings_cannot_grow_the_vocabulary_past_the_cap() -> None:
    prep = AutoPreprocessor(max_categories=50)
    for i in range(2_000):
        prep.learn_one({"user": f"u{i}"})
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(2_000, 20_000):
        prep.learn_one({"user": f"u{i}"})
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert prep.describe()["categorical"]["features"] == {"user": 50}
    assert grown < 10_000  # bytes: nothing is kept per new string
    assert prep.transform_one({"user": "u19999"}) == {f"user={OTHER}": 1.0}
    assert prep.transform_one({"user": "u3"}) == {"user=u3": 1.0}


def test_numbers_are_scaled_and_missing_ones_imputed() -> None:
    prep = AutoPreprocessor()
    for value in (1.0, 2.0, 3.0):
        prep.learn_one({"x": value})
    assert prep.transform_one({"x": 3.0})["x"] == 1.0  # (3 - 2) / sd, sd = 1 (ddof=1)
    assert prep.transform_one({})["x"] == 0.0
    assert prep.transform_one({"x": None})["x"] == 0.0
    assert prep.transform_one({"x": float("nan")})["x"] == 0.0


def _stream(n: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    out: list[dict[str, object]] = []
    for _ in range(n):
        x: dict[str, object] = {}
        for name in ("a", "b", "c", "d"):
            r = rng.random()
            if r < 0.4:
                x[name] = rng.gauss(0.0, 1.0) * 10 ** rng.randint(-4, 8)
            elif r < 0.7:
                x[name] = rng.randint(-1_000, 10**6)
            elif r < 0.8:
                x[name] = rng.choice([None, math.nan, math.inf, True, False])
            elif r < 0.9:
                x[name] = f"c{rng.randint(0, 5)}"
        out.append(x)
    return out


def test_numbers_are_scaled_with_rivers_running_variance_exactly() -> None:
    prep = AutoPreprocessor()
    variances: dict[str, stats.Var] = {}
    for x in _stream(3_000):
        for name, value in x.items():
            if type(value) in (int, float) and math.isfinite(value):  # type: ignore[arg-type]
                variances.setdefault(name, stats.Var()).update(value)
        prep.learn_one(x)
        out = prep.transform_one(x)
        for name, var in variances.items():
            value = x.get(name)
            if type(value) in (int, float) and math.isfinite(value):  # type: ignore[arg-type]
                sd = math.sqrt(var.get())
                expected = (float(value) - var.mean.get()) / sd if sd > 0 else 0.0  # type: ignore[arg-type]
                assert out[name] == expected


def _old_var(n: float, mean: float, m2: float) -> stats.Var:
    var = stats.Var()
    var.mean.n, var.mean._mean, var._S = n, mean, m2
    return var


def test_a_stage_pickled_before_plain_moments_is_restored_with_the_same_numbers() -> None:
    xs = _stream(500)
    prep = AutoPreprocessor()
    for x in xs:
        prep.learn_one(x)
    old_state = dict(prep.__dict__)  # as snapshots held it: River's Var per feature
    old_state["_var"] = {
        name: _old_var(m.n, m.mean, m.m2) for name, m in old_state.pop("_moments").items()
    }
    restored = AutoPreprocessor.__new__(AutoPreprocessor)
    restored.__setstate__(old_state)
    again = restricted_loads(pickle.dumps(prep))
    for x in xs[:50]:
        assert restored.transform_one(x) == prep.transform_one(x) == again.transform_one(x)
