"""The cluster's certificate authority and the API server's serving certificate.

The CA is made once per data dir and never replaced: every kubeconfig, webhook caBundle
and agent trusts it, so replacing it would silently break them all. The serving
certificate is cheap and is re-issued whenever its names change or it nears expiry.
ECDSA P-256 keeps first start fast (milliseconds, where RSA-2048 takes tenths).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
"""A serving certificate closer than this to its expiry is re-issued at start."""
CLOCK_SKEW = dt.timedelta(minutes=5)
"""notBefore is back-dated so that clients with a slightly late clock accept it."""

BUILTIN_SANS = (
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

KeyPEM = bytes
CertPEM = bytes


@dataclass(frozen=True)
class PKI:
    """Where the CA and serving material live; paths, so TLS libraries can load them."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    def ca_pem(self) -> CertPEM:
        """The CA certificate, for kubeconfigs and webhook caBundles."""
        return self.ca_cert.read_bytes()

    @classmethod
    def at(cls, data_dir: Path) -> PKI:
        """The PKI layout of a data dir (files may not exist yet)."""
        d = Path(data_dir) / "pki"
        return cls(d, d / "ca.crt", d / "ca.key", d / "server.crt", d / "server.key")


def ensure_pki(data_dir: Path, extra_sans: list[str] | None = None) -> PKI:
    """Create what is missing or stale and return the paths; safe from several processes."""
    pki = PKI.at(data_dir)
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sans = serving_sans(extra_sans or [])
    with file_lock(pki.dir / ".lock"):
        ca_cert, ca_key = _ensure_ca(pki)
        if _serving_cert_stale(pki, ca_cert, sans):
            cert_pem, key_pem = _issue(ca_cert, ca_key, "kube-apiserver", sans, server_only=True)
            write_atomic(pki.server_key, key_pem, 0o600)
            write_atomic(pki.server_cert, cert_pem, 0o644)
    return pki


def issue_certificate(
    pki: PKI,
    common_name: str,
    sans: Iterable[str],
    *,
    organizations: Iterable[str] = (),
    validity: dt.timedelta = LEAF_VALIDITY,
) -> tuple[CertPEM, KeyPEM]:
    """A fresh key and a certificate signed by the cluster CA, for servers and clients
    (webhooks, agents); `organizations` become a client's groups, as kube reads them."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = _load_key(pki.ca_key.read_bytes())
    return _issue(
        ca_cert,
        ca_key,
        common_name,
        list(sans),
        organizations=list(organizations),
        validity=validity,
    )


def ensure_leaf(pki: PKI, stem: Path, name: str, sans: Iterable[str], *,
                organizations: Iterable[str] = ()) -> tuple[Path, Path]:
    """STEM.crt/STEM.key signed by the CA, issued again when missing, signed by another
    CA, or within RENEW_BEFORE of expiry: the leaf of a webhook, an agent, a client."""
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    stem.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not leaf_fresh(cert_path, key_path, pki.ca_cert):
        cert_pem, key_pem = issue_certificate(pki, name, sans, organizations=organizations)
        write_atomic(key_path, key_pem, 0o600)
        write_atomic(cert_path, cert_pem, 0o644)
    return cert_path, key_path


def leaf_fresh(cert_path: Path, key_path: Path, ca_path: Path) -> bool:
    """Whether a leaf exists, was signed by this CA and is not near expiry."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        if not key_path.exists():
            return False
        cert.verify_directly_issued_by(ca)
    except Exception:  # missing, garbled, or signed by another CA: issue a new one
        return False
    return cert.not_valid_after_utc - _now() > RENEW_BEFORE


def serving_sans(extra_sans: Iterable[str] = ()) -> list[str]:
    """The names the API server answers to: loopback, in-cluster names, host, extras."""
    names = [*BUILTIN_SANS, socket.gethostname(), *extra_sans]
    return list(dict.fromkeys(n.strip() for n in names if n.strip()))


def _ensure_ca(pki: PKI) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if pki.ca_cert.exists() and pki.ca_key.exists():
        return (
            x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()),
            _load_key(pki.ca_key.read_bytes()),
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nodeless-ca")])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certs=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    write_atomic(pki.ca_key, _key_pem(key), 0o600)
    write_atomic(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _serving_cert_stale(pki: PKI, ca_cert: x509.Certificate, sans: list[str]) -> bool:
    if not (pki.server_cert.exists() and pki.server_key.exists()):
        return True
    try:
        cert = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
        key = _load_key(pki.server_key.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return True
    if cert.public_key() != key.public_key():
        return True
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return True
    return _cert_sans(cert) != _parse_sans(sans)


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    sans: list[str],
    *,
    organizations: list[str] | None = None,
    server_only: bool = False,
    validity: dt.timedelta = LEAF_VALIDITY,
) -> tuple[CertPEM, KeyPEM]:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations or []]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if not server_only:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    now = _now()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    general_names = _parse_sans(sans)
    if general_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sorted(general_names, key=str)), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _key_usage(*, signs_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certs,
        crl_sign=signs_certs,
        encipher_only=False,
        decipher_only=False,
    )


def _parse_sans(sans: Iterable[str]) -> set[x509.GeneralName]:
    """IP literals become IP SANs (clients match IPs only against those), the rest DNS."""
    out: set[x509.GeneralName] = set()
    for name in sans:
        try:
            out.add(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.add(x509.DNSName(name))
    return out


def _cert_sans(cert: x509.Certificate) -> set[x509.GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(ext.value)


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("expected an ECDSA private key")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> KeyPEM:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace `path` atomically with a file born with `mode`, so readers never see half
    a file and a secret is never readable by others, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, mode)
        f.write(data)
    os.replace(tmp, path)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialises read-modify-write of data-dir files between processes sharing it."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
