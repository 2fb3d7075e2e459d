"""The performance goals of issue 15, checked against one run's figures."""

from __future__ import annotations

from typing import Any

#: batched / raw that the default spec of these models should reach.
BATCHED_OVER_RAW = {"linear": 0.6, "hoeffding": 0.75}
NODE_OVER_CORE = 0.9
SINGLE_OVER_CEILING = 0.9
HTTP_P99_LEARNING_OVER_IDLE = 2.0
END_TO_END_P99_MS = 10.0
#: Rows of the throughput tables, and how the goals name them.
TABLES = {"headline": "defaults", "accuracy_only": "Accuracy only"}


def goal(name: str, measured: float, bound: float, *, at_least: bool) -> dict[str, Any]:
    """One goal: its measured value, its bound (a floor or a ceiling), and whether it is met."""
    met = measured >= bound if at_least else measured <= bound
    target = f"{'>=' if at_least else '<='} {bound:g}"
    return {"goal": name, "measured": measured, "target": target, "met": met}


def row_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals of the throughput rows: batched / raw (defaults), node / core and single /
    ceiling (every row)."""
    out = []
    headline = results.get("headline", {})
    for model, bound in BATCHED_OVER_RAW.items():
        if model in headline:
            ratio = headline[model]["batched_over_raw"]
            out.append(goal(f"batched / raw, {model}, defaults", ratio, bound, at_least=True))
    for key, name, bound in (
        ("node_over_core", "node / core (500/msg)", NODE_OVER_CORE),
        ("single_over_ceiling", "single / ceiling", SINGLE_OVER_CEILING),
    ):
        for table, called in TABLES.items():
            for model, row in results.get(table, {}).items():
                out.append(goal(f"{name}, {model}, {called}", row[key], bound, at_least=True))
    return out


def check_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal the run measured, in the issue's order."""
    out = row_goals(results)
    if "http_predict_learning" in results:
        ratio = results["http_predict_learning"]["p99_ms"] / results["http_predict_idle"]["p99_ms"]
        name = "HTTP predict p99, learning / idle"
        out.append(goal(name, ratio, HTTP_P99_LEARNING_OVER_IDLE, at_least=False))
        if "http_floor_idle" in results:
            out[-1]["floor"] = _ratio_floor(results)
    if "end_to_end_at_1000_per_s" in results:
        p99 = results["end_to_end_at_1000_per_s"]["p99_ms"]
        name = "end-to-end p99 at 1,000 events/s, 1 event/msg (ms)"
        out.append(goal(name, p99, END_TO_END_P99_MS, at_least=False))
        if "kafka_floor_at_1000_per_s" in results:
            kafka = results["kafka_floor_at_1000_per_s"]["p99_ms"]
            faust = results["faust_floor_at_1000_per_s"]["p99_ms"]
            out[-1]["floor"] = f"Kafka echo {kafka:.1f}, Faust echo {faust:.1f}"
    return out


def _ratio_floor(results: dict[str, Any]) -> str:
    """p99 with one core burned over idle p99: of a FastAPI app alone, and of the node idle
    (what contention on this machine costs a request, without and with the node)."""
    app = results["http_floor_one_core_burned"]["p99_ms"] / results["http_floor_idle"]["p99_ms"]
    node = (
        results["http_predict_idle_one_core_burned"]["p99_ms"]
        / results["http_predict_idle"]["p99_ms"]
    )
    return f"app alone, one core burned {app:.2f}; node idle, one core burned {node:.2f}"
