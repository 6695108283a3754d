"""Give an admission webhook server a serving certificate from inside the cluster (Job `kserve-webhook-cert`
of the `node` overlay, where no cert-manager runs): a private CA and a certificate for the webhook's Service
names go into the Secret its server mounts, and the CA into the `caBundle` of each webhook configuration
that calls it. Idempotent: a certificate that still has a month to run and a CA already in every
configuration are kept.

A real cluster has cert-manager do this (`upstream/install.sh` installs it before KServe)."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infrastructure.cluster.jobs import run_step

#: A certificate with less than this left is replaced.
RENEW_BEFORE = dt.timedelta(days=30)
LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pair:
    """PEM-encoded certificate, its key, and the CA certificate that signed it."""

    cert: bytes
    key: bytes
    ca: bytes


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a Service: `svc`, `svc.ns`, `svc.ns.svc` and the cluster FQDN."""
    qualified = f"{service}.{namespace}"
    return [service, qualified, f"{qualified}.svc", f"{qualified}.svc.cluster.local"]


def issue(service: str, namespace: str, now: dt.datetime | None = None) -> Pair:
    """A new CA (its key thrown away once it has signed) and a serving certificate for the Service's names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(minutes=5), now + LIFETIME
    ca_usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{service}.{namespace} webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names = dns_names(service, namespace)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return Pair(cert.public_bytes(pem), key_pem, ca.public_bytes(pem))


def still_good(pair: Pair, service: str, namespace: str, now: dt.datetime | None = None) -> bool:
    """Whether a stored certificate names the Service, was signed by the stored CA and has a month left."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    now = now or dt.datetime.now(dt.UTC)
    try:
        cert, ca = x509.load_pem_x509_certificate(pair.cert), x509.load_pem_x509_certificate(pair.ca)
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return False
    return (
        set(dns_names(service, namespace)) <= set(names.get_values_for_type(x509.DNSName))
        and cert.not_valid_after_utc - now > RENEW_BEFORE
        and bool(pair.key)
    )


def stored_pair(api: Any, namespace: str, secret: str) -> Pair:
    """The Secret's `tls.crt`, `tls.key` and `ca.crt` (empty where missing)."""
    from kubernetes import client

    data = client.CoreV1Api(api).read_namespaced_secret(secret, namespace).data or {}
    return Pair(*(base64.b64decode(data.get(k, "")) for k in ("tls.crt", "tls.key", "ca.crt")))


def store_pair(api: Any, namespace: str, secret: str, pair: Pair) -> None:
    from kubernetes import client

    data = {"tls.crt": pair.cert, "tls.key": pair.key, "ca.crt": pair.ca}
    body = {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    client.CoreV1Api(api).patch_namespaced_secret(secret, namespace, body)


def set_ca_bundle(api: Any, kind: str, name: str, ca: bytes) -> bool:
    """Put `ca` into every webhook of a `mutating` or `validating` configuration; whether it changed."""
    from kubernetes import client

    admission = client.AdmissionregistrationV1Api(api)
    read = getattr(admission, f"read_{kind}_webhook_configuration")
    patch = getattr(admission, f"patch_{kind}_webhook_configuration")
    bundle = base64.b64encode(ca).decode()
    webhooks = read(name).webhooks or []
    if all(w.client_config.ca_bundle == bundle for w in webhooks):
        return False
    # a JSON patch by index: a strategic merge would need each webhook's name as its key anyway
    path = "/webhooks/{}/clientConfig/caBundle"
    operations = [{"op": "add", "path": path.format(i), "value": bundle} for i in range(len(webhooks))]
    patch(name, operations)
    return True


class SetupError(RuntimeError):
    """A missing setting, named with what to set."""


def setup(env: Mapping[str, str], api: Any) -> list[str]:
    """Make or keep the certificate, then the CA in each configuration; returns one line per step."""
    try:
        service, secret = env["WEBHOOK_SERVICE"], env["WEBHOOK_SECRET"]
    except KeyError as exc:
        raise SetupError(f"environment variable {exc.args[0]} is not set") from None
    namespace = env.get("POD_NAMESPACE", "kserve")
    configurations = [
        (kind, name.strip())
        for kind, variable in (("mutating", "MUTATING_WEBHOOKS"), ("validating", "VALIDATING_WEBHOOKS"))
        for name in env.get(variable, "").split(",")
        if name.strip()
    ]
    pair = stored_pair(api, namespace, secret)
    if still_good(pair, service, namespace):
        done = [f"certificate for {service}.{namespace}.svc: kept (Secret {secret})"]
    else:
        pair = issue(service, namespace)
        store_pair(api, namespace, secret, pair)
        days = LIFETIME.days
        done = [f"certificate for {service}.{namespace}.svc: new, valid {days} days (Secret {secret})"]
    for kind, name in configurations:
        changed = set_ca_bundle(api, kind, name, pair.ca)
        done.append(f"{kind} webhook configuration {name}: {'CA set' if changed else 'CA already set'}")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webhook_cert", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    return run_step(setup, SetupError)


if __name__ == "__main__":
    sys.exit(main())
