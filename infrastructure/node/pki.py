"""The node's certificates: one CA, the API server's and kubelet's serving certificates, the API server's
client certificate towards kubelet, and the service-account key pair. Written once; kept across `up`s."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Certificates last a year: a development node is rebuilt long before (`down --wipe` makes new ones).
LIFETIME = datetime.timedelta(days=365)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    **kind: object,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0].subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if kind.get("client") else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        names = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in kind.get("ips", ())]
        names += [x509.DNSName(name) for name in kind.get("dns", ())]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _issue(folder: Path, name: str, ca: tuple[x509.Certificate, rsa.RSAPrivateKey], **kind: object) -> None:
    key = _key()
    cert = _certificate(str(kind.pop("subject", name)), key, ca, **kind)
    _write(folder / f"{name}.key", _pem_key(key))
    _write(folder / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))


def ensure_pki(folder: Path, node_ip: str, api_service_ip: str, node_name: str) -> Path:
    """Write the certificates and keys into `folder` unless a complete set is already there; return it."""
    wanted = ["ca.crt", "apiserver.crt", "apiserver-kubelet-client.crt", "kubelet.crt", "sa.key", "sa.pub"]
    if all((folder / name).exists() for name in wanted):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_cert = _certificate("lakehouse-node-ca", ca_key, None)
    _write(folder / "ca.key", _pem_key(ca_key))
    _write(folder / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))
    ca = (ca_cert, ca_key)
    service_names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    service_names.append("kubernetes.default.svc.cluster.local")
    _issue(
        folder, "apiserver", ca, ips=[node_ip, api_service_ip, "127.0.0.1"], dns=[*service_names, "localhost"]
    )
    _issue(folder, "apiserver-kubelet-client", ca, client=True, subject="kube-apiserver-kubelet-client")
    _issue(folder, "kubelet", ca, ips=[node_ip, "127.0.0.1"], dns=[node_name, "localhost"])
    sa_key = _key()
    _write(folder / "sa.key", _pem_key(sa_key))
    _write(
        folder / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return folder
