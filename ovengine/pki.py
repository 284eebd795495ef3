"""The engine's certificate authority and its files under state_dir/pki.

Created at first start. It signs: the engine's own client certificate (used
to reach agents), the engine's HTTPS certificate, and one certificate per
enrolled host (from the host's CSR: the host key never leaves the host).
Removing a host revokes its certificate (pki/crl.pem).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from protocol import pki

__all__ = ["EngineCa", "CaFiles"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaFiles:
    ca_cert: Path
    ca_key: Path
    engine_cert: Path
    engine_key: Path
    https_cert: Path
    https_key: Path
    crl: Path


class EngineCa:
    def __init__(self, pki_dir: Path) -> None:
        self.dir = pki_dir
        self.files = CaFiles(
            ca_cert=pki_dir / "ca.pem", ca_key=pki_dir / "private" / "ca.key",
            engine_cert=pki_dir / "engine.pem", engine_key=pki_dir / "private" / "engine.key",
            https_cert=pki_dir / "https.pem", https_key=pki_dir / "private" / "https.key",
            crl=pki_dir / "crl.pem")
        self._ca: pki.CertificateAuthority | None = None

    @property
    def ca(self) -> pki.CertificateAuthority:
        if self._ca is None:
            raise RuntimeError("CA not loaded: call ensure() first")
        return self._ca

    def ensure_blocking(self, https_names: Sequence[str]) -> None:
        """Load the CA, creating it and the engine's certificates on first start."""
        f = self.files
        if f.ca_cert.exists() and f.ca_key.exists():
            self._ca = pki.CertificateAuthority.load(f.ca_cert, f.ca_key)
        else:
            log.info("creating the engine CA in %s", self.dir)
            self._ca = pki.CertificateAuthority.create("ov engine CA")
            self._ca.save(f.ca_cert, f.ca_key)
        if not f.engine_cert.exists():
            issued = self._ca.issue("ov-engine", (), server=False, client=True)
            self._write(issued, f.engine_cert, f.engine_key)
        if not f.https_cert.exists():
            issued = self._ca.issue(https_names[0] if https_names else "localhost",
                                    https_names, server=True, client=False)
            self._write(issued, f.https_cert, f.https_key)
        if not f.crl.exists():
            self.write_crl_blocking(())

    @staticmethod
    def _write(issued: pki.IssuedCertificate, cert_path: Path, key_path: Path) -> None:
        assert issued.key is not None
        pki.write_private(key_path, pki.key_to_pem(issued.key))
        pki.write_public(cert_path, pki.cert_to_pem(issued.cert))

    def sign_host_csr(self, csr_pem: bytes, host_name: str,
                      addresses: Sequence[str]) -> pki.IssuedCertificate:
        """Sign a host's request for exactly the names the engine reaches it by."""
        csr = pki.load_csr(csr_pem)
        names = list(dict.fromkeys([*addresses, host_name]))
        return self.ca.sign_csr(csr, names, server=True, client=True)

    def write_crl_blocking(self, revoked_serials: Iterable[int]) -> None:
        crl = self.ca.crl(revoked_serials)
        from cryptography.hazmat.primitives import serialization
        pki.write_public(self.files.crl, crl.public_bytes(serialization.Encoding.PEM))

    def ca_pem(self) -> bytes:
        return pki.cert_to_pem(self.ca.cert)
