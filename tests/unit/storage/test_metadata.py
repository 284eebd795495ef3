"""vdsm's metadata formats and storage vocabulary (pure codecs)."""

from __future__ import annotations

import hashlib

import pytest

from ovagent.storage.connections import parse_connection
from ovagent.storage.constants import (
    allocation_name,
    domain_class_name,
    domain_status_name,
    domain_type_name,
    volume_format_name,
    volume_role_name,
)
from ovagent.storage.errors import MetadataKeyNotFound, MetadataSealIsBroken, StorageError
from ovagent.storage.metadata import (
    VolumeMetadata,
    decode_domain_metadata,
    decode_pool_domains,
    encode_domain_metadata,
    encode_pool_domains,
    normalize_spec,
    transform_path,
)

SD = "a1b2c3d4-0000-4000-8000-000000000001"
IMG = "a1b2c3d4-0000-4000-8000-000000000002"
VOL = "a1b2c3d4-0000-4000-8000-000000000003"
BLANK = "00000000-0000-0000-0000-000000000000"


def test_domain_metadata_is_sorted_and_sealed_as_vdsm_does() -> None:
    md = {"VERSION": "5", "SDUUID": SD, "CLASS": "Data", "DESCRIPTION": "data one",
          "POOL_UUID": ""}
    data = encode_domain_metadata(md)
    lines = data.decode().splitlines()
    assert lines[:-1] == ["CLASS=Data", "DESCRIPTION=data one", "POOL_UUID=",
                          f"SDUUID={SD}", "VERSION=5"]
    # the seal: SHA-1 of the "KEY=VALUE" strings concatenated in key order
    expected = hashlib.sha1("".join(lines[:-1]).encode()).hexdigest()
    assert lines[-1] == f"_SHA_CKSUM={expected}"
    assert decode_domain_metadata(data) == md


def test_a_broken_seal_is_detected_and_a_missing_one_tolerated() -> None:
    data = encode_domain_metadata({"ROLE": "Master", "SDUUID": SD})
    tampered = data.replace(b"ROLE=Master", b"ROLE=Regular")
    with pytest.raises(MetadataSealIsBroken) as err:
        decode_domain_metadata(tampered)
    assert err.value.code == 752
    unsealed = b"ROLE=Regular\nSDUUID=" + SD.encode() + b"\n"
    assert decode_domain_metadata(unsealed) == {"ROLE": "Regular", "SDUUID": SD}
    assert decode_domain_metadata(b"") == {}


def test_non_ascii_descriptions_seal_like_vdsm() -> None:
    md = {"DESCRIPTION": "données"}
    line = "DESCRIPTION=donn&#233;es"  # vdsm seals the xmlcharref form
    assert encode_domain_metadata(md).decode().splitlines()[-1] == \
        f"_SHA_CKSUM={hashlib.sha1(line.encode()).hexdigest()}"
    assert decode_domain_metadata(encode_domain_metadata(md)) == md


def test_volume_metadata_format() -> None:
    md = VolumeMetadata(domain=SD, image=IMG, parent=BLANK, capacity=1 << 30, format="COW",
                        type="SPARSE", voltype="LEAF", disktype="DATA", description="os",
                        legality="ILLEGAL", ctime=1700000000, generation=3)
    assert md.encode().decode() == (
        "CAP=1073741824\nCTIME=1700000000\nDESCRIPTION=os\nDISKTYPE=DATA\n"
        f"DOMAIN={SD}\nFORMAT=COW\nGEN=3\nIMAGE={IMG}\nLEGALITY=ILLEGAL\n"
        f"PUUID={BLANK}\nTYPE=SPARSE\nVOLTYPE=LEAF\nEOF\n")
    assert VolumeMetadata.decode(md.encode()) == md
    assert not md.has_parent
    # anything after EOF is ignored; a missing key is vdsm's error 751
    assert VolumeMetadata.decode(md.encode() + b"CAP=1\n").capacity == 1 << 30
    with pytest.raises(MetadataKeyNotFound):
        VolumeMetadata.decode(b"CAP=1\nEOF\n")


def test_new_volume_metadata_is_stamped_and_truncated() -> None:
    md = VolumeMetadata.new(domain=SD, image=IMG, parent=VOL, capacity=1, format="COW",
                            type="SPARSE", voltype="LEAF", disktype="DATA",
                            description="x" * 500)
    assert md.ctime > 0 and len(md.description) == 210 and md.has_parent
    assert md.legality == "ILLEGAL"  # what a volume is until its work is done


def test_pool_domains() -> None:
    assert encode_pool_domains({SD: "Active", IMG: "Attached"}) == \
        f"{SD}:Active,{IMG}:Attached"
    assert decode_pool_domains(f"{SD}:active,{IMG}:Inactive") == {SD: "Active",
                                                                  IMG: "Attached"}
    assert decode_pool_domains("") == {}


@pytest.mark.parametrize("spec,mount_dir", [
    ("/srv/export", "_srv_export"),
    ("/srv/my_export/", "_srv_my__export"),
    ("nfs.example.com:/exports/data//", "nfs.example.com:_exports_data"),
])
def test_mount_directory_names(spec: str, mount_dir: str) -> None:
    assert transform_path(normalize_spec(spec)) == mount_dir


def test_connection_parameters_as_the_engine_sends_them() -> None:
    nfs = parse_connection(1, {"id": "c1", "connection": "srv:/exp/", "protocol_version": "3",
                               "retrans": 6, "timeout": 600})
    assert nfs.kind == "nfs" and nfs.spec == "srv:/exp"
    assert nfs.options == "soft,nosharecache,timeo=600,retrans=6,nfsvers=3,nolock"
    auto = parse_connection("NFS", {"id": "c2", "connection": "srv:/exp",
                                    "protocol_version": "auto", "mnt_options": "lock"})
    assert auto.options == "soft,nosharecache,timeo=100,retrans=3,lock"
    v41 = parse_connection(1, {"id": "c3", "connection": "srv:/exp",
                               "protocol_version": "4.1"})
    assert "nfsvers=4,minorversion=1" in v41.options and "nolock" not in v41.options
    bind = parse_connection(6, {"id": "c4", "connection": "/srv/shared", "vfs_type": "none"})
    assert bind.kind == "posixfs" and bind.is_bind
    fs = parse_connection(6, {"id": "c5", "connection": "/dev/sdb1", "vfs_type": "xfs",
                              "mnt_options": "noatime"})
    assert not fs.is_bind and fs.vfs_type == "xfs" and fs.options == "noatime"
    local = parse_connection(4, {"id": "c6", "connection": "/data/"})
    assert local.kind == "localfs" and local.spec == "/data"
    with pytest.raises(StorageError) as err:
        parse_connection(3, {"id": "c7", "connection": "iqn"})
    assert err.value.code == 1000


def test_vdsm_numbers_and_names() -> None:
    assert domain_type_name(4) == domain_type_name("localfs") == "LOCALFS"
    assert domain_type_name("6") == "POSIXFS"
    assert domain_class_name(1) == domain_class_name("data") == "Data"
    assert volume_format_name(4) == volume_format_name("cow") == "COW"
    assert volume_format_name(5) == "RAW"
    assert allocation_name(1) == "PREALLOCATED" and allocation_name("2") == "SPARSE"
    assert volume_role_name(6) == "SHARED" and volume_role_name("leaf") == "LEAF"
    assert domain_status_name("active") == "Active"
    for bad, fn, code in ((9, volume_format_name, 202), (3, allocation_name, 231),
                          (8, domain_type_name, 372), (True, domain_class_name, 386)):
        with pytest.raises(StorageError) as err:
            fn(bad)
        assert err.value.code == code
