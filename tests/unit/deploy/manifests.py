"""Render deploy/kubernetes with kubectl's kustomize and look objects up in the result."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
EXAMPLE = KUBERNETES / "overlays" / "example"

Manifest = dict[str, Any]


def render(directory: Path) -> list[Manifest]:
    """The objects ``kubectl kustomize directory`` renders (offline: no cluster is asked)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # Not a skip: the manifests would go untested. kubectl bundles kustomize.
        pytest.fail("kubectl is needed to render deploy/kubernetes (apt-get install kubectl)")
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def find(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of ``kind`` (named ``name``, generated names matched by prefix)."""
    found = [
        obj
        for obj in objects
        if obj["kind"] == kind
        and (name is None or obj["metadata"]["name"] == name or _generated(obj, name))
    ]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def _generated(obj: Manifest, name: str) -> bool:
    """kustomize's generators append a hash: ``streamlearn-settings-6455g85ff5``."""
    prefix, _, suffix = str(obj["metadata"]["name"]).rpartition("-")
    return obj["kind"] in ("ConfigMap", "Secret") and prefix == name and len(suffix) == 10


def statefulset(objects: list[Manifest]) -> Manifest:
    return find(objects, "StatefulSet", "streamlearn")


def pod_spec(objects: list[Manifest]) -> Manifest:
    spec: Manifest = statefulset(objects)["spec"]["template"]["spec"]
    return spec


def container(objects: list[Manifest]) -> Manifest:
    (node,) = (c for c in pod_spec(objects)["containers"] if c["name"] == "streamlearn")
    found: Manifest = node
    return found
