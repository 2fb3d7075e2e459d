"""deploy/kubernetes: kustomize renders it, Kubernetes' own schemas accept every object, and
what it sets matches the Settings class, the HTTP routes and the image."""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

# kubernetes-validate ships no type information (no py.typed).
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from packaging.version import Version

from app.routes import health, telemetry
from streams.learning.spec import load_specs
from streams.settings import Settings
from tests.unit.deploy.manifests import (
    BASE,
    EXAMPLE,
    KUBERNETES,
    ROOT,
    Manifest,
    container,
    find,
    pod_spec,
    render,
    statefulset,
)

#: The oldest Kubernetes the manifests promise to work on, and the newest schemas at hand.
OLDEST = "1.30"
NEWEST = str(kubernetes_validate.latest_version())
#: Custom resources, which kubernetes-validate has no schema for: checked field by field.
CUSTOM_KINDS = {"ServiceMonitor"}
#: The example overlay's line that turns the ServiceMonitor on, commented out.
SERVICEMONITOR_OFF = "# components:\n#   - ../../components/servicemonitor\n"
#: The pod whose environment is resolved, as the kubelet would for the first replica.
POD = "streamlearn-0"


def with_servicemonitor(folder: Path) -> Path:
    """A copy of deploy/kubernetes whose example overlay includes the ServiceMonitor, as its
    comment tells the reader to do."""
    copied = folder / "kubernetes"
    shutil.copytree(KUBERNETES, copied)
    kustomization = copied / "overlays" / "example" / "kustomization.yaml"
    text = kustomization.read_text()
    assert SERVICEMONITOR_OFF in text
    on = SERVICEMONITOR_OFF.replace("# ", "").replace("#", "")
    kustomization.write_text(text.replace(SERVICEMONITOR_OFF, on))
    return copied / "overlays" / "example"


@pytest.fixture(scope="module", params=["base", "example", "example+servicemonitor"])
def objects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Manifest]:
    if request.param == "base":
        return render(BASE)
    if request.param == "example":
        return render(EXAMPLE)
    return render(with_servicemonitor(tmp_path_factory.mktemp("deploy")))


def paths(router: APIRouter) -> set[str]:
    return {route.path for route in router.routes if isinstance(route, APIRoute)}


def decoded(secret: Manifest) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}


def secret_value(objects: list[Manifest], name: str, key: str) -> str | None:
    """A key of a Secret the render holds; of any other Secret (created outside kustomize:
    ``streamlearn-secrets`` for the base, Strimzi's in the example), a stand-in."""
    rendered = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name]
    if not rendered:
        return f"<secret {name}/{key}>"
    return decoded(rendered[0]).get(key)


def namespace(objects: list[Manifest]) -> str:
    return str(statefulset(objects)["metadata"].get("namespace", "default"))


def environment(objects: list[Manifest]) -> dict[str, str]:
    """The environment of pod ``POD``, resolved as the kubelet does: ``envFrom`` first, then
    ``env`` in order, ``$(NAME)`` replaced only by a variable defined before it."""
    node = container(objects)
    env: dict[str, str] = {}
    for source in node.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(decoded(find(objects, "Secret", source["secretRef"]["name"])))
    fields = {"metadata.name": POD, "metadata.namespace": namespace(objects)}
    for var in node.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
        elif "fieldRef" in var["valueFrom"]:
            env[name] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            value = secret_value(objects, ref["name"], ref["key"])
            assert value is not None or ref.get("optional"), f"{name}: no key {ref}"
            if value is not None:
                env[name] = value
    return env


def mounted_file(objects: list[Manifest], path: str) -> str:
    """What the container reads at ``path``: a key of a ConfigMap or Secret volume."""
    file = PurePosixPath(path)
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    for mount in container(objects)["volumeMounts"]:
        folder = PurePosixPath(mount["mountPath"])
        if folder not in file.parents or mount["name"] not in volumes:
            continue
        volume, relative = volumes[mount["name"]], str(file.relative_to(folder))
        source = volume.get("configMap") or volume.get("secret")
        assert source is not None, f"{path} is on volume {mount['name']}, not a file source"
        key = relative
        if "items" in source:  # then only the items listed are files of the volume
            keys = {item["path"]: item["key"] for item in source["items"]}
            assert relative in keys, f"{path}: volume {mount['name']} has no file {relative}"
            key = keys[relative]
        if "configMap" in volume:
            data: dict[str, str] = find(objects, "ConfigMap", source["name"])["data"]
            assert key in data, f"{path}: ConfigMap {source['name']} has no key {key}"
            return data[key]
        value = secret_value(objects, source["secretName"], key)
        assert value is not None, f"{path}: Secret {source['secretName']} has no key {key}"
        return value
    raise AssertionError(f"{path} is in no ConfigMap or Secret volume of the container")


def resolve_port(objects: list[Manifest], port: int | str) -> int:
    """A container port given by number or by name."""
    if isinstance(port, int):
        return port
    (number,) = (p["containerPort"] for p in container(objects)["ports"] if p["name"] == port)
    return int(number)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def pod_labels(objects: list[Manifest]) -> dict[str, str]:
    labels: dict[str, str] = statefulset(objects)["spec"]["template"]["metadata"]["labels"]
    return labels


NODES = ["ConfigMap", "ConfigMap", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]


@pytest.mark.parametrize(
    ("variant", "kinds"),
    [
        ("base", NODES),
        # The overlay, as committed, applies to a cluster without the operator's CRDs.
        ("example", [*NODES, "Secret"]),
        ("example+servicemonitor", [*NODES, "Secret", "ServiceMonitor"]),
    ],
)
def test_kustomize_renders_the_nodes_and_nothing_of_the_broker(
    variant: str, kinds: list[str], tmp_path: Path
) -> None:
    directory = {"base": BASE, "example": EXAMPLE}.get(variant) or with_servicemonitor(tmp_path)
    assert sorted(obj["kind"] for obj in render(directory)) == sorted(kinds)


def test_the_newest_schemas_are_at_least_the_oldest_promised() -> None:
    assert Version(NEWEST) >= Version(OLDEST)


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
def test_every_object_validates_against_kubernetes_schemas(
    objects: list[Manifest], version: str
) -> None:
    for obj in objects:
        if obj["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_validation_is_strict_enough_to_catch_a_misspelt_field() -> None:
    wrong = copy.deepcopy(statefulset(render(BASE)))
    wrong["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, NEWEST, strict=True)


def test_every_environment_name_is_a_setting(objects: list[Manifest]) -> None:
    node = container(objects)
    names = {var["name"] for var in node["env"]}
    for source in node["envFrom"]:
        if "configMapRef" in source:
            names |= set(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            names |= set(find(objects, "Secret", source["secretRef"]["name"])["data"])
    settings = {f"STREAMLEARN_{field.upper()}" for field in Settings.model_fields}
    assert names - settings == {"POD_NAME", "POD_NAMESPACE"}
    assert {"STREAMLEARN_ADMIN_TOKEN", "STREAMLEARN_SNAPSHOT_KEY"} <= names


def test_secrets_come_from_secrets(objects: list[Manifest]) -> None:
    by_name = {var["name"]: var for var in container(objects)["env"]}
    for name in ("ADMIN_TOKEN", "SNAPSHOT_KEY", "KAFKA_SASL_PASSWORD"):
        assert "secretKeyRef" in by_name[f"STREAMLEARN_{name}"]["valueFrom"], name
    for config in (o for o in objects if o["kind"] == "ConfigMap"):
        assert not {"STREAMLEARN_ADMIN_TOKEN", "STREAMLEARN_SNAPSHOT_KEY"} & set(config["data"])
        assert "STREAMLEARN_KAFKA_SASL_PASSWORD" not in config["data"]


def test_the_environment_makes_valid_settings(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = environment(objects)
    # The TLS files must exist to be valid settings: mounted from a volume, here a stand-in.
    for field in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        name = f"STREAMLEARN_{field.upper()}"
        if name in env:
            stand_in = tmp_path / field
            stand_in.write_text(mounted_file(objects, env[name]))
            env[name] = str(stand_in)
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.http_host == "0.0.0.0"
    headless = statefulset(objects)["spec"]["serviceName"]
    assert settings.node_url == (
        f"http://{POD}.{headless}.{namespace(objects)}.svc.cluster.local:{settings.http_port}"
    )
    assert settings.admin_token is not None and settings.snapshot_key is not None
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None


def test_the_models_file_is_mounted_read_only_and_valid(
    objects: list[Manifest], tmp_path: Path
) -> None:
    path = environment(objects)["STREAMLEARN_MODELS"]
    models = tmp_path / "models.toml"
    models.write_text(mounted_file(objects, path))
    assert load_specs(models)
    (mount,) = (
        m
        for m in container(objects)["volumeMounts"]
        if PurePosixPath(m["mountPath"]) in PurePosixPath(path).parents
    )
    assert mount["readOnly"] is True


def test_ports_and_probes_match_the_settings_and_the_routes(objects: list[Manifest]) -> None:
    node, env = container(objects), environment(objects)
    port = int(env["STREAMLEARN_HTTP_PORT"])
    assert [p["containerPort"] for p in node["ports"]] == [port]
    probes = {
        kind: (node[kind]["httpGet"]["path"], resolve_port(objects, node[kind]["httpGet"]["port"]))
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", port),
        "readinessProbe": ("/readyz", port),
        "livenessProbe": ("/healthz", port),
    }
    assert {"/healthz", "/readyz"} <= paths(health.router)
    # The kubelet leaves a node the time to say itself that no broker answers.
    startup = node["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    connect = env.get("STREAMLEARN_KAFKA_CONNECT_TIMEOUT_SECONDS")
    assert budget > 2 * float(
        connect or Settings.model_fields["kafka_connect_timeout_seconds"].default
    )
    annotations = statefulset(objects)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] in paths(telemetry.router)
    for service in (o for o in objects if o["kind"] == "Service"):
        assert selects(service["spec"]["selector"], pod_labels(objects))
        assert [resolve_port(objects, p["targetPort"]) for p in service["spec"]["ports"]] == [port]


def test_the_advertised_url_names_the_pod_through_the_headless_service(
    objects: list[Manifest],
) -> None:
    env = environment(objects)
    url = urlsplit(env["STREAMLEARN_ADVERTISED_URL"])
    pod, service, in_namespace, *_ = str(url.hostname).split(".")
    assert pod == POD == f"{statefulset(objects)['metadata']['name']}-0"
    assert service == statefulset(objects)["spec"]["serviceName"]
    assert in_namespace == namespace(objects)
    assert url.port == int(env["STREAMLEARN_HTTP_PORT"])
    headless = find(objects, "Service", service)["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True  # starting peers reach each other
    assert selects(headless["selector"], pod_labels(objects))


def test_a_variable_is_declared_before_the_variables_that_use_it(
    objects: list[Manifest],
) -> None:
    declared: set[str] = set()
    for var in container(objects)["env"]:
        for used in re.findall(r"\$\((\w+)\)", var.get("value", "")):
            assert used in declared, f"{var['name']} uses {used} before it is declared"
        declared.add(var["name"])


def test_the_state_directory_is_the_claimed_volume(objects: list[Manifest]) -> None:
    spec = statefulset(objects)["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    (mount,) = (
        m for m in container(objects)["volumeMounts"] if m["name"] == claim["metadata"]["name"]
    )
    assert environment(objects)["STREAMLEARN_STATE_DIR"] == mount["mountPath"]
    assert not mount.get("readOnly", False)


def test_the_nodes_run_unprivileged_on_a_read_only_root(objects: list[Manifest]) -> None:
    pod, node = pod_spec(objects), container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # Services would add STREAMLEARN_SERVICE_HOST, STREAMLEARN_PORT...: the settings' prefix.
    assert pod["enableServiceLinks"] is False
    context = node["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    # Written to: the state volume and an emptyDir for /tmp; everything else read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    claims = {c["metadata"]["name"] for c in statefulset(objects)["spec"]["volumeClaimTemplates"]}
    scratch = "/tmp"  # noqa: S108 - the path the manifests mount, not a file opened here
    writable = {
        m["mountPath"]: m["name"] for m in node["volumeMounts"] if not m.get("readOnly", False)
    }
    assert set(writable) == {environment(objects)["STREAMLEARN_STATE_DIR"], scratch}
    assert "emptyDir" in volumes[writable.pop(scratch)]
    assert set(writable.values()) <= claims


def test_resources_have_requests_and_limits(objects: list[Manifest]) -> None:
    resources = container(objects)["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_replicas_stay_within_the_partitions_and_leave_one_at_a_time(
    objects: list[Manifest],
) -> None:
    spec = statefulset(objects)["spec"]
    partitions = environment(objects).get("STREAMLEARN_TOPIC_PARTITIONS")
    assert (
        1
        <= spec["replicas"]
        <= int(partitions or Settings.model_fields["topic_partitions"].default)
    )
    # Time for the hand-over: snapshots published and acknowledged on SIGTERM.
    assert pod_spec(objects)["terminationGracePeriodSeconds"] >= 60
    budget = find(objects, "PodDisruptionBudget", "streamlearn")["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"] == spec["selector"]
    assert selects(budget["selector"]["matchLabels"], pod_labels(objects))


def test_the_servicemonitor_scrapes_each_node_once(tmp_path: Path) -> None:
    objects = render(with_servicemonitor(tmp_path))
    monitor = find(objects, "ServiceMonitor", "streamlearn")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == namespace(objects)
    spec = monitor["spec"]
    assert set(spec) == {"selector", "endpoints", "jobLabel"}
    (selected,) = (
        service
        for service in objects
        if service["kind"] == "Service"
        and selects(spec["selector"]["matchLabels"], service["metadata"]["labels"])
    )
    # The headless Service: one endpoint per pod, the pods that are not ready included.
    assert selected["spec"]["clusterIP"] == "None"
    (endpoint,) = spec["endpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
    assert endpoint["port"] in {p["name"] for p in selected["spec"]["ports"]}
    assert endpoint["path"] in paths(telemetry.router)
    assert re.fullmatch(r"\d+s", endpoint["interval"])
    # Prometheus names the job after this label of the Service: what the alert rules expect.
    job = selected["metadata"]["labels"][spec["jobLabel"]]
    assert f'up{{job="{job}"}}' in (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()


def test_the_bases_models_are_the_repositorys_demo_models() -> None:
    """kustomize reads no file outside the base, so the base keeps a copy: the same models."""
    copied = (BASE / "models.toml").read_text()
    assert copied.endswith((ROOT / "models.toml").read_text())
