"""Schemathesis against a running node: every operation of its OpenAPI, every check.

A node on a real broker serves two models: a numbers-only classifier (``preprocess = "none"``,
with challengers, so promotion can succeed) and a regression that takes every kind of value.
Admin routes are on (``STREAMLEARN_ADMIN_TOKEN``): schemathesis sends the token, and its
``ignored_auth`` and ``missing_required_header`` checks send requests without it, or with
a wrong one. Every response must conform to the schema (status code, content type, headers,
body), schema-valid requests must be accepted and schema-invalid ones refused, no answer may
be a 5xx, and (a check of our own) every answer names the node that computed it.

The last test checks that at least :data:`MIN_CASES` cases were generated in all: run the
module as a whole (``pytest tests/integration/test_openapi_fuzz.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.forwarding import NODE_HEADER

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "fuzz-token"
MODELS = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]

[models.phishing.challengers]
nb = "naive_bayes.GaussianNB()"

[models.prices]
task = "regression"
pipeline = "linear_model.LinearRegression()"
metrics = ["MAE"]
"""
#: The model whose pipeline takes numbers only (StandardScaler with no preprocessing).
NUMBERS_ONLY = "phishing"
#: Fuzzing examples per operation, over both generation modes; the coverage phase adds its
#: own (boundary values, missing and extra parameters, methods the path does not take).
MAX_EXAMPLES = 25
#: A drawn model name is never a declared one: one pass as drawn (unknown models, 404),
#: then one per model, its name (and a real challenger) fixed in every path.
PASSES = {
    "drawn": {},
    "phishing": {"name": "phishing", "candidate": "nb"},
    "prices": {"name": "prices"},
}
MIN_CASES = 1_000

#: Cases generated so far in this session, over every operation.
generated: list[str] = []


@pytest.fixture(params=list(PASSES))
def node_schema(start_node: Any, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The OpenAPI of a fresh node, as schemathesis loads it, sending the admin token (and
    the path parameters of the pass)."""
    # schemathesis 4.32 renames the test item per operation through `item._nodeid`, which
    # pytest 9 no longer has (AttributeError): give it one; it only names the reports.
    request.node._nodeid = request.node.nodeid
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    schema = schemathesis.openapi.from_url(f"{node.url}/openapi.json")
    schema.config.update(
        headers={"Authorization": f"Bearer {TOKEN}"}, parameters=PASSES[request.param]
    )
    schema.config.seed = 20_240_611  # the coverage phase and each operation's seed
    return schema


schema = schemathesis.pytest.from_fixture("node_schema")


def names_the_node(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every answer carries ``X-Streamlearn-Node`` (README, "HTTP")."""
    assert NODE_HEADER in {name.lower() for name in response.headers}, (
        f"{response.status_code} answer without {NODE_HEADER}"
    )
    return None


def refused_by_the_model(case: Case[Any]) -> bool:
    """A prediction of the numbers-only model from a string or a null: 422, rightly.

    OpenAPI cannot say that the features a ``/models/{name}/predict`` body may hold depend on
    the ``{name}`` in the path: the body schema takes what some model takes, and this model
    refuses what its pipeline cannot take (README, "Models"). For such a case, and only
    for it, ``positive_data_acceptance`` cannot apply; the 422 is checked instead.
    """
    if case.operation.path != "/models/{name}/predict":
        return False
    if (case.path_parameters or {}).get("name") != NUMBERS_ONLY or not isinstance(case.body, dict):
        return False
    features = case.body.get("features")
    instances = [features] if isinstance(features, dict) else case.body.get("instances")
    return any(
        not isinstance(value, int | float)  # bools are ints
        for x in (instances if isinstance(instances, list) else [])
        if isinstance(x, dict)
        for value in x.values()
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run, here and in CI
    database=None,
    deadline=None,  # the node shares two cores with the broker and the test
    # Generation health, not the node's: the event and predict bodies are large schemas.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_every_operation_conforms(case: Case[Any]) -> None:
    generated.append(case.operation.label)
    if refused_by_the_model(case):
        response = case.call_and_validate(
            additional_checks=[names_the_node], excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code == 422, response.text
    else:
        case.call_and_validate(additional_checks=[names_the_node])


def test_at_least_a_thousand_cases_were_generated() -> None:
    operations = set(generated)
    assert len(generated) >= MIN_CASES, f"{len(generated)} cases over {len(operations)} operations"
