from __future__ import annotations

import tracemalloc

from streams.learning.preprocessing import OTHER, AutoPreprocessor


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
