"""CA, certificates, CSRs and CRLs (protocol.pki), checked with `cryptography` itself."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from protocol import pki


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create("unit CA")


def verify_signed_by(cert: x509.Certificate, ca: pki.CertificateAuthority) -> None:
    cert.verify_directly_issued_by(ca.cert)  # raises on a bad signature or issuer


def test_ca_is_a_ca(ca: pki.CertificateAuthority) -> None:
    cert = ca.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "unit CA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= pki.CA_LIFETIME_DAYS
    verify_signed_by(cert, ca)


def test_ca_save_and_load(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "ca" / "ca.pem", tmp_path / "private" / "ca.key"
    ca.save(cert_path, key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key_path.read_bytes()
    loaded = pki.CertificateAuthority.load(cert_path, key_path)
    assert loaded.cert == ca.cert
    assert loaded.key.private_numbers() == ca.key.private_numbers()
    # The loaded CA signs certificates the original CA's certificate verifies.
    verify_signed_by(loaded.issue("x").cert, ca)


def test_write_private_narrows_an_existing_wide_file(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    pki.write_private(path, b"secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"secret"


def test_issue_with_ip_and_dns_names(ca: pki.CertificateAuthority) -> None:
    issued = ca.issue("host1", ["192.0.2.10", "host1.example", "::1"])
    assert issued.key is not None
    cert = issued.cert
    verify_signed_by(cert, ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["host1.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.10"),
                                                       ipaddress.ip_address("::1")]
    assert cert.public_key().public_numbers() == issued.key.public_key().public_numbers()
    assert isinstance(issued.key, ec.EllipticCurvePrivateKey)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert issued.serial == cert.serial_number
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= pki.CERT_LIFETIME_DAYS
    assert pki.fingerprint(cert) != pki.fingerprint(ca.cert)
    assert len(pki.fingerprint(cert)) == 64


def test_issue_client_only(ca: pki.CertificateAuthority) -> None:
    cert = ca.issue("engine", server=False).cert
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_csr_signing_keeps_the_key_on_the_host(ca: pki.CertificateAuthority) -> None:
    host_key = pki.generate_key()
    csr_pem = pki.make_csr(host_key, "host2", ["198.51.100.7", "host2.example"]).public_bytes(
        Encoding.PEM)
    assert b"PRIVATE" not in csr_pem
    csr = pki.load_csr(csr_pem)
    issued = ca.sign_csr(csr)
    assert issued.key is None
    verify_signed_by(issued.cert, ca)
    assert issued.cert.public_key().public_numbers() == host_key.public_key().public_numbers()
    assert issued.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "host2"
    san = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["host2.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.51.100.7")]
    # The engine may override the names a host asks for.
    overridden = ca.sign_csr(csr, ["203.0.113.1"]).cert
    san = overridden.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("203.0.113.1")]


def test_csr_from_pem_round_trip_and_garbage(ca: pki.CertificateAuthority) -> None:
    with pytest.raises(ValueError):
        pki.load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                     b"-----END CERTIFICATE REQUEST-----\n")
    key = pki.generate_key()
    assert pki.load_key(pki.key_to_pem(key)).private_numbers() == key.private_numbers()
    cert = ca.issue("x").cert
    assert pki.load_cert(pki.cert_to_pem(cert)) == cert


def test_crl_lists_revoked_serials_and_is_signed_by_the_ca(ca: pki.CertificateAuthority) -> None:
    bad, good = ca.issue("bad"), ca.issue("good")
    crl = ca.crl([bad.serial])
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.issuer == ca.cert.subject
    assert crl.get_revoked_certificate_by_serial_number(bad.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(good.serial) is None
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    other = pki.CertificateAuthority.create("other")
    assert not crl.is_signature_valid(other.cert.public_key())
    assert len(list(ca.crl([]))) == 0


def test_load_key_refuses_non_ec_keys() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError, match="EC"):
        pki.load_key(pem)
