"""Start etcd and kube-apiserver on loopback in a folder of their own; stop them and remove the folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.core.ports import free_ports
from infrastructure.apiserver.build import KUBERNETES_VERSION, BuildError, build_apiserver
from infrastructure.local.procs import ProcessRecord, log_tail, spawn, start_ticks, stop, wait_until
from infrastructure.local.service import Log, ServiceError, install_debian_package

SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = float(os.environ.get("LAKEHOUSE_APISERVER_START_TIMEOUT", "120"))


class ApiServerUnavailable(RuntimeError):
    """A prerequisite (etcd, Go, the module proxy, kubectl) is missing here; the message names it."""


class ApiServerStartFailed(RuntimeError):
    """etcd or kube-apiserver did not become healthy; the message carries its log tail."""


@dataclass
class ApiServer:
    """A running private API server: its URL, admin token and a kubeconfig for kubectl and clients."""

    home: Path
    url: str
    token: str
    ca_file: Path
    kubeconfig: Path
    started_in: float = 0.0
    processes: list[ProcessRecord] = field(default_factory=list)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """Run `kubectl --kubeconfig <ours> ARGS`; raise with its output when `check` and it fails."""
        command = ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]
        done = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"`kubectl {' '.join(args)}` failed ({done.returncode}):\n{done.stderr}")
        return done

    def apply(self, manifest: str, *flags: str, check: bool = True) -> subprocess.CompletedProcess:
        """Server-side apply of a YAML stream (`flags` e.g. "--dry-run=server"). On this scratch server the
        last applier takes over fields another manager set (`--force-conflicts`)."""
        args = ("apply", "--server-side", "--force-conflicts", "--field-manager=lakehouse", *flags, "-f", "-")
        return self.kubectl(*args, input=manifest, check=check)

    def install_crds(self, paths: Sequence[Path], timeout: float = 60.0) -> None:
        """Apply CustomResourceDefinitions server-side (KServe's is over the client-side size limit) and wait
        until each is Established (polled: `kubectl wait` can fail on a CRD created a moment ago)."""
        for path in paths:
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            self.apply(path.read_text())
            deadline = time.monotonic() + timeout
            jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
            while self.kubectl("get", "crd", name, "-o", jsonpath, check=False).stdout.strip() != "True":
                if time.monotonic() > deadline:
                    raise ApiServerStartFailed(f"CRD {name} not Established after {timeout:.0f} s")
                time.sleep(0.2)

    def env(self) -> dict[str, str]:
        """Variables that point kubectl and the `kubernetes` package at this server."""
        return {"KUBECONFIG": str(self.kubeconfig)}


def require_kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        raise ApiServerUnavailable("kubectl not found: install it (https://kubernetes.io/docs/tasks/tools/)")
    return found


def _write_certificates(home: Path) -> tuple[Path, Path, Path, Path]:
    """A self-signed serving certificate for 127.0.0.1/localhost and the service-account key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    import datetime
    import ipaddress

    serving_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(serving_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = {
        "serving.crt": cert.public_bytes(serialization.Encoding.PEM),
        "serving.key": pem_key(serving_key),
        "sa.key": pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for filename, data in files.items():
        (home / filename).write_bytes(data)
        (home / filename).chmod(0o600)
    return home / "serving.crt", home / "serving.key", home / "sa.key", home / "sa.pub"


def _kubeconfig(url: str, token: str, ca_file: Path) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": url, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }


def _record(pid: int, port: int, command: Sequence[str]) -> ProcessRecord:
    return ProcessRecord(pid=pid, start_ticks=start_ticks(pid) or 0, port=port, command=list(command))


def _healthy(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=2, context=context) as response:
        return response.status == 200


def _start(name: str, command: list[str], port: int, url: str, home: Path, **health: object) -> ProcessRecord:
    log_path = home / f"{name}.log"
    record = _record(spawn(command, log_path, cwd=home), port, command)
    alive = lambda: start_ticks(record.pid) == record.start_ticks  # noqa: E731
    if not wait_until(lambda: _healthy(url, **health), START_TIMEOUT, alive, interval=0.2):
        stop(record, signal.SIGTERM, grace=10)
        state = "exited during start-up" if not alive() else f"was not healthy within {START_TIMEOUT:.0f} s"
        raise ApiServerStartFailed(f"{name} (port {port}) {state}:\n{log_tail(log_path)}")
    return record


def start(home: Path, etcd_ports: tuple[int, int], api_port: int, log: Log = print) -> ApiServer:
    """Start etcd and kube-apiserver with their state in `home`; return once `/readyz` answers.

    Raises:
        ApiServerUnavailable: etcd cannot be installed, or the binary cannot be built here.
        ApiServerStartFailed: a server did not become healthy (the other one is stopped again).
    """
    require_kubectl()
    try:
        etcd = install_debian_package("etcd", "etcd-server", log)
        apiserver = build_apiserver(KUBERNETES_VERSION, log)
    except (ServiceError, BuildError) as exc:
        raise ApiServerUnavailable(str(exc)) from exc
    started = time.monotonic()
    client_port, peer_port = etcd_ports
    etcd_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    etcd_command = [etcd, "--name", "local", "--data-dir", str(home / "etcd")]
    etcd_command += ["--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url]
    etcd_command += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
    etcd_command += ["--initial-cluster", f"local={peer_url}", "--log-level", "warn"]
    etcd_record = _start("etcd", etcd_command, client_port, f"{etcd_url}/health", home)
    cert, key, sa_key, sa_pub = _write_certificates(home)
    token = secrets.token_urlsafe(24)
    tokens = home / "tokens.csv"
    tokens.write_text(f"{token},admin,admin-uid,system:masters\n")
    tokens.chmod(0o600)
    url = f"https://127.0.0.1:{api_port}"
    api_command = [
        str(apiserver),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={api_port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={sa_pub}",
        f"--service-account-signing-key-file={sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--token-auth-file={tokens}",
        "--authorization-mode=RBAC",
        "--endpoint-reconciler-type=none",
        # as on real clusters (CNI and storage drivers need it): Pod Security admission, not this flag,
        # is what keeps privileged pods out of namespace lakehouse
        "--allow-privileged=true",
    ]
    context = ssl.create_default_context(cafile=str(cert))
    try:
        api_record = _start(
            "kube-apiserver", api_command, api_port, f"{url}/readyz", home, context=context, token=token
        )
    except ApiServerStartFailed:
        stop(etcd_record, signal.SIGTERM, grace=10)
        raise
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_kubeconfig(url, token, cert)))
    kubeconfig.chmod(0o600)
    return ApiServer(
        home=home,
        url=url,
        token=token,
        ca_file=cert,
        kubeconfig=kubeconfig,
        started_in=time.monotonic() - started,
        processes=[api_record, etcd_record],
    )


def shutdown(server: ApiServer) -> None:
    """Stop kube-apiserver, then etcd (SIGTERM, SIGKILL after a grace period)."""
    for record in server.processes:
        stop(record, signal.SIGTERM, grace=20)


@contextlib.contextmanager
def private_apiserver(ports: Sequence[int] | None = None, log: Log = print) -> Iterator[ApiServer]:
    """`with private_apiserver() as api:` etcd + kube-apiserver in a new folder under /tmp, stopped after.

    Args:
        ports: etcd client, etcd peer and API server ports (default: three free ones).
        log: where progress lines (an etcd install, a first build) go.
    """
    etcd_client, etcd_peer, api_port = ports or free_ports(3)
    home = Path(tempfile.mkdtemp(prefix="lakehouse-apiserver-"))
    server = None
    try:
        server = start(home, (etcd_client, etcd_peer), api_port, log)
        yield server
    finally:
        if server is not None:
            shutdown(server)
        shutil.rmtree(home, ignore_errors=True)
