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
    """Latency, HTTP, memory and challengers."""
    idle, busy = results["http_predict_idle"], results["http_predict_learning"]
    mem = results["memory"]
    cost = results["challengers"]
    print()
    for rate in (200, 1000):
        e2e = results[f"end_to_end_at_{rate}_per_s"]
        print(
            f"end-to-end latency at {rate:,} ev/s (sent {e2e['sent_per_s']:,.0f}/s; single"
            f" events, default spec): p50 {e2e['p50_ms']:.1f} ms, p99 {e2e['p99_ms']:.1f} ms,"
            f" max {e2e['max_ms']:.1f} ms; p50 of the last tenth sent"
            f" {e2e['p50_last_tenth_ms']:.1f} ms"
        )
    print(
        f"HTTP predict idle:     p50 {idle['p50_ms']:.2f} ms  p99 {idle['p99_ms']:.2f} ms  "
        f"{idle['requests_per_s']:.0f} req/s\n"
        f"HTTP predict learning: p50 {busy['p50_ms']:.2f} ms  p99 {busy['p99_ms']:.2f} ms  "
        f"{busy['requests_per_s']:.0f} req/s ({busy['learned_during']:,} events learned)\n"
        f"memory: {mem['bytes_per_model_after_200_events'] / 1024:.1f} KiB per model, "
        f"{mem['bytes_per_pending_prediction']:.0f} B per pending prediction\n"
        f"challengers (learning core, linear): k=1 {cost['k1_over_k0']:.2f}x, "
        f"k=3 {cost['k3_over_k0']:.2f}x the throughput of k=0 ({cost['k0_per_s']:,.0f}/s)"
    )


def print_goals(goals: list[dict[str, Any]]) -> None:
    """Each goal, its measured value, and whether it is met."""
    print(f"\n{'GOAL':54s} {'measured':>9s} {'target':>8s}  met")
    for g in goals:
        print(
            f"{g['goal']:54s} {g['measured']:>9.2f} {g['target']:>8s}  "
            f"{'yes' if g['met'] else 'NO'}"
        )
    print(f"written to {RESULTS}/")
