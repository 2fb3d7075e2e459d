"""The tables ``bench/run.py`` prints."""

from __future__ import annotations

from typing import Any

from harness import RESULTS

ROW_HEADER = (
    f"{'model':10s} {'raw River':>10s} {'core':>9s} {'1 ev/msg':>9s} {'500 ev/msg':>10s}"
    f" {'ceiling':>8s} {'single/ceil':>11s} {'batched/raw':>11s} {'node/core':>9s}"
)
TITLES = {
    "headline": "HEADLINE: the default spec (metrics {metrics}; preprocess {preprocess};"
    " a snapshot every {snapshot_every:,} events)",
    "accuracy_only": "ACCURACY ONLY, the flattering settings (metrics {metrics}; preprocess"
    " {preprocess}; snapshot_every {snapshot_every:,}, so none)",
}


#: The end-to-end rows of the summary: the floors, then the node.
E2E_ROWS = {
    "kafka_floor_at_1000_per_s": "floor: plain aiokafka echo at 1,000/s",
    "faust_floor_at_1000_per_s": "floor: Faust echo (take_events) at 1,000/s",
    "end_to_end_at_200_per_s": "node, default spec, at 200/s",
    "end_to_end_at_1000_per_s": "node, default spec, at 1,000/s",
}
#: The HTTP rows: the floor (an app alone), then the node.
HTTP_ROWS = {
    "http_floor_idle": "floor: FastAPI app alone, idle",
    "http_floor_one_core_burned": "floor: FastAPI app alone, one core burned",
    "http_predict_idle": "node idle",
    "http_predict_idle_one_core_burned": "node idle, one core burned",
    "http_predict_learning": "node learning a 500-event-message backlog",
}


def print_progress(table: str, name: str, row: dict[str, Any]) -> None:
    """One line as soon as a row is measured."""
    print(f"[{table}] {row_line(name, row)}", flush=True)


def row_line(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:10s} {r['raw_per_s']:>8,.0f}/s {r['core_per_s']:>7,.0f}/s"
        f" {r['single_per_s']:>7,.0f}/s {r['batched_per_s']:>8,.0f}/s"
        f" {r['ceiling_per_s']:>6,.0f}/s {r['single_over_ceiling']:>11.2f}"
        f" {r['batched_over_raw']:>11.2f} {r['node_over_core']:>9.2f}"
    )


def print_tables(results: dict[str, Any]) -> None:
    """The headline table (default specs), then the Accuracy-only one."""
    print(
        f"\nFaust floor: {results['faust_floor_msgs_per_s']:,.0f} messages/s"
        " (an agent that only counts single-event messages)"
    )
    for table, title in TITLES.items():
        rows = results.get(table) or {}
        if not rows:
            continue
        spec = next(iter(rows.values()))["spec"]
        print("\n" + title.format(**{**spec, "metrics": ", ".join(spec["metrics"])}))
        print(ROW_HEADER)
        for name, row in rows.items():
            print(row_line(name, row))
    print(
        "core: ModelRegistry.handle_events on the same 500-event messages, in process;"
        " ceiling = 1 / (1/floor + 1/raw); node/core = 500 ev/msg node / core"
    )


def print_profile(profile: dict[str, Any]) -> None:
    """The per-event breakdown of the profiled node next to that of the core, and the
    node's top functions."""
    node, core = profile["node"], profile["core"]
    print(
        f"\nPROFILE (cProfile) of a node learning {profile['model']} with the default spec,"
        f" {node['events']:,} events in {profile['batch']}-event messages, next to the"
        " learning core alone.\ncProfile's per-call overhead inflates every figure (small"
        " functions most): compare shares. Unprofiled, this node took"
        f" {profile['unprofiled_us_per_event']:.1f} µs/event and the core"
        f" {profile['core_unprofiled_us_per_event']:.1f}; profiled, busy"
        f" {node['busy_us_per_event']:.1f} and {core['busy_us_per_event']:.1f}"
        f" (idle in the node's event loop: {1e6 * node['idle_seconds'] / node['events']:.1f}"
        " µs/event, left out)."
    )
    print(
        f"{'category':38s} {'node µs/ev':>10s} {'share':>6s} {'core µs/ev':>10s}"
        f" {'share':>6s} {'node-core':>9s}"
    )
    for name, n in node["categories"].items():
        c = core["categories"][name]
        print(
            f"{name:38s} {n['us_per_event']:>10.1f} {n['share']:>6.0%}"
            f" {c['us_per_event']:>10.1f} {c['share']:>6.0%}"
            f" {n['us_per_event'] - c['us_per_event']:>9.1f}"
        )
    print(
        f"{'total (busy)':38s} {node['busy_us_per_event']:>10.1f} {'':6s}"
        f" {core['busy_us_per_event']:>10.1f}"
    )
    print(
        f"{'of which garbage collection':38s} {node['gc']['us_per_event']:>10.1f}"
        f" {node['gc']['share']:>6.0%} {core['gc']['us_per_event']:>10.1f}"
        f" {core['gc']['share']:>6.0%}   (inside the categories it interrupted; collections"
        f" by generation: node {node['gc']['collections']}, core {core['gc']['collections']})"
    )
    print("\ntop 15 functions of the node by self time:")
    print(f"{'µs/ev':>6s} {'share':>6s} {'calls/ev':>8s}  function [category]")
    for f in node["top"]:
        print(
            f"{f['us_per_event']:>6.2f} {f['share']:>6.1%} {f['calls_per_event']:>8.2f}"
            f"  {f['function']} [{f['category']}]"
        )


def print_summary(results: dict[str, Any]) -> None:
    """Latency next to its floors, HTTP next to its floor, memory and challengers."""
    mem = results["memory"]
    cost = results["challengers"]
    print(f"\n{'END-TO-END, 1 event/msg (after a warm-up)':50s} {'sent/s':>7s} {'p50 ms':>8s}"
          f" {'p99 ms':>8s} {'max ms':>8s} {'p50 last 10%':>12s}")  # fmt: skip
    for key, name in E2E_ROWS.items():
        if key in results:
            e = results[key]
            print(f"{name:50s} {e['sent_per_s']:>7,.0f} {e['p50_ms']:>8.1f} {e['p99_ms']:>8.1f}"
                  f" {e['max_ms']:>8.1f} {e['p50_last_tenth_ms']:>12.1f}")  # fmt: skip
    print(f"\n{'HTTP POST /models/{name}/predict, one client':50s} {'req/s':>7s} {'p50 ms':>8s}"
          f" {'p99 ms':>8s}")  # fmt: skip
    for key, name in HTTP_ROWS.items():
        if key in results:
            h = results[key]
            print(f"{name:50s} {h['requests_per_s']:>7,.0f} {h['p50_ms']:>8.2f}"
                  f" {h['p99_ms']:>8.2f}")  # fmt: skip
    learned = results["http_predict_learning"]["learned_during"]
    print(
        f"({learned:,} events learned while the node was asked)\n"
        f"memory: {mem['bytes_per_model_after_200_events'] / 1024:.1f} KiB per model, "
        f"{mem['bytes_per_pending_prediction']:.0f} B per pending prediction\n"
        f"challengers (learning core, linear): k=1 {cost['k1_over_k0']:.2f}x, "
        f"k=3 {cost['k3_over_k0']:.2f}x the throughput of k=0 ({cost['k0_per_s']:,.0f}/s)"
    )


def print_goals(goals: list[dict[str, Any]]) -> None:
    """Each goal, its measured value, whether it is met, and the floor under it where the
    run measured one (the same figure for what the node does not add)."""
    print(f"\n{'GOAL':54s} {'measured':>9s} {'target':>8s}  met  floor")
    for g in goals:
        floor = g.get("floor")
        print(
            f"{g['goal']:54s} {g['measured']:>9.2f} {g['target']:>8s}  "
            f"{'yes' if g['met'] else 'NO ':3s}  {floor or ''}"
        )
    print(f"written to {RESULTS}/")
