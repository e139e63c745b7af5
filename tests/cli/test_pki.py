"""The CA is made once and kept; the serving certificate follows the names asked for."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeless.apiserver import pki as pki_mod
from nodeless.apiserver.pki import BUILTIN_SANS, ensure_pki, issue_certificate


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(ext.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return dns, ips


def test_ca_signs_serving_cert_with_all_names(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, extra_sans=["api.example.com", "10.1.2.3"])
    ca, server = _cert(pki.ca_cert), _cert(pki.server_cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    dns, ips = _sans(server)
    for name in BUILTIN_SANS:
        try:
            ipaddress.ip_address(name)
            assert name in ips
        except ValueError:
            assert name in dns
    assert "api.example.com" in dns and "10.1.2.3" in ips
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    for key in (pki.ca_key, pki.server_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_python_ssl_accepts_the_chain(tmp_path: Path) -> None:
    """What clients do: verify against the CA, by IP and by DNS name."""
    pki = ensure_pki(tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    for host in ("127.0.0.1", "kubernetes.default.svc"):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        c = client.wrap_bio(c_in, c_out, server_hostname=host)
        s = server.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(10):
            for obj in (c, s):
                with contextlib.suppress(ssl.SSLWantReadError):
                    obj.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        c.do_handshake()  # raises if verification failed


def test_same_sans_keep_everything(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path, extra_sans=["a.example"])
    before = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    second = ensure_pki(tmp_path, extra_sans=["a.example"])
    assert (second.ca_cert.read_bytes(), second.server_cert.read_bytes()) == before


def test_changed_sans_reissue_serving_cert_keep_ca(tmp_path: Path) -> None:
    first = ensure_pki(tmp_path)
    ca_pem, ca_key, old = first.ca_pem(), first.ca_key.read_bytes(), _cert(first.server_cert)
    second = ensure_pki(tmp_path, extra_sans=["new.example"])
    assert second.ca_pem() == ca_pem and second.ca_key.read_bytes() == ca_key
    new = _cert(second.server_cert)
    assert new.serial_number != old.serial_number
    assert "new.example" in _sans(new)[0]
    new.verify_directly_issued_by(_cert(second.ca_cert))


def test_near_expiry_reissues(tmp_path: Path, monkeypatch) -> None:
    pki = ensure_pki(tmp_path)
    old = _cert(pki.server_cert)
    later = old.not_valid_after_utc - pki_mod.RENEW_BEFORE + dt.timedelta(days=1)
    monkeypatch.setattr(pki_mod, "_now", lambda: later)
    ensure_pki(tmp_path)
    new = _cert(pki.server_cert)
    assert new.serial_number != old.serial_number
    assert new.not_valid_after_utc > old.not_valid_after_utc


def test_missing_server_key_reissues(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    ca = pki.ca_pem()
    pki.server_key.unlink()
    ensure_pki(tmp_path)
    assert pki.server_key.exists() and pki.ca_pem() == ca


def test_issue_certificate_for_other_components(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path)
    cert_pem, key_pem = issue_certificate(
        pki, "fargate-webhook", ["webhook.local", "127.0.0.1"], organizations=["nodeless"]
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fargate-webhook"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "nodeless"
    assert _sans(cert) == ({"webhook.local"}, {"127.0.0.1"})
    assert b"PRIVATE KEY" in key_pem
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tmp_cert, tmp_key = tmp_path / "w.crt", tmp_path / "w.key"
    tmp_cert.write_bytes(cert_pem)
    tmp_key.write_bytes(key_pem)
    ctx.load_cert_chain(tmp_cert, tmp_key)  # the key matches the certificate
