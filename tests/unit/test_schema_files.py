"""The shipped verb schema (protocol/schema/*.yml) against vdsm's wire facts.

Param names, optionality and defaults must be exactly vdsm's, because vdsm's
own client and the engine's vdsm-jsonrpc-java call the agent; result samples
are shaped like what vdsm really sends (numbers in strings included).
"""

from __future__ import annotations

import copy
import keyword
from pathlib import Path

import pytest
import yaml

from protocol.jsonrpc import JsonRpcError
from protocol.schema import (
    MISSING,
    SCHEMA_DIR,
    ListOf,
    ValidationError,
    Validator,
    default_schema,
)

VM_ID = "4f2ad3c8-7b0e-4a5d-9c61-2e8f0b9d1a37"
VM_ID_2 = "b91c0e52-3d4f-4e8a-8f27-6a1d5c3e9b04"
SD_ID = "0c7e5b1a-92d4-4f63-a8e0-3b5d71c2f946"
IMG_ID = "e5d30a27-14c8-4b9f-bd62-9f0a8c4e7d13"

# verb -> [(param name, default or MISSING)], in vdsm's order
EXPECTED_VERBS: dict[str, list[tuple[str, object]]] = {
    "Host.ping2": [],
    "Host.getCapabilities": [],
    "Host.getHardwareInfo": [],
    "Host.getStats": [],
    "Host.getAllVmStats": [],
    "Host.getVMList": [("fullStatus", False), ("vmList", []), ("onlyUUID", False)],
    "Host.getVMFullList": [("vmList", [])],
    "Host.dumpxmls": [("vmList", [])],
    "VM.create": [("vmID", MISSING), ("vmParams", MISSING)],
    "VM.destroy": [("vmID", MISSING), ("gracefulAttempts", 1)],
    "VM.shutdown": [("vmID", MISSING), ("delay", None), ("message", None),
                    ("reboot", False), ("timeout", None), ("force", False)],
    "VM.reset": [("vmID", MISSING)],
    "VM.pause": [("vmID", MISSING)],
    "VM.cont": [("vmID", MISSING)],
    "VM.getStats": [("vmID", MISSING)],
    "VM.setTicket": [("vmID", MISSING), ("password", MISSING), ("ttl", MISSING),
                     ("existingConnAction", MISSING), ("params", MISSING)],
    "VM.setBalloonTarget": [("vmID", MISSING), ("target", MISSING)],
}

# Storage verbs, as in vdsm-api.yml (vdsm's "()" default is our []).
_SP, _SD, _IMG, _VOL = "storagepoolID", "storagedomainID", "imageID", "volumeID"
_R = MISSING
EXPECTED_VERBS.update({
    "StoragePool.connectStorageServer": [(_SP, _R), ("domainType", _R),
                                         ("connectionParams", _R)],
    "StoragePool.disconnectStorageServer": [(_SP, _R), ("domainType", _R),
                                            ("connectionParams", _R)],
    "StoragePool.create": [(_SP, _R), ("name", _R), ("masterSdUUID", _R),
                           ("masterVersion", _R), ("domainList", _R),
                           ("lockRenewalIntervalSec", _R), ("leaseTimeSec", _R),
                           ("ioOpTimeoutSec", _R), ("leaseRetries", _R)],
    "StoragePool.connect": [(_SP, _R), ("hostID", _R), ("scsiKey", _R), ("masterSdUUID", _R),
                            ("masterVersion", _R), ("domainDict", None)],
    "StoragePool.disconnect": [(_SP, _R), ("hostID", _R), ("scsiKey", _R), ("remove", False)],
    "StoragePool.refresh": [(_SP, _R), ("masterSdUUID", _R), ("masterVersion", _R)],
    "StoragePool.getInfo": [(_SP, _R)],
    "StoragePool.getSpmStatus": [(_SP, _R)],
    "StoragePool.spmStart": [(_SP, _R), ("prevID", _R), ("prevLver", _R),
                             ("enableScsiFencing", _R), ("maxHostID", None),
                             ("domVersion", None)],
    "StoragePool.spmStop": [(_SP, _R)],
    "StorageDomain.create": [(_SD, _R), ("domainType", _R), ("typeArgs", _R), ("name", _R),
                             ("domainClass", _R), ("version", None), ("blockSize", 512),
                             ("maxHosts", 2000)],
    "StorageDomain.getInfo": [(_SD, _R)],
    "StorageDomain.getStats": [(_SD, _R)],
    "StorageDomain.getImages": [(_SD, _R)],
    "StorageDomain.getVolumes": [(_SD, _R), (_SP, _R), (_IMG, _R)],
    "StorageDomain.validate": [(_SD, _R)],
    "StorageDomain.format": [(_SD, _R), ("autoDetach", _R)],
    "StorageDomain.attach": [(_SD, _R), (_SP, _R)],
    "StorageDomain.activate": [(_SD, _R), (_SP, _R)],
    "StorageDomain.deactivate": [(_SD, _R), (_SP, _R), ("masterSdUUID", _R),
                                 ("masterVersion", _R)],
    "StorageDomain.detach": [(_SD, _R), (_SP, _R), ("masterSdUUID", None),
                             ("masterVersion", 0), ("force", False)],
    "Volume.create": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R), ("size", _R),
                      ("volFormat", _R), ("preallocate", _R), ("diskType", _R), ("desc", _R),
                      ("srcImgUUID", _R), ("srcVolUUID", _R), ("initialSize", None),
                      ("addBitmaps", False), ("legal", True), ("sequence", 0),
                      ("bitmap", None), ("volType", None)],  # volType: ov's, last
    "Volume.delete": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R), ("postZero", _R),
                      ("force", _R), ("discard", False)],
    "Volume.getInfo": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R)],
    "Volume.getSize": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R)],
    "Volume.extendSize": [(_SP, _R), (_SD, _R), (_IMG, _R), (_VOL, _R), ("newSize", _R)],
    "Volume.setLegality": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R), ("legality", _R)],
    "Volume.setDescription": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R),
                              ("description", _R)],
    "Volume.copy": [(_VOL, _R), (_SP, _R), (_SD, _R), (_IMG, _R), ("dstSdUUID", _R),
                    ("dstImgUUID", _R), ("dstVolUUID", _R), ("desc", _R), ("volType", _R),
                    ("volFormat", _R), ("preallocate", _R), ("postZero", _R), ("force", _R),
                    ("discard", False)],
    "Image.getVolumes": [(_IMG, _R), (_SP, _R), (_SD, _R)],
    "Image.delete": [(_IMG, _R), (_SP, _R), (_SD, _R), ("postZero", _R), ("force", _R),
                     ("discard", False)],
    "Image.prepare": [(_SP, _R), (_SD, _R), (_IMG, _R), (_VOL, _R), ("allowIllegal", False)],
    "Image.teardown": [(_SP, _R), (_SD, _R), (_IMG, _R), (_VOL, None)],
    "Task.getStatus": [("taskID", _R)],
    "Task.getInfo": [("taskID", _R)],
    "Task.clear": [("taskID", _R)],
    "Task.stop": [("taskID", _R)],
    "Host.getAllTasksStatuses": [],
    "Host.getAllTasksInfo": [],
    "Host.getAllTasks": [],
    "Host.getStorageDomains": [(_SP, None), ("domainClass", None), ("storageType", None),
                               ("remotePath", None)],
    "Host.getConnectedStoragePools": [],
    "Host.getStorageRepoStats": [("domains", [])],
})

# VM disks: snapshots, merges, host jobs, image transfer tickets (vdsm-api.yml);
# Image.coldMerge is ov's own (vdsm splits it into prepareMerge/SDM.merge/finalizeMerge).
EXPECTED_VERBS.update({
    "VM.snapshot": [("vmID", _R), ("snapDrives", _R), ("snapMemory", None), ("frozen", False),
                    ("jobUUID", None), ("timeout", 30), ("freeze_timeout", 8)],
    "VM.merge": [("vmID", _R), ("drive", _R), ("baseVolUUID", _R), ("topVolUUID", _R),
                 ("bandwidth", 0), ("jobUUID", None)],
    "Host.getJobs": [("job_type", None), ("job_ids", [])],
    "Host.add_image_ticket": [("ticket", _R)],
    "Host.get_image_ticket": [("uuid", _R)],
    "Host.remove_image_ticket": [("uuid", _R)],
    "Host.extend_image_ticket": [("uuid", _R), ("timeout", _R)],
    "Image.coldMerge": [(_SP, _R), (_SD, _R), (_IMG, _R), ("baseVolUUID", _R),
                        ("topVolUUID", _R)],
})

NO_RESULT_VERBS = {"Host.ping2", "VM.destroy", "VM.shutdown", "VM.reset", "VM.setTicket",
                   "StoragePool.create", "StoragePool.connect", "StoragePool.disconnect",
                   "StoragePool.refresh", "StoragePool.spmStop", "StorageDomain.create",
                   "StorageDomain.validate", "StorageDomain.format", "StorageDomain.attach",
                   "StorageDomain.activate", "StorageDomain.deactivate",
                   "StorageDomain.detach", "Volume.setLegality", "Volume.setDescription",
                   "Image.teardown", "Task.clear", "Task.stop", "VM.snapshot", "VM.merge",
                   "Host.add_image_ticket", "Host.remove_image_ticket",
                   "Host.extend_image_ticket"}

VDSM_VM_STATUSES = {
    "Up", "Down", "Migration Source", "Migration Destination", "Paused",
    "Powering down", "Powering up", "RebootInProgress", "Restoring state",
    "Saving State", "WaitForLaunch",
}


@pytest.fixture(scope="module")
def schema():
    return default_schema()


@pytest.fixture(scope="module")
def validator(schema):
    return Validator(schema)


def ok(validator, schema, verb, sample):
    validator.check(schema.verbs[verb].returns, sample, "result")


def bad(validator, schema, verb, sample):
    with pytest.raises(ValidationError):
        validator.check(schema.verbs[verb].returns, sample, "result")


# ------------------------------------------------------------------ samples
def running_vm_stats() -> dict:
    return {
        "vmId": VM_ID,
        "status": "Up",
        "statusTime": "2152843657",
        "vmName": "web01",
        "vmType": "kvm",
        "kvmEnable": "true",
        "acpiEnable": "true",
        "elapsedTime": "8311",
        "monitorResponse": "0",
        "clientIp": "",
        "timeOffset": "0",
        "pauseCode": "NOERR",
        "cpuUser": "1.42",
        "cpuSys": "0.35",
        "cpuUsage": "183620000000",
        "vcpuCount": "2",
        "vcpuQuota": "-1",
        "vcpuPeriod": 100000,
        "memUsage": "37",
        "hash": "-6187354213098763513",
        "displayInfo": [{"type": "vnc", "port": "5900", "tlsPort": "-1", "ipAddress": "0"}],
        "balloonInfo": {"balloon_max": "4194304", "balloon_min": "4194304",
                        "balloon_cur": "4194304", "balloon_target": "4194304",
                        "ballooning_enabled": True},
        "memoryStats": {"mem_total": "4030112", "mem_unused": "2540032",
                        "mem_free": "2540032", "swap_in": 0, "swap_out": 0,
                        "majflt": 0, "minflt": 12, "pageflt": 12},
        "disks": {
            "vda": {"readRate": "0.0", "writeRate": "4096.3", "readOps": "10244",
                    "writeOps": "3172", "readBytes": "331776000",
                    "writtenBytes": "52224000", "readLatency": "0",
                    "writeLatency": "512331", "flushLatency": "0",
                    "truesize": "2147483648", "apparentsize": "21474836480",
                    "imageID": IMG_ID},
            "sdc": {"readRate": "0.0", "writeRate": "0.0", "readOps": "1",
                    "writeOps": "0", "readBytes": "30", "writtenBytes": "0",
                    "readLatency": "0", "writeLatency": "0", "flushLatency": "0",
                    "truesize": "0", "apparentsize": "0"},
        },
        "network": {"vnet3": {"name": "vnet3", "macAddr": "56:6f:1a:2b:00:07",
                              "speed": "1000", "state": "unknown", "rx": "8816237",
                              "tx": "1220331", "rxErrors": "0", "txErrors": "0",
                              "rxDropped": "14", "txDropped": "0",
                              "sampleTime": 5123.47}},
        "vmJobs": {},
        "ioTune": [],
        "guestFQDN": "web01.example.org",
        "guestIPs": "192.0.2.15",
        "username": "None",
        "session": "Unknown",
        "appsList": ["kernel-5.14.0-362.el9", "qemu-guest-agent-8.0.0"],
        "netIfaces": [{"name": "eth0", "hw": "56:6f:1a:2b:00:07",
                       "inet": ["192.0.2.15"], "inet6": ["fe80::546f:1aff:fe2b:7"]}],
        "disksUsage": [{"path": "/", "fs": "xfs", "total": "21464350720", "used": "3174633472"}],
        "guestCPUCount": 2,
        "guestOsInfo": {"type": "linux", "arch": "x86_64", "version": "9.2"},
        "guestTimezone": {"zone": "UTC", "offset": 0},
    }


def down_vm_stats() -> dict:
    return {
        "vmId": VM_ID_2,
        "status": "Down",
        "statusTime": "2152861022",
        "exitCode": 0,
        "exitMessage": "User shut down from within the guest",
        "exitReason": 7,
        "timeOffset": "0",
    }


def host_stats() -> dict:
    return {
        "cpuUser": "3.12", "cpuSys": "1.07", "cpuIdle": "95.81", "cpuLoad": "0.42",
        "cpuUserVdsmd": "0.80", "cpuSysVdsmd": "0.27", "elapsedTime": "86402.17",
        "memUsed": "23", "anonHugePages": "1834",
        "memAvailable": 47118, "memCommitted": 8192, "memFree": 49166,
        "swapTotal": 8191, "swapFree": 8191,
        "vmCount": 3, "vmActive": 2, "vmMigrating": 0,
        "incomingVmMigrations": 0, "outgoingVmMigrations": 0,
        "dateTime": "2024-05-14T09:31:07 GMT", "momStatus": "active",
        "netConfigDirty": "False",
        "haStats": {"configured": False, "active": False, "score": 0,
                    "globalMaintenance": False, "localMaintenance": False},
        "storageDomains": {SD_ID: {"code": 0, "lastCheck": "3.8", "delay": "0.000412",
                                   "valid": True, "acquired": True, "actual": True,
                                   "version": 5}},
        "ksmState": False, "ksmPages": 100, "ksmCpu": 0, "ksmMergeAcrossNodes": True,
        "memShared": 0,
        "network": {"eno1": {"name": "eno1", "state": "up", "speed": "1000",
                             "duplex": "full", "rx": "93384221003", "tx": "5529337120",
                             "rxErrors": "0", "txErrors": "0", "rxDropped": "2117",
                             "txDropped": "0", "sampleTime": 1715679066.91}},
        "bootTime": "1715592650", "thpState": "always",
        "cpuStatistics": {"0": {"nodeIndex": 0, "cpuUser": "4.01", "cpuSys": "1.33",
                                "cpuIdle": "94.66"}},
        "numaNodeMemFree": {"0": {"memFree": "49166", "memPercent": 23}},
        "multipathHealth": {}, "v2vJobs": {}, "hugepages": {},
    }


def capabilities() -> dict:
    return {
        "kvmEnabled": "true", "cpuCores": "8", "cpuThreads": "16", "cpuSockets": "1",
        "onlineCpus": "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "cpuSpeed": "3399.998", "cpuModel": "Intel(R) Xeon(R) E-2278G CPU @ 3.40GHz",
        "cpuFlags": "fpu,vme,de,pse,tsc,msr,pae,vmx,model_Skylake-Server,model_Cascadelake-Server",
        "cpuTopology": [{"cpu_id": 0, "numa_cell_id": 0, "socket_id": 0, "die_id": 0,
                         "core_id": 0}],
        "vdsmToCpusAffinity": [1],
        "memSize": "64018", "reservedMem": "321", "guestOverhead": "65",
        "software_version": "4.50.3", "software_revision": "4", "version_name": "Snow Man",
        "supportedENGINEs": ["4.2", "4.3", "4.4", "4.5"],
        "clusterLevels": ["4.2", "4.3", "4.4", "4.5", "4.6", "4.7"],
        "packages2": {"kernel": {"version": "5.14.0", "release": "362.el9"},
                      "qemu-kvm": {"version": "8.0.0", "release": "16.el9"},
                      "libvirt": {"version": "9.5.0", "release": "7.el9"},
                      "vdsm": {"version": "4.50.3", "release": "4.el9"}},
        "operatingSystem": {"name": "RHEL", "version": "9", "release": "2.el9",
                            "pretty_name": "CentOS Stream 9"},
        "uuid": "7a1f3c92-5b0d-4e8c-a6f4-1d2b3c4e5f60",
        "emulatedMachines": ["pc-q35-rhel9.2.0", "q35", "pc-i440fx-rhel7.6.0"],
        "vmTypes": ["kvm"],
        "numaNodes": {"0": {"cpus": list(range(16)), "totalMemory": "64018",
                            "hugepages": {"4": {"totalPages": "16388864"}}}},
        "numaNodeDistance": {"0": [10]},
        "autoNumaBalancing": 1,
        "hooks": {},
        "networks": {"ovirtmgmt": {"iface": "ovirtmgmt", "bridged": True, "mtu": "1500"}},
        "bridges": {"ovirtmgmt": {"ports": ["eno1"], "stp": "off", "mtu": "1500"}},
        "nics": {"eno1": {"hwaddr": "3c:ec:ef:10:20:30", "speed": 1000, "mtu": "1500"}},
        "bondings": {}, "vlans": {},
        "nameservers": ["192.0.2.53"], "supportsIPv6": True,
        "netConfigDirty": "False", "lastClientIface": "ovirtmgmt",
        "ISCSIInitiatorName": "iqn.1994-05.com.redhat:5f1e2d3c4b5a",
        "HBAInventory": {"iSCSI": [{"InitiatorName": "iqn.1994-05.com.redhat:5f1e2d3c4b5a"}],
                         "FC": []},
        "selinux": {"mode": "1"},
        "rngSources": ["random", "hwrng"],
        "liveSnapshot": "true", "liveMerge": "true", "kdumpStatus": 0,
        "hostdevPassthrough": "false", "additionalFeatures": ["libgfapi_supported"],
        "kernelArgs": "BOOT_IMAGE=(hd0,msdos1)/vmlinuz root=/dev/mapper/cs-root ro",
        "realtimeKernel": False, "nestedVirtualization": False,
        "hostedEngineDeployed": False, "hugepages": [1048576, 2048],
        "kernelFeatures": {"SPECTRE_V2": "(Mitigation: Enhanced IBRS)"},
        "vncEncrypted": False, "backupEnabled": True, "coldBackupEnabled": True,
        "clearBitmapsEnabled": True, "fipsEnabled": False,
        "boot_uuid": "4c9ab7e0-3f21-4d58-9e6a-b0c1d2e3f405",
        "tscFrequency": "3399998000", "tscScaling": False,
        "domain_versions": [0, 2, 3, 4, 5],
        "supported_block_size": {"FCP": [512], "NFS": [512], "ISCSI": [512]},
        "deferred_preallocation": True, "cd_change_pdiv": True,
        "refresh_disk_supported": True, "ovnConfigured": False,
    }


# ------------------------------------------------------------- verb shapes
def test_schema_holds_exactly_the_expected_verbs(schema):
    assert set(schema.verbs) == set(EXPECTED_VERBS)


@pytest.mark.parametrize("name", sorted(EXPECTED_VERBS))
def test_param_names_order_and_defaults_match_vdsm(schema, name):
    verb = schema.verbs[name]
    assert [(p.name, p.default) for p in verb.params] == EXPECTED_VERBS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_VERBS))
def test_param_python_names_are_identifiers(schema, name):
    pynames = [p.pyname for p in schema.verbs[name].params]
    for py in pynames:
        assert py.isidentifier() and not keyword.iskeyword(py), py
    assert len(set(pynames)) == len(pynames)


def test_python_names_of_vdsm_params(schema):
    names = {p.name: p.pyname for v in schema.verbs.values() for p in v.params}
    assert names["vmID"] == "vm_id"
    assert names["gracefulAttempts"] == "graceful_attempts"
    assert names["onlyUUID"] == "only_uuid"
    assert names["existingConnAction"] == "existing_conn_action"


def test_verbs_without_result_are_exactly_the_true_ones(schema):
    assert {n for n, v in schema.verbs.items() if v.returns is None} == NO_RESULT_VERBS


def test_every_verb_documents_version_and_text(schema):
    for v in schema.verbs.values():
        assert v.added and v.description, v.name
        assert all(p.description for p in v.params), v.name
        assert all(isinstance(e, int) for e in v.errors)


def test_vm_status_values_are_vdsm_strings(schema):
    assert set(schema.types["VmStatus"].values) == VDSM_VM_STATUSES


def test_yaml_entries_have_only_known_keys():
    """Catches a comma inside an unquoted flow-mapping description."""
    allowed = {"name", "type", "description", "optional", "default", "added", "pyname"}
    for path in sorted(Path(SCHEMA_DIR).glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        entries = [p for t in (doc.get("types") or {}).values()
                   for p in (t.get("properties") or [])]
        entries += [p for v in (doc.get("verbs") or {}).values() for p in (v.get("params") or [])]
        for e in entries:
            assert set(e) <= allowed, (path.name, e)
            assert isinstance(e.get("description"), str) and e["description"], (path.name, e)


def test_list_and_map_results(schema):
    assert schema.verbs["VM.getStats"].returns == ListOf("VmStats")
    assert schema.verbs["Host.getAllVmStats"].returns == ListOf("VmStats")
    assert schema.verbs["Host.getVMList"].returns == ListOf("VmListEntry")
    assert schema.verbs["Host.dumpxmls"].returns == "DomainXmlMap"


def test_vm_stats_objects_are_open(schema):
    for name in ("VmStats", "HostStats", "VdsmCapabilities", "VmParameters",
                 "VmStatusEventDetails"):
        assert schema.types[name].open, name


# ----------------------------------------------------------------- results
def test_running_and_down_vm_stats_pass(validator, schema):
    ok(validator, schema, "VM.getStats", [running_vm_stats()])
    ok(validator, schema, "VM.getStats", [down_vm_stats()])
    ok(validator, schema, "Host.getAllVmStats", [running_vm_stats(), down_vm_stats()])
    ok(validator, schema, "Host.getAllVmStats", [])


def test_vm_stats_allow_extra_members(validator, schema):
    stats = running_vm_stats()
    stats["vNodeRuntimeInfo"] = {"0": [0, 1]}
    ok(validator, schema, "VM.getStats", [stats])


@pytest.mark.parametrize("mutate", [
    lambda s: s.update(cpuUser=1.42),                       # must be a string
    lambda s: s.update(status="Running"),                   # not a vdsm status
    lambda s: s.update(status="Saving state"),              # vdsm says "Saving State"
    lambda s: s.pop("vmId"),
    lambda s: s.pop("statusTime"),
    lambda s: s.update(statusTime=2152843657),              # a string on the wire
    lambda s: s.update(monitorResponse=-1),
    lambda s: s.update(displayInfo={"type": "vnc"}),        # a list of objects
    lambda s: s["displayInfo"][0].update(port=5900),
    lambda s: s["disks"]["vda"].update(readRate=0.0),
    lambda s: s["network"]["vnet3"].update(rx=8816237),
    lambda s: s.update(balloonInfo={"balloon_cur": 4194304}),
    lambda s: s.update(guestCPUCount="2"),
])
def test_wrong_running_vm_stats_fail(validator, schema, mutate):
    stats = running_vm_stats()
    mutate(stats)
    bad(validator, schema, "VM.getStats", [stats])


def test_vm_stats_must_be_a_list(validator, schema):
    bad(validator, schema, "VM.getStats", running_vm_stats())


@pytest.mark.parametrize("mutate", [
    lambda s: s.update(exitCode="0"),
    lambda s: s.update(exitReason="user shutdown"),
    lambda s: s.pop("vmId"),
])
def test_wrong_down_vm_stats_fail(validator, schema, mutate):
    stats = down_vm_stats()
    mutate(stats)
    bad(validator, schema, "VM.getStats", [stats])


def test_host_stats_pass(validator, schema):
    ok(validator, schema, "Host.getStats", host_stats())
    minimal = host_stats()
    for key in ("network", "ksmState", "ksmPages", "ksmCpu", "ksmMergeAcrossNodes",
                "memShared", "cpuStatistics", "numaNodeMemFree", "bootTime"):
        del minimal[key]
    ok(validator, schema, "Host.getStats", minimal)


@pytest.mark.parametrize("mutate", [
    lambda s: s.update(cpuIdle=95.81),
    lambda s: s.update(memFree="49166"),
    lambda s: s.update(vmCount="3"),
    lambda s: s.pop("storageDomains"),
    lambda s: s["storageDomains"][SD_ID].update(valid="true"),
    lambda s: s["storageDomains"][SD_ID].update(delay=0.000412),
    lambda s: s["network"]["eno1"].update(tx=5529337120),
])
def test_wrong_host_stats_fail(validator, schema, mutate):
    stats = host_stats()
    mutate(stats)
    bad(validator, schema, "Host.getStats", stats)


def test_capabilities_pass(validator, schema):
    ok(validator, schema, "Host.getCapabilities", capabilities())


@pytest.mark.parametrize("mutate", [
    lambda c: c.update(cpuCores=8),
    lambda c: c.update(kvmEnabled=True),
    lambda c: c.update(memSize=64018),
    lambda c: c.update(clusterLevels="4.7"),
    lambda c: c.pop("software_version"),
    lambda c: c["numaNodes"]["0"].update(totalMemory=64018),
    lambda c: c["packages2"]["vdsm"].pop("version"),
])
def test_wrong_capabilities_fail(validator, schema, mutate):
    caps = capabilities()
    mutate(caps)
    bad(validator, schema, "Host.getCapabilities", caps)


def test_small_results(validator, schema):
    short = {"vmId": VM_ID, "status": "WaitForLaunch", "statusTime": "2152800001"}
    ok(validator, schema, "VM.create", short)
    ok(validator, schema, "VM.pause", {"vmList": {}})
    ok(validator, schema, "VM.cont", {"vmList": {}})
    ok(validator, schema, "VM.setBalloonTarget", {"code": 0, "message": "Done"})
    ok(validator, schema, "Host.getVMList", [short, {"vmId": VM_ID_2, "status": "Down"}])
    ok(validator, schema, "Host.getVMList", [VM_ID, VM_ID_2])
    ok(validator, schema, "Host.getVMFullList", [short])
    ok(validator, schema, "Host.dumpxmls", {VM_ID: "<domain type='kvm'>...</domain>"})
    ok(validator, schema, "Host.dumpxmls", {})
    ok(validator, schema, "Host.getHardwareInfo",
       {"systemManufacturer": "Supermicro", "systemProductName": "SYS-5019C-M",
        "systemVersion": "0123456789", "systemSerialNumber": "S123456X9",
        "systemUUID": "00000000-0000-0000-0000-ac1f6b123456", "systemFamily": "SMC X11"})
    ok(validator, schema, "Host.getHardwareInfo", {})


def test_small_wrong_results_fail(validator, schema):
    bad(validator, schema, "VM.create", {"vmId": VM_ID})
    bad(validator, schema, "VM.pause", True)
    bad(validator, schema, "VM.pause", {"vmList": {}, "status": "Paused"})
    bad(validator, schema, "VM.setBalloonTarget", True)
    bad(validator, schema, "Host.getVMList", {"vmList": []})
    bad(validator, schema, "Host.getVMList", [{"vmId": VM_ID}])
    bad(validator, schema, "Host.dumpxmls", [{VM_ID: "<domain/>"}])
    bad(validator, schema, "Host.dumpxmls", {VM_ID: None})
    bad(validator, schema, "Host.getHardwareInfo", {"systemUUID": 7})


def test_verbs_without_return_must_answer_true(validator, schema):
    for name in NO_RESULT_VERBS:
        validator.check_result(schema.verbs[name], True)
        with pytest.raises(ValidationError):
            validator.check_result(schema.verbs[name], {"status": {"code": 0}})


# ------------------------------------------------------------------ params
def test_engine_style_calls_bind(validator, schema):
    v = schema.verbs
    kw = validator.bind_params(v["VM.shutdown"], {"vmID": VM_ID, "delay": "30",
                                                  "message": "System going down",
                                                  "reboot": False})
    assert kw == {"vm_id": VM_ID, "delay": "30", "message": "System going down",
                  "reboot": False, "timeout": None, "force": False}
    assert validator.bind_params(v["VM.destroy"], {"vmID": VM_ID}) == {
        "vm_id": VM_ID, "graceful_attempts": 1}
    assert validator.bind_params(v["Host.getVMList"], {"vmList": [], "onlyUUID": False}) == {
        "full_status": False, "vm_list": [], "only_uuid": False}
    kw = validator.bind_params(v["VM.setTicket"], {
        "vmID": VM_ID, "password": "s3cr3t", "ttl": "120", "existingConnAction": "disconnect",
        "params": {"userName": "admin", "userId": None, "consoleDisconnectAction": "LOCK_SCREEN"}})
    assert kw["ttl"] == "120" and kw["existing_conn_action"] == "disconnect"
    kw = validator.bind_params(v["VM.create"], {"vmID": VM_ID, "vmParams": {
        "vmId": VM_ID, "xml": "<domain type='kvm'/>", "memSize": 4096, "smp": "2",
        "vmName": "web01", "display": "vnc", "launchPaused": "false", "custom": {}}})
    assert kw["vm_params"]["xml"].startswith("<domain")
    # positional, as vdsm's python client may send
    assert validator.bind_params(v["VM.destroy"], [VM_ID, 3]) == {
        "vm_id": VM_ID, "graceful_attempts": 3}
    assert validator.bind_params(v["Host.ping2"], {}) == {}


@pytest.mark.parametrize("verb,params", [
    ("VM.destroy", {}),
    ("VM.destroy", {"vmId": VM_ID}),                          # vmID, not vmId
    ("VM.destroy", {"vmID": VM_ID, "gracefulAttempts": -1}),
    ("VM.create", {"vmID": VM_ID, "vmParams": {"vmId": VM_ID}}),   # no xml
    ("VM.create", {"vmID": VM_ID, "vmParams": "<domain/>"}),
    ("VM.shutdown", {"vmID": VM_ID, "reboot": "yes"}),
    ("VM.setBalloonTarget", {"vmID": VM_ID, "target": "lots"}),
    ("VM.setTicket", {"vmID": VM_ID, "password": "x", "ttl": 120}),
    ("Host.getVMList", {"vmList": VM_ID}),
    ("Host.ping2", {"extra": 1}),
])
def test_bad_params_are_rejected(validator, schema, verb, params):
    with pytest.raises(JsonRpcError):
        validator.bind_params(schema.verbs[verb], copy.deepcopy(params))


# ------------------------------------------------------------------ events
def test_vm_status_event(validator, schema):
    event = schema.events["|virt|VM_status|<vmId>"]
    up = {"notify_time": 4297311201,
          VM_ID: {"status": "Up", "hash": "-6187354213098763513", "cpuUser": "0.00",
                  "monitorResponse": "0", "elapsedTime": "12", "pauseCode": "NOERR",
                  "displayInfo": [{"type": "spice", "port": "5900", "tlsPort": "5901",
                                   "ipAddress": "0"}]}}
    down = {"notify_time": 4297319877,
            VM_ID: {"status": "Down", "vmId": VM_ID, "exitCode": 1,
                    "exitMessage": "Lost connection with qemu process", "exitReason": 2}}
    for params in (up, down):
        validator.check(event.params, params, "params")
        validator.check("VmStatusEventDetails", params[VM_ID], "params." + VM_ID)
    with pytest.raises(ValidationError):
        validator.check(event.params, {VM_ID: {"status": "Up"}}, "params")
    with pytest.raises(ValidationError):
        validator.check(event.params, {"notify_time": "4297311201"}, "params")
    with pytest.raises(ValidationError):
        validator.check("VmStatusEventDetails", {"exitCode": 0}, "details")
    with pytest.raises(ValidationError):
        validator.check("VmStatusEventDetails", {"status": "Down", "exitReason": "2"}, "d")

# (ov) OVA verbs: ov's own (oVirt runs Ansible scripts on the host instead).
EXPECTED_VERBS.update({
    "OVA.query": [("ovaPath", _R)],
    "OVA.measure": [(_SD, _R), (_IMG, _R), (_VOL, _R)],
    "OVA.export": [("ovaPath", _R), ("ovf", _R), ("disks", _R), ("entity", "vm")],
    "OVA.importDisk": [("ovaPath", _R), ("member", _R), (_SD, _R), (_IMG, _R), (_VOL, _R)],
})
