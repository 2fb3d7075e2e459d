"""The ``streamlearn`` command: a local broker, the worker, replays and the demo."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from streams.broker.credentials import MECHANISM, SERVICE_USER
from streams.broker.local import LocalKafka
from streams.learning.errors import StreamlearnError
from streams.logs import configure_logging, worker_logging_config
from streams.settings import Settings

logger = logging.getLogger("streamlearn")

#: Allocations (net of frees) between two collections of the youngest generation; Python's
#: default is 700.
GC_GEN0_THRESHOLD = 20_000

#: What `streamlearn demo` replays, pass after pass: (source, model, events per pass, None for
#: the whole dataset), for the models of the bundled models.toml.
DEMO_STREAMS: tuple[tuple[str, str, int | None], ...] = (
    ("river:Phishing", "phishing", None),
    ("river:ImageSegments", "segments", None),
    ("river:TrumpApproval", "trump", None),
    # Agrawal's loan rule 0, then rule 2 from event 5,000 of each pass: a drift to detect.
    ("river:synth.ConceptDriftStream(seed=42, position=5000, width=100)", "drifting", 10_000),
)


def local_kafka(settings: Settings, *, secure: bool = False) -> LocalKafka:
    """The local broker for these settings; a ``secure`` one lets the service user use the
    topics and groups named after the topic prefix and the app id."""
    password = None
    # The operator's password is the service user's; one set for another user is not.
    if settings.kafka_sasl_password and settings.kafka_sasl_username in (None, SERVICE_USER):
        password = settings.kafka_sasl_password.get_secret_value()
    return LocalKafka(
        settings.state_dir,
        settings.bootstrap_host,
        settings.bootstrap_port,
        version=settings.kafka_version,
        heap=settings.kafka_heap,
        secure=secure,
        acl_prefixes=(settings.topic_prefix, settings.app_id),
        password=password,
    )


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    broker = local_kafka(settings, secure=args.secure)
    if args.action != "start" and not args.secure:
        # status and stop find the secure broker of this state directory by themselves.
        secure = local_kafka(settings, secure=True)
        if secure.status().managed:
            broker = secure
    if args.action == "start" and broker.secure:
        status = broker.start()
        # Comments and KEY=value lines only, so the output can be eval'ed or sourced.
        _say(
            f"# Apache Kafka {settings.kafka_version} at {status.bootstrap} (SASL_SSL,"
            f" {MECHANISM}, ACLs): {status.detail}\n"
            '# load these settings with: set -a; eval "$(streamlearn kafka start --secure)";'
            " set +a"
        )
        for key, value in broker.client_env().items():
            _say(f"{key}={shlex.quote(value)}")
    elif args.action == "start":
        status = broker.start()
        _say(f"Apache Kafka {settings.kafka_version} at {status.bootstrap}: {status.detail}")
    elif args.action == "stop":
        stopped = broker.stop()
        _say("stopped" if stopped else "no broker started by streamlearn is running")
    else:
        status = broker.status()
        kind = " (SASL_SSL)" if broker.secure else ""
        _say(f"{status.bootstrap}{kind}: {status.detail}")
        return 0 if status.running else 3
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust
    from faust.contrib.asgi import serve_asgi

    from app.main import create_api
    from streams.kafka_check import wait_for_broker
    from streams.node import build_node
    from streams.topics import create_topics

    # Before anything else, so that no broker, or one refusing these security settings,
    # means one clear line instead of a traceback or an endless retry.
    asyncio.run(wait_for_broker(settings))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    node = build_node(settings)
    loop.run_until_complete(create_topics(settings))
    # The registry on the models topic, read whole before the node joins its group.
    loop.run_until_complete(node.deployments.start())
    serve_asgi(node.app, create_api(node), host=settings.http_host, port=settings.http_port)
    worker = faust.Worker(
        node.app,
        loglevel=args.loglevel,
        loop=loop,
        # Faust configures logging itself when it starts: in json mode, with our formatter.
        logging_config=worker_logging_config(settings.log_format, args.loglevel),
        # What Faust prints to the console (not through logging) is not JSON: none of it then.
        quiet=settings.log_format == "json",
    )
    # Faust's terminal spinner sets the root logger to DEBUG at levels >= WARNING, which makes
    # every library debug call build a log record on the hot path.
    worker.spinner = None
    _tune_gc()
    worker.execute_from_commandline()
    return 0


def _tune_gc() -> None:
    """What start-up allocated (modules, the app, the models) is kept out of every later
    collection, and the youngest generation is collected less often: learning allocates
    and frees many short-lived containers, which reference counting frees by itself."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from streams.kafka_check import wait_for_broker
    from streams.replay import replay

    # As the worker does: a missing or refusing broker is one line, not a traceback.
    asyncio.run(wait_for_broker(settings))
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

    # Ctrl-C stops the demo even when it was started with SIGINT ignored (in the background
    # of a non-interactive shell, as a CI script does): Python then leaves it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    broker = local_kafka(settings)
    started_broker = not broker.status().running
    _say(f"Apache Kafka: {broker.start().detail}")
    env = {**os.environ, "STREAMLEARN_MODELS": str(settings.models)}
    # A session of its own, so that Ctrl-C reaches the demo alone, which then stops the worker.
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, start_new_session=True
    )
    base = f"http://{settings.http_host}:{settings.http_port}"
    passes = 1 if args.exit_after_replay else None

    async def stream_all() -> None:
        streams = asyncio.gather(
            *(replay(settings, source, model, limit=limit, rate=args.rate, passes=passes,
                     progress=False)
              for source, model, limit in DEMO_STREAMS)
        )  # fmt: skip
        try:
            while not streams.done():
                await asyncio.wait({streams}, timeout=1.0)
                if not streams.done() and worker.poll() is not None:
                    raise StreamlearnError(f"the worker exited with code {worker.returncode}")
            await streams
        finally:
            # On Ctrl-C (or a dead worker) each replay closes its producer while the loop runs.
            streams.cancel()
            await asyncio.wait({streams})
            if not streams.cancelled():
                streams.exception()  # retrieved, or asyncio logs it as lost

    try:
        _wait_ready(base, worker)
        listed = "\n".join(
            f"  {model:<9} <- {source}" + (f", {limit:,} events a pass" if limit else "")
            for source, model, limit in DEMO_STREAMS
        )
        _say(
            f"\nstreamlearn is learning the bundled demo streams at {args.rate:g} events/s each,"
            f" {'once' if passes == 1 else 'pass after pass, each with new event ids'}:\n"
            f"{listed}\n"
            "The drifting stream changes concept in the middle of each pass: watch its drift"
            " marks.\nLook at:\n"
            f"  {base}/                    the live dashboard\n"
            f"  {base}/models              models, counters and state\n"
            f"  {base}/models/phishing/metrics  live metrics of the Phishing model\n"
            f"  {base}/docs                the API (try POST /models/phishing/predict)\n"
            f"  {base}/metrics             Prometheus\n"
            "Press Ctrl-C to stop.\n"
        )
        asyncio.run(stream_all())
        _say("the demo streams are all sent; stopping the node")
    except KeyboardInterrupt:
        _say("\nCtrl-C: stopping the demo streams and the node")
    finally:
        # A second Ctrl-C must not cut the clean-up short (it ends in a kill if the node hangs).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        if started_broker:
            broker.stop()
        signal.signal(signal.SIGINT, previous)
    _say("stopped")
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


_TARGETS = {"apply": "models file", "delete": "model name"}


def _models(args: argparse.Namespace, settings: Settings) -> int:
    """The registry through a node's admin routes: apply a file, list, delete."""
    from streams.learning.catalog import load_templates
    from streams.learning.spec import load_specs
    from streams.registry_client import RegistryClient, Versioned, plan

    client = RegistryClient(settings)
    if args.action == "list":
        for v in client.versions():
            spec = v["spec"]
            _say(f"{v['name']}\tv{v['version']}\t{spec['task']}\t{spec['pipeline']}"
                 f"\t{v['who']}\t{v['when']}")  # fmt: skip
        return 0
    if args.target is None:
        raise StreamlearnError(f"models {args.action} needs a {_TARGETS[args.action]}")
    if args.action == "delete":
        retired = client.retire(args.target)
        _say(f"- {retired['name']} (retired at v{retired['version']})")
        return 0
    path = Path(args.target)
    templates = load_templates(path)
    wanted: dict[str, Versioned] = {name: (spec, None) for name, spec in load_specs(path).items()}
    wanted.update((name, (spec, template)) for name, (spec, template) in templates.items())
    steps = plan(client.specs(templates), wanted)
    for step in steps:
        _say(step.line())
    if not steps:
        _say(f"the registry is {args.target} already: nothing to do")
    if args.dry_run:
        return 0
    for step in steps:
        answer = client.retire(step.name) if step.spec is None else client.deploy(step.spec)
        _say(f"{step.name}: {answer['change']} (v{answer['version']})")
    return 0


def _tune(args: argparse.Namespace, settings: Settings) -> int:
    """A model's tuning jobs through a node's routes: start (and follow), follow, stop, list."""
    from streams.tuning import client as tuning

    flags = {key: getattr(args, key) for key in tuning.OPTIONS}
    with tuning.TuningClient(settings) as client:
        if args.follow or args.stop or args.list:
            if args.space_file is not None or any(v is not None for v in flags.values()):
                raise StreamlearnError("tune: a space file and its flags start a job, alone")
            if args.list:
                return tuning.list_jobs(client, args.name)
            if args.stop:
                return tuning.stop_job(client, args.name, args.stop)
            return tuning.follow(client, args.name, args.follow)
        if args.space_file is None:
            raise StreamlearnError("tune needs a space file, --follow JOB, --stop JOB or --list")
        path = Path(args.space_file)
        return tuning.start_job(client, args.name, path, flags, follow_it=not args.no_follow)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamlearn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    kafka = commands.add_parser(
        "kafka",
        help="run a local single-node Apache Kafka (KRaft)",
        description="Run a local single-node Apache Kafka (KRaft) at the bootstrap address"
        " (controller on the next port), from jars Maven fetches. `start --secure` runs a"
        " separate broker (its own storage, under <state dir>/kafka-secure) that clients"
        " reach with SASL_SSL and SCRAM-SHA-512, whose authorizer lets the user streamlearn"
        " use only the topics and groups named after STREAMLEARN_TOPIC_PREFIX and"
        " STREAMLEARN_APP_ID, and prints the client settings as KEY=value lines (run it"
        " again to print them again). If the SASL_SSL settings are set for that user,"
        " STREAMLEARN_KAFKA_SASL_PASSWORD becomes its password when the storage is first"
        " formatted. `status` and `stop` find a running secure broker by themselves.",
    )
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.add_argument(
        "--secure", action="store_true",
        help="SASL_SSL + SCRAM-SHA-512 + ACLs; start prints the client settings",
    )  # fmt: skip
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

    models = commands.add_parser(
        "models",
        help="the model registry: apply a models file, list, delete",
        description="Change the model registry of a running group through a node's admin"
        " routes (STREAMLEARN_API_URL, STREAMLEARN_ADMIN_TOKEN). `apply FILE` makes the"
        " registry what the file declares: it prints the difference (+ deploy, ~ change,"
        " - retire), then applies it; applying the same file again changes nothing.",
    )
    models.add_argument("action", choices=["apply", "list", "delete"])
    models.add_argument("target", nargs="?", help="apply: the models file; delete: the model")
    models.add_argument("--dry-run", action="store_true", help="apply: print the difference only")
    models.set_defaults(handler=_models)

    tune = commands.add_parser(
        "tune",
        help="tune a model on its own history: start, follow, stop or list jobs",
        description="Tune a model's hyperparameters on its last labelled events, through a"
        " node's routes (STREAMLEARN_API_URL, STREAMLEARN_ADMIN_TOKEN). `tune NAME SPACE_FILE`"
        " starts a job from a .toml or .json space file (the flags override its keys), prints"
        " its id and follows it: exit 0 when it is done, 1 when it failed, 3 when it was"
        " stopped, 2 on an error, 130 when Ctrl-C ended the following (the job goes on).",
    )
    tune.add_argument("name", metavar="NAME", help="the model")
    tune.add_argument("space_file", nargs="?", metavar="SPACE_FILE",
                      help="the search space (.toml or .json)")  # fmt: skip
    tune.add_argument("--sampler", choices=["tpe", "random", "grid"], default=None)
    for flag in ("budget", "seed", "window"):
        tune.add_argument(f"--{flag}", type=int, default=None, metavar="N")
    tune.add_argument("--metric", default=None, metavar="M", help="a River metric class name")
    tune.add_argument("--folds", type=int, default=None, metavar="K", help="1: progressive"
                      " validation; 2 to 10: prequential k-fold")  # fmt: skip
    tune.add_argument("--no-follow", action="store_true", help="print the job id and return")
    job = tune.add_mutually_exclusive_group()
    job.add_argument("--follow", metavar="JOB", help="follow a job until it ends")
    job.add_argument("--stop", metavar="JOB", help="stop a job (its finished trials are kept)")
    job.add_argument("--list", action="store_true", help="the model's jobs, the newest first")
    tune.set_defaults(handler=_tune)

    demo = commands.add_parser(
        "demo",
        help="local Kafka + a node + the bundled demo streams, until Ctrl-C",
        description="Start the local Kafka (unless one answers), a node with the models of"
        " STREAMLEARN_MODELS (the bundled models.toml) and replay the demo streams into them,"
        " pass after pass with new event ids, until Ctrl-C stops the streams, the node and the"
        " broker it started.",
    )
    demo.add_argument("--rate", type=float, default=200.0, help="events per second per stream")
    demo.add_argument(
        "--exit-after-replay", action="store_true",
        help="send each stream once, then stop (default: loop until Ctrl-C)",
    )  # fmt: skip
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``streamlearn`` console command."""
    args = build_parser().parse_args(argv)
    # The one-line `streamlearn: ...` errors below stay plain text whatever
    # STREAMLEARN_LOG_FORMAT says: they are for a person at a terminal, and said instead of
    # starting (a log pipeline sees the process exit with code 2).
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.stderr.write(f"streamlearn: {_invalid_settings(exc)}\n")
        return 2
    configure_logging(settings.log_format)
    try:
        code: int = args.handler(args, settings)
    except StreamlearnError as exc:
        sys.stderr.write(f"streamlearn: {exc}\n")
        return 2
    return code


def _invalid_settings(exc: ValidationError) -> str:
    """One line for every setting pydantic refused, named as the environment variable (the
    settings hide their input in errors: a refused value may be the Kafka password)."""
    reasons = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        named = not field or message.startswith("STREAMLEARN_")
        reasons.append(message if named else f"STREAMLEARN_{field.upper()}: {message}")
    return "invalid settings: " + "; ".join(reasons)


if __name__ == "__main__":
    sys.exit(main())
