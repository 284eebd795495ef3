"""CA, CSR and certificate helpers on `cryptography`.

Keys are ECDSA P-256 (fast handshakes, small certificates, accepted by every
TLS stack oVirt tooling uses). The CA lives 10 years, issued certificates 5
years (oVirt's host certificates also last 5 years). Hosts are named by DNS
names and/or IP addresses in subjectAltName, so hostname checks work for
both `host.example` and `192.0.2.10`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_LIFETIME_DAYS",
    "CERT_LIFETIME_DAYS",
    "CertificateAuthority",
    "IssuedCertificate",
    "generate_key",
    "make_csr",
    "key_to_pem",
    "cert_to_pem",
    "load_cert",
    "load_key",
    "load_csr",
    "fingerprint",
    "write_private",
    "write_public",
]

CA_LIFETIME_DAYS = 3650
CERT_LIFETIME_DAYS = 1825
PrivateKey = ec.EllipticCurvePrivateKey


def generate_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def load_key(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("expected an EC private key")
    return key


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    csr = x509.load_pem_x509_csr(data)
    if not csr.is_signature_valid:
        raise ValueError("certificate request signature is invalid")
    return csr


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex (what tls.peer_fingerprint returns)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def _name(common_name: str, organization: str = "ov") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_csr(key: PrivateKey, common_name: str,
             hosts: Sequence[str] = ()) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class IssuedCertificate:
    key: PrivateKey | None  # None when signed from a CSR (the key never left its host)
    cert: x509.Certificate

    @property
    def serial(self) -> int:
        return self.cert.serial_number


@dataclass(frozen=True)
class CertificateAuthority:
    key: PrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "ov engine CA",
               days: int = CA_LIFETIME_DAYS) -> "CertificateAuthority":
        key = generate_key()
        now = dt.datetime.now(dt.timezone.utc)
        name = _name(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> "CertificateAuthority":
        return cls(load_key(key_path.read_bytes()), load_cert(cert_path.read_bytes()))

    def save(self, cert_path: Path, key_path: Path) -> None:
        write_private(key_path, key_to_pem(self.key))
        write_public(cert_path, cert_to_pem(self.cert))

    def _sign(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
              hosts: Sequence[str], server: bool, client: bool, days: int) -> x509.Certificate:
        now = dt.datetime.now(dt.timezone.utc)
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)),
                                            critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, common_name: str, hosts: Sequence[str] = (), *, server: bool = True,
              client: bool = True, days: int = CERT_LIFETIME_DAYS) -> IssuedCertificate:
        """A new key and a certificate for it (for peers we provision ourselves)."""
        key = generate_key()
        cert = self._sign(_name(common_name), key.public_key(), hosts, server, client, days)
        return IssuedCertificate(key, cert)

    def sign_csr(self, csr: x509.CertificateSigningRequest, hosts: Sequence[str] | None = None,
                 *, server: bool = True, client: bool = True,
                 days: int = CERT_LIFETIME_DAYS) -> IssuedCertificate:
        """Sign a request; `hosts` (when given) overrides the names the CSR asks for."""
        if not csr.is_signature_valid:
            raise ValueError("certificate request signature is invalid")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise ValueError("only EC keys are accepted")
        if hosts is None:
            try:
                ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                hosts = [str(v) for v in ext.value.get_values_for_type(x509.DNSName)] + [
                    str(v) for v in ext.value.get_values_for_type(x509.IPAddress)]
            except x509.ExtensionNotFound:
                hosts = []
        return IssuedCertificate(None, self._sign(csr.subject, public_key, hosts, server,
                                                  client, days))

    def crl(self, revoked_serials: Iterable[int], days: int = 30) -> x509.CertificateRevocationList:
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=days))
        )
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now)
                .build())
        return builder.sign(self.key, hashes.SHA256())
