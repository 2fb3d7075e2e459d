"""The ``streamlearn`` command: a local broker, the worker, replays and the demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from streams.broker.local import LocalKafka
from streams.learning.errors import StreamlearnError
from streams.settings import Settings

logger = logging.getLogger("streamlearn")

#: What `streamlearn demo` replays: (source, model) pairs matching the bundled models.toml.
DEMO_STREAMS = (
    ("river:Phishing", "phishing"),
    ("river:ImageSegments", "segments"),
    ("river:TrumpApproval", "trump"),
)


def local_kafka(settings: Settings) -> LocalKafka:
    """The local broker for these settings."""
    return LocalKafka(
        settings.state_dir,
        settings.bootstrap_host,
        settings.bootstrap_port,
        version=settings.kafka_version,
        heap=settings.kafka_heap,
    )


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    broker = local_kafka(settings)
    if args.action == "start":
        status = broker.start()
        _say(f"Apache Kafka {settings.kafka_version} at {status.bootstrap}: {status.detail}")
    elif args.action == "stop":
        stopped = broker.stop()
        _say("stopped" if stopped else "no broker started by streamlearn is running")
    else:
        status = broker.status()
        _say(f"{status.bootstrap}: {status.detail}")
        return 0 if status.running else 3
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust
    from faust.contrib.asgi import serve_asgi

    from app.main import create_api
    from streams.kafka_check import wait_for_broker
    from streams.node import build_node
    from streams.topics import create_topics

    # Before anything else, so that no broker means one clear line instead of a traceback.
    asyncio.run(
        wait_for_broker(settings.kafka_bootstrap_servers, settings.kafka_connect_timeout_seconds)
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    node = build_node(settings)
    loop.run_until_complete(create_topics(settings))
    serve_asgi(node.app, create_api(node), host=settings.http_host, port=settings.http_port)
    worker = faust.Worker(node.app, loglevel=args.loglevel, loop=loop)
    # Faust's terminal spinner sets the root logger to DEBUG at levels >= WARNING, which makes
    # every library debug call build a log record on the hot path.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.replay import replay

    sent = asyncio.run(
        replay(
            settings,
            args.source,
            args.model,
            limit=args.limit,
            rate=args.rate,
            id_prefix=args.id_prefix,
            label_column=args.label_column,
            label_delay=args.label_delay,
            batch=args.batch,
            progress=not args.quiet,
        )
    )
    _say(f"sent {sent} events for model {args.model!r} to {settings.topic_name('events')}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from streams.replay import replay

    broker = local_kafka(settings)
    started_broker = not broker.status().running
    _say(f"Apache Kafka: {broker.start().detail}")
    env = {**os.environ, "STREAMLEARN_MODELS": str(settings.models)}
    worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env)
    base = f"http://{settings.http_host}:{settings.http_port}"
    try:
        _wait_ready(base, worker)
        _say(
            "\nstreamlearn is learning the bundled demo streams. Look at:\n"
            f"  {base}/                    the live dashboard\n"
            f"  {base}/models              models, counters and state\n"
            f"  {base}/models/phishing/metrics  live metrics of the Phishing model\n"
            f"  {base}/docs                the API (try POST /models/phishing/predict)\n"
            f"  {base}/metrics             Prometheus\n"
            "Press Ctrl-C to stop.\n"
        )

        async def stream_all() -> None:
            await asyncio.gather(
                *(replay(settings, source, model, rate=args.rate, progress=False)
                  for source, model in DEMO_STREAMS)
            )  # fmt: skip

        asyncio.run(stream_all())
        _say("the demo streams are all sent; the node keeps serving")
        if args.exit_after_replay:
            return 0
        worker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        if started_broker:
            broker.stop()
    return 0


def _wait_ready(base: str, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise StreamlearnError(f"the worker exited with code {worker.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise StreamlearnError(f"the worker was not ready within {timeout:.0f} s")


def _snapshot(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the running node to snapshot a model (the admin route, with the token)."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host  # noqa: S104
    request = urllib.request.Request(
        f"http://{host}:{settings.http_port}/models/{args.name}/snapshots",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            _say(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise StreamlearnError(f"the node answered {exc.code}: {exc.read().decode()}") from None
    except OSError as exc:
        raise StreamlearnError(f"no node answers at {host}:{settings.http_port}: {exc}") from None
    return 0


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamlearn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    kafka = commands.add_parser("kafka", help="run a local single-node Apache Kafka (KRaft)")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(handler=_kafka)

    worker = commands.add_parser("worker", help="run a node: the Faust worker and the HTTP API")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(handler=_worker)

    replay = commands.add_parser("replay", help="stream a dataset into the events topic")
    replay.add_argument(
        "source", help="river:Phishing, river:synth.Agrawal(seed=1), or a .csv/.jsonl file"
    )
    replay.add_argument("--model", required=True, help="the model the events are for")
    replay.add_argument("--limit", type=int, default=None, help="send at most N events")
    replay.add_argument(
        "--rate", type=float, default=None, help="events per second (default: as fast as possible)"
    )
    replay.add_argument(
        "--id-prefix", default=None, help="event_id prefix (default: random per run)"
    )
    replay.add_argument("--label-column", default="label", help="label column of a file source")
    replay.add_argument(
        "--label-delay", type=int, default=0, metavar="K",
        help="send labels on the labels topic K events after their event (default: inline)",
    )  # fmt: skip
    replay.add_argument(
        "--batch", type=int, default=100, metavar="N",
        help="events per Kafka message, sent as a JSON array (default 100; 1 sends single objects)",
    )  # fmt: skip
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(handler=_replay)

    snapshot = commands.add_parser("snapshot", help="snapshot a model on the running node now")
    snapshot.add_argument("name", help="the model")
    snapshot.set_defaults(handler=_snapshot)

    demo = commands.add_parser("demo", help="local Kafka + a node + the bundled demo streams")
    demo.add_argument("--rate", type=float, default=200.0, help="events per second per stream")
    demo.add_argument(
        "--exit-after-replay", action="store_true", help="stop once the streams are sent"
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamlearn`` console command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings()
        code: int = args.handler(args, settings)
    except StreamlearnError as exc:
        sys.stderr.write(f"streamlearn: {exc}\n")
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
