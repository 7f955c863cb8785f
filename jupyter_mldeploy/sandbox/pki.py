"""Certificates, keys and tokens for the sandbox: made once per `up`, kept in its state folder."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .folder import private_dir, write_private

# The first address of --service-cluster-ip-range: in-cluster clients reach the API server there.
SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Tokens:
    """Static bearer tokens (kube-apiserver --token-auth-file) for the sandbox's identities."""

    admin: str
    limited: str
    components: str


def _write(path: Path, data: bytes) -> None:
    # Every file 0600 from its first byte, certificates too: the folder is 0700 anyway, and one rule
    # leaves nothing to get wrong.
    write_private(path, data)


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str, now: dt.datetime, later: dt.datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(folder: Path, name: str, cn: str, ca_key, ca, now: dt.datetime, later: dt.datetime,
          usages: list, sans: list | None = None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write(folder / f"{name}.key", _pem_key(key))
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(folder / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))


def make_pki(folder: Path) -> Tokens:
    """Write into `folder` (made 0700; every file 0600):

    - ca.crt/key, apiserver.crt/key: the cluster's CA and the API server's serving certificate;
    - etcd-ca.crt, etcd.crt/key, apiserver-etcd-client.crt/key: etcd's own CA (not the cluster's:
      no certificate the cluster CA signs for a Kubernetes user can ever open etcd), etcd's serving
      and peer certificate, and the one client certificate etcd accepts, the API server's. The etcd
      CA's key is never written: nothing else is ever to be signed by it;
    - sa.key/pub: the service-account signing key; tokens.csv: the static bearer tokens.
    """
    private_dir(folder)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    later = now + dt.timedelta(days=365)

    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    etcd_ca_key, etcd_ca = _ca("jupyter-mldeploy-sandbox-etcd-ca", now, later)
    _write(folder / "etcd-ca.crt", etcd_ca.public_bytes(serialization.Encoding.PEM))
    _leaf(folder, "etcd", "etcd", etcd_ca_key, etcd_ca, now, later,
          [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], loopback)
    _leaf(folder, "apiserver-etcd-client", "kube-apiserver-etcd-client", etcd_ca_key, etcd_ca, now, later,
          [ExtendedKeyUsageOID.CLIENT_AUTH])
    del etcd_ca_key

    ca_key, ca = _ca("jupyter-mldeploy-sandbox-ca", now, later)
    _write(folder / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    _write(folder / "ca.key", _pem_key(ca_key))

    sans = [
        x509.DNSName(n)
        for n in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                  "kubernetes.default.svc.cluster.local")
    ] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", SERVICE_IP)]
    _leaf(folder, "apiserver", "kube-apiserver", ca_key, ca, now, later, [ExtendedKeyUsageOID.SERVER_AUTH],
          sans)

    # Service-account tokens are signed with RS256 by default, so this key must be RSA.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(folder / "sa.key", _pem_key(sa_key))
    _write(
        folder / "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )

    tokens = Tokens(admin=secrets.token_hex(16), limited=secrets.token_hex(16),
                    components=secrets.token_hex(16))
    # token,user,uid,"group1,group2"
    _write(
        folder / "tokens.csv",
        (
            f'{tokens.admin},sandbox-admin,1000,"system:masters"\n'
            f'{tokens.limited},sandbox-limited,1001,"mldeploy:limited"\n'
            f'{tokens.components},sandbox-components,1002,"system:masters"\n'
        ).encode(),
    )
    return tokens


def kubeconfig(server: str, ca_file: Path, identities: list[tuple[str, str, str]]) -> str:
    """A kubeconfig with one context per (context name, token, namespace); the first is current."""
    users = "".join(f"- name: {ctx}\n  user:\n    token: {token}\n" for ctx, token, _ in identities)
    contexts = "".join(
        f"- name: {ctx}\n  context:\n    cluster: mldeploy-sandbox\n    user: {ctx}\n    namespace: {ns}\n"
        for ctx, _, ns in identities
    )
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: mldeploy-sandbox\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {ca_file}\n"
        f"users:\n{users}contexts:\n{contexts}current-context: {identities[0][0]}\n"
    )
