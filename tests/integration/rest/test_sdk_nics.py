"""VM network interfaces through the official SDK (ovirtsdk4, unchanged): vNIC
profiles, add/list/update/remove NICs, MACs from the pool, errors as faults,
no change while the VM runs, the NICs in the domain XML the host runs
(libvirt test driver), and NICs carried from a VM to a template (no MAC) and
from the template to new VMs (new MACs)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from ovengine.config import NetworkConfig
from ovengine.domain.macpool import MacPool
from ovengine.domain.topology_commands import AddNetwork
from ovengine.domain.commands import SYSTEM
from tests.fixtures.engine import EngineFactory
from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait


async def test_sdk_vm_nics(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    s = engine.s
    await engines.add_hosts(engine, 1)
    pool = MacPool.parse(s.config.network.mac_pool_ranges)
    dc = await s.pool.fetchval("SELECT id FROM data_centers WHERE name='Default'")
    # A network added by the engine gets its default profile too.
    net2 = (await s.runner.run(AddNetwork(s, SYSTEM, {"name": "net2",
                                                      "data_center_id": dc}))).value
    conn = connect(engine)
    try:
        system = conn.system_service()
        profiles = await in_thread(system.vnic_profiles_service().list)
        by_name = {p.name: p for p in profiles}
        assert set(by_name) == {"ovirtmgmt", "net2"}
        mgmt = by_name["ovirtmgmt"]
        mgmt_net = await in_thread(system.networks_service().list, search="name=ovirtmgmt")
        assert mgmt.network.id == mgmt_net[0].id
        got = await in_thread(system.vnic_profiles_service().profile_service(mgmt.id).get)
        assert got.name == "ovirtmgmt" and got.network.id == mgmt_net[0].id
        of_net2 = await in_thread(system.networks_service().network_service(net2)
                                  .vnic_profiles_service().list)
        assert [p.id for p in of_net2] == [by_name["net2"].id]

        vms = system.vms_service()
        vm = await in_thread(vms.add, types.Vm(
            name="nicvm", memory=128 * 2**20, cluster=types.Cluster(name="Default"),
            template=types.Template(name="Blank")))
        nics = vms.vm_service(vm.id).nics_service()
        nic = await in_thread(nics.add, types.Nic(
            name="nic1", interface=types.NicInterface.VIRTIO,
            vnic_profile=types.VnicProfile(id=mgmt.id)))
        assert (nic.name, nic.interface, nic.plugged, nic.linked) == \
            ("nic1", types.NicInterface.VIRTIO, True, True)
        assert nic.vnic_profile.id == mgmt.id and nic.vm.id == vm.id
        assert pool.contains(nic.mac.address)
        # A second NIC: no profile (the empty profile), e1000, an explicit MAC.
        nic2 = await in_thread(nics.add, types.Nic(
            name="nic2", interface=types.NicInterface.E1000,
            mac=types.Mac(address="56:6F:AA:00:00:02")))
        assert nic2.mac.address == "56:6f:aa:00:00:02" and nic2.vnic_profile is None
        nic3 = await in_thread(nics.add, types.Nic(name="nic3"))
        assert nic3.interface == types.NicInterface.VIRTIO
        assert len({nic.mac.address, nic3.mac.address}) == 2
        assert pool.contains(nic3.mac.address)
        assert [n.name for n in await in_thread(nics.list)] == ["nic1", "nic2", "nic3"]
        assert (await in_thread(nics.nic_service(nic.id).get)).mac.address == nic.mac.address

        # Errors: a name taken (409), a bad MAC (400 naming it), a MAC in use
        # (409), an unknown interface type (400), a profile that does not exist.
        with pytest.raises(sdk.Error) as err:
            await in_thread(nics.add, types.Nic(name="nic1"))
        assert err.value.code == 409 and "nic1" in str(err.value)
        with pytest.raises(sdk.Error) as err:
            await in_thread(nics.add, types.Nic(name="bad", mac=types.Mac(address="zz:1")))
        assert err.value.code == 400 and "mac" in str(err.value)
        with pytest.raises(sdk.Error) as err:
            await in_thread(nics.add, types.Nic(name="dup", mac=types.Mac(
                address=nic.mac.address)))
        assert err.value.code == 409 and nic.mac.address in str(err.value)
        with pytest.raises(sdk.Error) as err:
            await in_thread(nics.add, types.Nic(name="pt",
                                                interface=types.NicInterface.PCI_PASSTHROUGH))
        assert err.value.code == 400 and "interface" in str(err.value)
        with pytest.raises(sdk.Error) as err:
            await in_thread(nics.add, types.Nic(name="np", vnic_profile=types.VnicProfile(
                id=str(uuid.uuid4()))))
        assert err.value.code == 400 and "vnic" in str(err.value).lower()

        # Update: rename, move nic2 to net2 unlinked, nic3 unplugged; remove
        # nic3 afterwards; a MAC another NIC holds is a conflict.
        n2 = nics.nic_service(nic2.id)
        up2 = await in_thread(n2.update, types.Nic(
            name="eth1", vnic_profile=types.VnicProfile(id=by_name["net2"].id), linked=False))
        assert (up2.name, up2.vnic_profile.id, up2.linked, up2.interface) == \
            ("eth1", by_name["net2"].id, False, types.NicInterface.E1000)
        with pytest.raises(sdk.Error) as err:
            await in_thread(n2.update, types.Nic(mac=types.Mac(address=nic.mac.address)))
        assert err.value.code == 409
        with pytest.raises(sdk.Error) as err:
            await in_thread(n2.update, types.Nic(name="nic1"))
        assert err.value.code == 409
        await in_thread(nics.nic_service(nic3.id).remove)
        with pytest.raises(sdk.NotFoundError):
            await in_thread(nics.nic_service(nic3.id).get)
        assert [n.name for n in await in_thread(nics.list)] == ["eth1", "nic1"]
        codes = {r["log_type"] for r in await s.pool.fetch(
            "SELECT log_type FROM audit_log WHERE vm_id = $1", uuid.UUID(vm.id))}
        assert {930, 932, 934} <= codes

        # Start: the domain XML carries both NICs on their bridges.
        vm_service = vms.vm_service(vm.id)
        await in_thread(vm_service.start)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.UP, 30, "VM up")
        host_id = next(iter(s.hosts.hosts))
        xml = (await s.hosts.call(host_id, "Host.dumpxmls", {"vmList": [vm.id]}))[vm.id]
        ifaces = ET.fromstring(xml).findall("devices/interface")
        got_ifaces = sorted(
            (i.find("mac").get("address"), i.get("type"),  # type: ignore[union-attr]
             i.find("source").get("bridge"),  # type: ignore[union-attr]
             i.find("model").get("type"),  # type: ignore[union-attr]
             i.find("link").get("state") if i.find("link") is not None else "up")
            for i in ifaces)
        assert got_ifaces == sorted([
            (nic.mac.address, "bridge", "ovirtmgmt", "virtio", "up"),
            ("56:6f:aa:00:00:02", "bridge", "net2", "e1000", "down")])

        # No hot plug: every change while the VM is up is a 409 naming why.
        for call in (lambda: nics.add(types.Nic(name="hot")),
                     lambda: n2.update(types.Nic(linked=True)),
                     lambda: nics.nic_service(nic.id).remove()):
            with pytest.raises(sdk.Error) as err:
                await in_thread(call)
            assert err.value.code == 409 and "hot plug" in str(err.value)
        await in_thread(vm_service.stop)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.DOWN, 30, "VM down")
        await in_thread(n2.update, types.Nic(linked=True))

        # A template made from the VM (no disks: allowed) carries its NICs
        # without MACs; a VM made from the template gets them with new MACs.
        templates = system.templates_service()
        tpl = await in_thread(templates.add, types.Template(name="nictpl",
                                                            vm=types.Vm(id=vm.id)))
        await sdk_wait(lambda: templates.template_service(tpl.id).get().status
                       == types.TemplateStatus.OK, 30, "template ok")
        tnics = await in_thread(templates.template_service(tpl.id).nics_service().list)
        assert [(n.name, n.interface, n.vnic_profile.id, n.linked, n.mac) for n in tnics] == [
            ("eth1", types.NicInterface.E1000, by_name["net2"].id, True, None),
            ("nic1", types.NicInterface.VIRTIO, mgmt.id, True, None)]
        one = await in_thread(templates.template_service(tpl.id).nics_service()
                              .nic_service(tnics[1].id).get)
        assert one.name == "nic1" and one.mac is None and one.template.id == tpl.id
        with pytest.raises(sdk.NotFoundError):
            await in_thread(templates.template_service(tpl.id).nics_service()
                            .nic_service(nic.id).get)  # the VM's NIC, not the template's
        tpl_links = await in_thread(templates.template_service(tpl.id).get)
        assert [n.name for n in await in_thread(conn.follow_link, tpl_links.nics)] == \
            ["eth1", "nic1"]
        src_macs = {n.mac.address for n in await in_thread(nics.list)}
        for clone in (False, True):
            vm2 = await in_thread(vms.add, types.Vm(
                name=f"fromtpl{int(clone)}", cluster=types.Cluster(name="Default"),
                template=types.Template(name="nictpl")), clone=clone)
            new = await in_thread(vms.vm_service(vm2.id).nics_service().list)
            assert [(n.name, n.interface, n.vnic_profile.id) for n in new] == [
                ("eth1", types.NicInterface.E1000, by_name["net2"].id),
                ("nic1", types.NicInterface.VIRTIO, mgmt.id)]
            for n in new:
                assert pool.contains(n.mac.address) and n.mac.address not in src_macs
                src_macs.add(n.mac.address)
    finally:
        await in_thread(conn.close)


async def test_concurrent_nic_adds_get_distinct_macs(engines: EngineFactory) -> None:
    """Many NICs added at once (on different VMs, so no VM lock serializes
    them) each get their own address; the pool's end is a clear 409."""
    import asyncio

    from ovengine.domain.nic_commands import AddVmNic, NicConfig
    from ovengine.domain.vm_commands import AddVm, VmConfig
    from ovengine.errors import Conflict

    engine = await engines.start(network=NetworkConfig(
        mac_pool_ranges=("56:6f:00:00:00:00-56:6f:00:00:00:07",)))
    s = engine.s
    cluster = str(await s.pool.fetchval("SELECT id FROM clusters WHERE name='Default'"))
    vm_ids = [(await s.runner.run(AddVm(s, SYSTEM, cluster, config=VmConfig(
        name=f"c{i}", memory_mib=64)))).value for i in range(8)]
    await asyncio.gather(*(s.runner.run(AddVmNic(s, SYSTEM, v, NicConfig(name="nic1")))
                           for v in vm_ids))
    macs = [r["mac_address"] for r in await s.pool.fetch("SELECT mac_address FROM "
                                                         "vm_interfaces")]
    assert sorted(macs) == [f"56:6f:00:00:00:0{i}" for i in range(8)]
    with pytest.raises(Conflict, match="exhausted"):
        await s.runner.run(AddVmNic(s, SYSTEM, vm_ids[0], NicConfig(name="nic2")))

    # A VM from a template with a NIC needs a MAC too: with the pool exhausted
    # the creation fails and leaves nothing behind.
    from ovengine.domain.template_commands import AddTemplate

    tpl = (await s.runner.run(AddTemplate(s, SYSTEM, vm_ids[0], "full"))).value
    assert await s.pool.fetchval("SELECT count(*) FROM vm_interfaces WHERE vm_id = $1 AND "
                                 "mac_address IS NULL", uuid.UUID(tpl)) == 1
    with pytest.raises(Conflict, match="exhausted"):
        await s.runner.run(AddVm(s, SYSTEM, cluster, template_id=tpl,
                                 config=VmConfig(name="nomac")))
    assert not await s.pool.fetchval("SELECT 1 FROM vm_static WHERE name = 'nomac'")
    assert await s.pool.fetchval("SELECT count(*) FROM vm_interfaces") == 9
