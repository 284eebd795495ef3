"""Vm: vdsm status strings, stats built from two samples, event bodies."""

from __future__ import annotations

from ovagent.virt.hypervisor import DomainSample, DomainState
from ovagent.virt.vm import ExitInfo, ExitReason, Vm, VmStatus, vdsm_time_ms
from tests.fixtures.agent import check_result, domain_xml, new_vm_id

NIC_DISK = ("<interface type='bridge'><mac address='00:1a:4a:16:01:51'/>"
            "<target dev='vnet7'/></interface>"
            "<disk type='file' device='disk'><source file='/x.img'/>"
            "<target dev='vda' bus='virtio'/></disk>")


def make_vm(**kwargs: object) -> Vm:
    vm_id = new_vm_id()
    return Vm(vm_id, {}, domain_xml("fake", "vm1", vm_id, devices=NIC_DISK, vcpus=2,
                                    memory_mib=1024), **kwargs)  # type: ignore[arg-type]


def sample(vm: Vm, cpu_s: float, rx: int, rd: int, rd_reqs: int, rd_times: int) -> DomainSample:
    s = DomainSample(vm.id, DomainState.RUNNING, cpu_time_ns=int(cpu_s * 1e9),
                     cpu_user_ns=int(cpu_s * 0.6e9), cpu_system_ns=int(cpu_s * 0.2e9), vcpus=2,
                     balloon_current_kib=1024 * 1024, balloon_maximum_kib=1024 * 1024,
                     memory_stats={"unused": 256 * 1024, "available": 1024 * 1024})
    s.net["vnet7"] = {"rx_bytes": rx, "tx_bytes": rx // 2, "rx_pkts": 0, "tx_pkts": 0,
                      "rx_errs": 0, "tx_errs": 0, "rx_drop": 0, "tx_drop": 0}
    s.block["vda"] = {"rd_reqs": rd_reqs, "wr_reqs": 0, "rd_bytes": rd, "wr_bytes": 0,
                      "rd_times": rd_times, "wr_times": 0, "allocation": 5, "capacity": 10,
                      "physical": 5}
    return s


def test_rates_from_two_samples() -> None:
    vm = make_vm(status=VmStatus.UP)
    vm.absorb_sample(sample(vm, 10.0, 1000, 0, 0, 0), now=100.0)
    first = vm.stats()
    assert (first["cpuUser"], first["cpuSys"]) == ("0.00", "0.00")
    # 10 s later: 5 more CPU seconds on 2 vCPUs = 25 %, 60/20 user/sys of it
    vm.absorb_sample(sample(vm, 15.0, 21000, 40960, 10, 10 * 300_000), now=110.0)
    s = vm.stats()
    check_result("VM.getStats", [s])
    assert s["cpuUsage"] == str(int(15e9))
    assert float(s["cpuSys"]) == 5.0
    assert float(s["cpuUser"]) == 20.0  # total minus system: TCG time counts as guest
    assert s["memUsage"] == "75"
    assert s["vcpuCount"] == "2"
    assert s["network"]["vnet7"]["rxRate"] == "2000.0"
    assert s["network"]["vnet7"]["macAddr"] == "00:1a:4a:16:01:51"
    assert s["disks"]["vda"]["readRate"] == "4096.0"
    assert s["disks"]["vda"]["readLatency"] == "300000"
    assert s["balloonInfo"]["balloon_max"] == str(1024 * 1024)


def test_status_time_is_when_the_record_was_built() -> None:
    vm = make_vm(status=VmStatus.UP)
    vm.status_time_ms = 1  # long ago
    before = vdsm_time_ms()
    assert int(vm.stats()["statusTime"]) >= before
    assert int(vm.short_status()["statusTime"]) >= before


def test_down_vm_reports_exit_info_only() -> None:
    vm = make_vm(status=VmStatus.UP)
    assert vm.set_status(VmStatus.DOWN, ExitInfo(1, "VM crashed", ExitReason.GENERIC_ERROR))
    s = vm.stats()
    check_result("VM.getStats", [s])
    assert (s["exitCode"], s["exitMessage"], s["exitReason"]) == (1, "VM crashed", 1)
    assert "elapsedTime" not in s and "cpuUser" not in s
    event = vm.status_event()
    assert event["status"] == "Down" and event["exitReason"] == 1


def test_set_status_reports_changes_only() -> None:
    vm = make_vm()
    assert vm.status is VmStatus.WAIT_FOR_LAUNCH and not vm.status.running
    assert vm.set_status(VmStatus.UP)
    assert not vm.set_status(VmStatus.UP)
    assert vm.status.running


def test_balloon_target_is_reported_at_once() -> None:
    vm = make_vm(status=VmStatus.UP)
    vm.absorb_sample(sample(vm, 1.0, 0, 0, 0, 0), now=1.0)
    vm.set_balloon_target(512 * 1024)
    assert vm.stats()["balloonInfo"]["balloon_target"] == str(512 * 1024)


def test_definition_and_display() -> None:
    vm = make_vm(status=VmStatus.UP)
    d = vm.definition()
    assert d["memSize"] == 1024 and d["smp"] == "2" and d["vmName"] == "vm1"
    assert vm.stats()["displayInfo"] == [
        {"type": "vnc", "port": "-1", "tlsPort": "-1", "ipAddress": "127.0.0.1"}]
