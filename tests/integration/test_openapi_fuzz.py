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

import tomllib
from typing import Any

import httpx
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
#: The node of the pass running now (its models are deployed again when a case changed them).
current: dict[str, str] = {}


@pytest.fixture(params=list(PASSES))
def node_schema(start_node: Any, request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
    """The OpenAPI of a fresh node, as schemathesis loads it, sending the admin token (and
    the path parameters of the pass)."""
    # schemathesis 4.32 renames the test item per operation through `item._nodeid`, which
    # pytest 9 no longer has (AttributeError): give it one; it only names the reports.
    request.node._nodeid = request.node.nodeid
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    current["url"] = node.url
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


def changes_the_registry(case: Case[Any]) -> bool:
    """``PUT`` or ``DELETE /models/{name}``: a spec's validity is beyond any schema (its
    pipeline is parsed, its metrics must fit its task), so a schema-valid body may rightly be
    refused (422) and ``positive_data_acceptance`` cannot apply; a 2xx is checked instead
    never to come with a spec the node could not build, and what a case deployed, changed
    or retired is put back, so that the next cases find the models of the pass."""
    return case.operation.path == "/models/{name}" and case.method in ("PUT", "DELETE")


def starts_tuning(case: Case[Any]) -> bool:
    """``POST /models/{name}/tune``: a search space is checked against the model's pipeline
    (its parameter paths, what River takes) and the window against what the model learned,
    beyond any schema, so a schema-valid body may rightly be refused (422); a 202 started a
    job, which is stopped again."""
    return case.operation.path == "/models/{name}/tune" and case.method == "POST"


def put_back() -> None:
    """Deploy the models of :data:`MODELS` again as they were (nothing happens for one that
    is), and retire any other that a case deployed."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = current["url"]
    tables = tomllib.loads(MODELS)["models"]
    for name, table in tables.items():
        answer = httpx.put(f"{url}/models/{name}", json=table, headers=auth, timeout=30)
        assert answer.status_code == 200, answer.text
    for model in httpx.get(f"{url}/models", timeout=30).json():
        if model["name"] not in tables:
            httpx.delete(f"{url}/models/{model['name']}", headers=auth, timeout=30)


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
    if changes_the_registry(case):
        response = case.call_and_validate(
            additional_checks=[names_the_node], excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code in (200, 401, 403, 404, 405, 413, 422), response.text
        if response.status_code == 200:
            put_back()
    elif starts_tuning(case):
        response = case.call_and_validate(
            additional_checks=[names_the_node], excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code in (202, 401, 403, 404, 409, 413, 422), response.text
        if response.status_code == 202:
            name = case.path_parameters["name"]
            httpx.delete(f"{current['url']}/models/{name}/tune/{response.json()['job']}",
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)  # fmt: skip
    elif refused_by_the_model(case):
        response = case.call_and_validate(
            additional_checks=[names_the_node], excluded_checks=[positive_data_acceptance]
        )
        assert response.status_code == 422, response.text
    else:
        case.call_and_validate(additional_checks=[names_the_node])


def test_at_least_a_thousand_cases_were_generated() -> None:
    operations = set(generated)
    assert len(generated) >= MIN_CASES, f"{len(generated)} cases over {len(operations)} operations"
