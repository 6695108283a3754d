"""Storage for the node's volume claims: a default StorageClass without a provisioner and a pool of volumes
in folders of the node's state, kept topped up by `up`.

Claims of the platform's StatefulSets (MinIO, PostgreSQL, Redis) name no class, so they get the default one
and bind to one of the pool's volumes once their pod is scheduled. A bound volume keeps its data across
`down` and `up` (its folder is in the state folder); `down --wipe` removes it with the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import yaml

from infrastructure.node.config import NodeConfig

Log = Callable[[str], None]
STORAGE_CLASS = "node-local"
#: Volumes waiting for a claim after each `up` (the platform's overlays claim three).
POOL_SIZE = 6
#: What a volume offers: any claim up to this size binds (the folder shares the host's disk).
CAPACITY = "100Gi"
#: The platform's pods run as this user; the folders are its own (a host path gets no `fsGroup`).
POD_USER = 10001


def volume_folder(config: NodeConfig, name: str) -> Path:
    return config.home / "volumes" / name


def storage_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }


def volume(config: NodeConfig, name: str) -> dict:
    """A volume of the pool: a folder of the state folder, kept when its claim goes (`Retain`)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "lakehouse-node"}},
        "spec": {
            "capacity": {"storage": CAPACITY},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(volume_folder(config, name)), "type": "Directory"},
        },
    }


def missing_volumes(config: NodeConfig, volumes: list[dict]) -> list[str]:
    """Names of new volumes that bring the pool's `Available` ones up to POOL_SIZE (never a used name)."""
    pool = [v for v in volumes if v["spec"].get("storageClassName") == STORAGE_CLASS]
    available = sum(1 for v in pool if v.get("status", {}).get("phase") == "Available")
    taken = {v["metadata"]["name"] for v in pool}
    names, number = [], 0
    while len(names) < POOL_SIZE - available:
        name = f"{STORAGE_CLASS}-{number}"
        if name not in taken and not volume_folder(config, name).exists():
            names.append(name)
        number += 1
    return names


def ensure(config: NodeConfig, kubectl: Callable[..., object], log: Log) -> list[str]:
    """Apply the StorageClass and top the pool up; returns the names of the volumes made now."""
    listed = kubectl(config, "get", "persistentvolumes", "-o", "json")
    names = missing_volumes(config, json.loads(listed.stdout)["items"])
    for name in names:
        folder = volume_folder(config, name)
        folder.mkdir(parents=True)
        os.chown(folder, POD_USER, POD_USER)
        folder.chmod(0o770)
    documents = [storage_class(), *(volume(config, name) for name in names)]
    kubectl(config, "apply", "-f", "-", input=yaml.safe_dump_all(documents))
    if names:
        folder = config.home / "volumes"
        log(f"  storage: class {STORAGE_CLASS} (default), {len(names)} new volumes in {folder}")
    return names
