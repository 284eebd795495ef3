"""vdsm's on-disk metadata formats, as pure codecs (no I/O).

Domain metadata (dom_md/metadata) is "KEY=VALUE" lines sorted by key and
sealed by a last line `_SHA_CKSUM=<sha1>`: the SHA-1 of the concatenated
"KEY=VALUE" strings (no newlines) in key order. A file without the seal is
accepted as is (vdsm does the same); a wrong seal is an error.

The master domain also holds the pool's keys (POOL_DOMAINS as
"uuid:Active,uuid:Attached", POOL_DESCRIPTION, POOL_SPM_ID, POOL_SPM_LVER,
MASTER_VERSION).

Volume metadata (<vol>.meta, domain format 5) is "KEY=VALUE" lines sorted by
key and ended by a line "EOF": CAP (capacity in bytes), CTIME, DESCRIPTION,
DISKTYPE, DOMAIN, FORMAT (COW|RAW), GEN, IMAGE, LEGALITY (LEGAL|ILLEGAL),
PUUID (parent or the blank UUID), TYPE (SPARSE|PREALLOCATED), VOLTYPE
(LEAF|INTERNAL|SHARED).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from .constants import ACTIVE, BLANK_UUID, DESCRIPTION_SIZE, domain_status_name
from .errors import MetadataKeyNotFound, MetadataSealIsBroken, VolumeMetadataReadError

__all__ = [
    "SEAL_KEY", "encode_domain_metadata", "decode_domain_metadata", "encode_pool_domains",
    "decode_pool_domains", "VolumeMetadata", "transform_path", "normalize_spec",
    "POOL_KEYS",
]

SEAL_KEY = "_SHA_CKSUM"
POOL_KEYS = ("POOL_DOMAINS", "POOL_DESCRIPTION", "POOL_SPM_ID", "POOL_SPM_LVER",
             "MASTER_VERSION")


def _seal(md: dict[str, str]) -> str:
    digest = hashlib.sha1()
    for key in sorted(md):
        # vdsm seals the ascii form, non-ascii as XML character references.
        line = f"{key}={md[key].strip()}"
        digest.update(line.encode("ascii", "xmlcharrefreplace"))
    return digest.hexdigest()


def encode_domain_metadata(md: dict[str, str]) -> bytes:
    if SEAL_KEY in md:
        md = {k: v for k, v in md.items() if k != SEAL_KEY}
    for key, value in md.items():
        if "\n" in key or "=" in key or "\n" in value:
            raise ValueError(f"metadata {key!r}={value!r} cannot be stored")
    lines = [f"{key}={md[key].strip()}" for key in sorted(md)]
    lines.append(f"{SEAL_KEY}={_seal(md)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def decode_domain_metadata(data: bytes) -> dict[str, str]:
    md: dict[str, str] = {}
    declared = None
    for raw in data.decode("utf-8", errors="replace").splitlines():
        key, sep, value = raw.partition("=")
        if not sep:
            continue
        if key == SEAL_KEY:
            declared = value.strip()
            continue
        md[key] = value.strip()
    if md and declared is not None and declared != _seal(md):
        raise MetadataSealIsBroken(f"cksum={declared}, computed={_seal(md)}")
    return md


def encode_pool_domains(domains: dict[str, str]) -> str:
    return ",".join(f"{sd}:{status}" for sd, status in domains.items())


def decode_pool_domains(value: str) -> dict[str, str]:
    domains: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        sd, _, status = item.partition(":")
        domains[sd.strip("'")] = domain_status_name(status.strip("'") or ACTIVE)
    return domains


@dataclass(frozen=True)
class VolumeMetadata:
    domain: str
    image: str
    parent: str
    capacity: int
    format: str
    type: str
    voltype: str
    disktype: str
    description: str = ""
    legality: str = "ILLEGAL"
    ctime: int = 0
    generation: int = 0

    @classmethod
    def new(cls, **kwargs: object) -> "VolumeMetadata":
        md = cls(**kwargs)  # type: ignore[arg-type]
        return replace(md, ctime=md.ctime or int(time.time()),
                       description=md.description[:DESCRIPTION_SIZE])

    @property
    def has_parent(self) -> bool:
        return self.parent not in ("", BLANK_UUID)

    def encode(self) -> bytes:
        info = {
            "CAP": str(self.capacity), "CTIME": str(self.ctime),
            "DESCRIPTION": self.description[:DESCRIPTION_SIZE].replace("\n", " "),
            "DISKTYPE": self.disktype, "DOMAIN": self.domain, "FORMAT": self.format,
            "GEN": str(self.generation), "IMAGE": self.image, "LEGALITY": self.legality,
            "PUUID": self.parent or BLANK_UUID, "TYPE": self.type, "VOLTYPE": self.voltype,
        }
        lines = [f"{key}={info[key]}\n" for key in sorted(info)]
        lines.append("EOF\n")
        return "".join(lines).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> "VolumeMetadata":
        md: dict[str, str] = {}
        for line in data.decode("utf-8", errors="replace").splitlines():
            if line.startswith("EOF"):
                break
            key, sep, value = line.partition("=")
            if sep:
                md[key.strip()] = value.strip()
        try:
            return cls(domain=md["DOMAIN"], image=md["IMAGE"], parent=md["PUUID"],
                       capacity=int(md["CAP"]), format=md["FORMAT"], type=md["TYPE"],
                       voltype=md["VOLTYPE"], disktype=md["DISKTYPE"],
                       description=md.get("DESCRIPTION", ""), legality=md["LEGALITY"],
                       ctime=int(md.get("CTIME", "0") or 0),
                       generation=int(md.get("GEN", "0") or 0))
        except KeyError as exc:
            raise MetadataKeyNotFound(f"missing key {exc} in volume metadata {md}") from None
        except ValueError as exc:
            raise VolumeMetadataReadError(f"bad value in volume metadata: {exc}") from None


def normalize_spec(spec: str) -> str:
    """vdsm's path normalization of a connection spec ("server:/path" or a path)."""
    import posixpath

    if ":" in spec and not spec.startswith("/"):
        server, _, path = spec.partition(":")
        path = posixpath.normpath(path) if path else path
        return f"{server}:{path}"
    return posixpath.normpath(spec)


def transform_path(spec: str) -> str:
    """The mount directory name of a connection: "_" doubled, "/" as "_"."""
    return spec.replace("_", "__").replace("/", "_")
