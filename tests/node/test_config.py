"""The node's configuration, generated files and prerequisite checks, without starting anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from infrastructure.apiserver.build import KUBERNETES_COMMANDS, module_files
from infrastructure.node.binaries import NodeBinaries
from infrastructure.node.components import cni_config, containerd_config, kube_proxy_config, kubelet_config
from infrastructure.node.config import DEFAULT_PORTS, NodeConfigError, load_config, port_variable
from infrastructure.node.prerequisites import problems


def _binaries(tmp_path: Path) -> NodeBinaries:
    fake = tmp_path / "bin" / "x"
    return NodeBinaries(
        {}, fake, fake, fake, tmp_path / "bin" / "runc", fake, fake, tmp_path / "bin", tmp_path / "cni"
    )


def test_defaults_and_derived_addresses(tmp_path: Path) -> None:
    config = load_config(tmp_path / "a", environ={})
    assert config.ports == DEFAULT_PORTS
    assert (config.node_ip, config.dns_ip, config.api_service_ip) == ("10.244.0.1", "10.96.0.10", "10.96.0.1")
    assert config.api_url == "https://10.244.0.1:6443"


def test_two_state_folders_get_different_host_names(tmp_path: Path) -> None:
    first, second = load_config(tmp_path / "a", environ={}), load_config(tmp_path / "b", environ={})
    assert first.bridge != second.bridge and first.filter_chain != second.filter_chain
    assert len(first.bridge) <= 15, "the kernel refuses longer interface names"


def test_ports_from_variables_and_options(tmp_path: Path) -> None:
    environ = {port_variable("apiserver"): "16443"}
    config = load_config(tmp_path, {"etcd": 12379}, environ)
    assert config.ports["apiserver"] == 16443 and config.ports["etcd"] == 12379


@pytest.mark.parametrize(
    ("ports", "environ", "message"),
    [
        ({}, {"LAKEHOUSE_CLUSTER_APISERVER_PORT": "http"}, "LAKEHOUSE_CLUSTER_APISERVER_PORT"),
        ({"etcd": 6443}, {}, "same"),
        ({"nope": 1}, {}, "unknown port"),
        ({}, {"LAKEHOUSE_CLUSTER_POD_CIDR": "10.96.0.0/12"}, "overlap"),
        ({}, {"LAKEHOUSE_CLUSTER_SERVICE_CIDR": "8.8.0.0/16"}, "private"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, ports: dict, environ: dict, message: str) -> None:
    with pytest.raises(NodeConfigError, match=message):
        load_config(tmp_path, ports, environ)


def test_saved_settings_are_kept_by_later_commands(tmp_path: Path) -> None:
    load_config(tmp_path, {"apiserver": 16443}, {"LAKEHOUSE_CLUSTER_POD_CIDR": "10.250.0.0/16"}).save()
    again = load_config(tmp_path, environ={})
    assert again.ports["apiserver"] == 16443 and again.pod_cidr == "10.250.0.0/16"


def test_a_taken_port_is_named_with_its_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        found = problems(load_config(tmp_path, {"kubelet": port}, {}))
    assert any(f"port {port} (kubelet)" in line and port_variable("kubelet") in line for line in found)


def test_generated_configuration(tmp_path: Path) -> None:
    config = load_config(tmp_path / "node", environ={})
    containerd = containerd_config(config, _binaries(tmp_path)).read_text()
    assert "restrict_oom_score_adj = true" in containerd and 'sandbox = "localhost/pause:3.10"' in containerd
    assert f'root = "{config.home}' in containerd and "SystemdCgroup = false" in containerd
    kubelet = yaml.safe_load(kubelet_config(config).read_text())
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["failSwapOn"] is False and kubelet["clusterDNS"] == [config.dns_ip]
    assert kubelet["address"] == config.node_ip and kubelet["healthzBindAddress"] == "127.0.0.1"
    # disk floors in bytes, not a share of what may be a large disk mostly filled by builds
    eviction = kubelet["evictionHard"]
    assert eviction["nodefs.available"] == eviction["imagefs.available"] == "2Gi"
    proxy = yaml.safe_load(kube_proxy_config(config, tmp_path / "kubeconfig").read_text())
    assert proxy["mode"] == "iptables" and proxy["conntrack"] == {"maxPerCore": 0, "min": 0}
    assert proxy["nodePortAddresses"] == [f"{config.node_ip}/32"]
    network = yaml.safe_load(cni_config(config).read_text())
    assert network["plugins"][0]["bridge"] == config.bridge and network["plugins"][0]["ipMasq"] is False


def test_one_module_builds_all_six_kubernetes_commands() -> None:
    gomod = "replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n"
    files = module_files(gomod, "1.35.4")
    assert all(f'"k8s.io/kubernetes/cmd/{command}"' in files["tools.go"] for command in KUBERNETES_COMMANDS)
    assert "k8s.io/api => k8s.io/api v0.35.4" in files["go.mod"]


def test_the_volume_pool_is_topped_up_with_new_names_only(tmp_path: Path) -> None:
    from infrastructure.node.storage import POOL_SIZE, STORAGE_CLASS, missing_volumes, storage_class, volume

    config = load_config(tmp_path / "node", environ={})
    assert missing_volumes(config, []) == [f"{STORAGE_CLASS}-{n}" for n in range(POOL_SIZE)]
    pool = [volume(config, f"{STORAGE_CLASS}-{n}") for n in range(POOL_SIZE)]
    phases = ["Bound", "Released", "Available", "Available", "Available", "Available"]
    for item, phase in zip(pool, phases, strict=True):
        item["status"] = {"phase": phase}
    (tmp_path / "node" / "volumes" / f"{STORAGE_CLASS}-6").mkdir(parents=True)  # a folder of an old volume
    assert missing_volumes(config, pool) == [f"{STORAGE_CLASS}-7", f"{STORAGE_CLASS}-8"]
    default = {"storageclass.kubernetes.io/is-default-class": "true"}
    assert storage_class()["metadata"]["annotations"] == default
    assert pool[0]["spec"]["hostPath"]["path"] == str(tmp_path / "node" / "volumes" / f"{STORAGE_CLASS}-0")
