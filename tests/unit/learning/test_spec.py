from __future__ import annotations

from pathlib import Path

import pytest

from streams.learning.errors import SpecError
from streams.learning.metrics import DEFAULTS
from streams.learning.spec import load_specs

GOOD = """
[models.a]
task = "binary"
pipeline = "linear_model.LogisticRegression()"
drift = ["ADWIN(delta=0.01)", "DDM()"]

[models.b]
task = "regression"
pipeline = "linear_model.LinearRegression()"
preprocess = "none"
metrics = ["MAE"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_specs_load_with_task_defaults(tmp_path: Path) -> None:
    specs = load_specs(write(tmp_path, GOOD))
    assert set(specs) == {"a", "b"}
    assert specs["a"].metrics == DEFAULTS["binary"]
    assert specs["a"].preprocess == "auto"
    assert specs["b"].metrics == ("MAE",)
    assert specs["a"].drift == ("ADWIN(delta=0.01)", "DDM()")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('task = "binary"\npipeline = "os.system(1)"', "models.m: pipeline: 'os.system'"),
        ('task = "binary"\npipeline = "linear_model.LinearRegression()"', "needs a classifier"),
        ('task = "regression"\npipeline = "tree.HoeffdingTreeClassifier()"', "needs a regressor"),
        ('task = "ranking"\npipeline = "linear_model.LinearRegression()"', "models.m.task"),
        (
            'task = "binary"\npipeline = "linear_model.LogisticRegression()"\nmetrics = ["MAE"]',
            "MAE not available for a binary model",
        ),
        (
            'task = "binary"\npipeline = "linear_model.LogisticRegression()"\ndrift = ["eval()"]',
            "drift: only River classes can be called, not 'eval'",
        ),
        (
            'task = "binary"\npipeline = "linear_model.LogisticRegression()"\nlearning_rate = 1',
            "models.m.learning_rate",
        ),
        (
            'task = "binary"\npipeline = "linear_model.LogisticRegression()"\nrolling_window = 0',
            "models.m.rolling_window",
        ),
    ],
)
def test_invalid_specs_are_refused_naming_model_and_field(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_specs(write(tmp_path, f"[models.m]\n{table}\n"))
    assert message in str(info.value)
    assert "models.toml" in str(info.value)


def test_missing_file_and_empty_file_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_specs(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match=r"declares no models: add a \[models.NAME\] table"):
        load_specs(write(tmp_path, "title = 'x'\n"))
    with pytest.raises(SpecError, match="not valid TOML"):
        load_specs(write(tmp_path, "[models.a\n"))
