"""XML/JSON rendering: the VM fast path equals the generic renderer, escaping,
what the SDK's XML reader gets."""

from __future__ import annotations

import datetime as dt
import uuid

import ovirtsdk4.types as types
from ovirtsdk4 import readers  # noqa: F401  (registers the readers)
from ovirtsdk4.reader import Reader
from ovirtsdk4.xml import XmlReader

from ovengine.rest.render import esc, json_of, xml_of
import orjson

from ovengine.rest.resources.vms import vm_dict, vm_json, vm_xml


def _row(**over: object) -> dict[str, object]:
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    row: dict[str, object] = dict(
        id=uuid.uuid4(), name="vm<&>\"1", description="", comment="c & d", cluster_id=uuid.uuid4(),
        template_id=uuid.UUID(int=0), original_template_id=uuid.UUID(int=0), memory_mib=256,
        memory_guaranteed_mib=128, memory_max_mib=1024, ballooning=True, cpu_sockets=2,
        cpu_cores=2, cpu_threads=1, os_type="other", vm_type="server", display_type="vnc",
        boot_devices=["hd", "network"], stateless=False, delete_protected=True,
        ha_enabled=False, ha_priority=1, creation_time=now, origin="ovirt",
        architecture="x86_64", status="down", status_detail="", run_on_host_id=None,
        start_time=None, stop_time=now, stop_reason="because", guest_fqdn=None,
        run_once=False)
    row.update(over)
    return row


def test_vm_fast_path_equals_generic() -> None:
    for row in (_row(), _row(run_on_host_id=uuid.uuid4(), status="up", start_time=dt.datetime(
            2024, 5, 1, tzinfo=dt.timezone.utc), guest_fqdn="a.example", description="d\x01",
            status_detail="x", architecture=None, boot_devices=None)):
        assert vm_xml(row) == xml_of("vm", vm_dict(row))
        assert vm_json(row).encode() == orjson.dumps(vm_dict(row))


def test_the_sdk_reads_what_we_write() -> None:
    row = _row(run_on_host_id=uuid.uuid4(), status="up", start_time=dt.datetime(
        2024, 5, 1, tzinfo=dt.timezone.utc))
    vm = Reader.read(f"<vms>{vm_xml(row)}{vm_xml(_row())}</vms>".encode())
    assert isinstance(vm, list) and len(vm) == 2
    v = vm[0]
    assert v.id == str(row["id"]) and v.name == 'vm<&>"1' and v.status == types.VmStatus.UP
    assert v.memory == 256 * 2**20 and v.memory_policy.guaranteed == 128 * 2**20
    assert v.cpu.topology.sockets == 2 and v.host.id == str(row["run_on_host_id"])
    assert v.os.boot.devices == [types.BootDevice.HD, types.BootDevice.NETWORK]
    assert v.delete_protected is True and v.start_time.year == 2024
    assert v.snapshots.href.endswith("/snapshots")


def test_escaping_and_json() -> None:
    assert esc('a<b>&"c"') == "a&lt;b&gt;&amp;&quot;c&quot;"
    assert esc("bell\x07") == "bell"
    assert xml_of("x", {"id": "1", "href": "/h", "a": "t", "b": None, "l": {"i": ["1", "2"]}}) \
        == '<x href="/h" id="1"><a>t</a><l><i>1</i><i>2</i></l></x>'
    assert json_of({"a": None, "b": {"c": None, "d": "1"}}) == b'{"b":{"d":"1"}}'


def test_xml_reader_roundtrip_fault() -> None:
    fault = Reader.read(xml_of("fault", {"reason": "Not Found", "detail": "[x]"}).encode())
    assert fault.reason == "Not Found" and fault.detail == "[x]"
    assert XmlReader  # the C extension is the one the SDK uses
