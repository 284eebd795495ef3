"""Storage through the official SDK (ovirtsdk4, unchanged) against a running
engine with two storage hosts: add a POSIX domain and attach it to the data
center, a floating disk, a VM with a new disk given inline (as the SDK's
add_vm_disk.py does) and the floating one attached, a template from the VM,
VMs from the template (thin, and clone=true), removals; plus the REST
faults and permissions of the new routes."""

from __future__ import annotations

import os
from typing import Any

import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest

from ovengine.aaa.permits import USER_ROLE_ID, SYSTEM_OBJECT_ID
from tests.fixtures.engine import EngineFactory
from tests.fixtures.engine_storage import (STORAGE_ENGINE, image_dir, require_storage,
                                           storage_hosts)
from tests.fixtures.rest import add_user, client_for, grant
from tests.integration.rest.test_sdk import connect, in_thread, sdk_wait

GiB = 1024 ** 3


async def test_sdk_storage_flow(engines: EngineFactory) -> None:
    require_storage()
    engine = await engines.start(serve_api=True, storage=STORAGE_ENGINE)
    hosts = await storage_hosts(engines, engine, 2)
    shared = engines.base / "shared"
    shared.mkdir()
    conn = connect(engine)
    try:
        system = conn.system_service()
        sds = system.storage_domains_service()
        sd = await in_thread(sds.add, types.StorageDomain(
            name="data", type=types.StorageDomainType.DATA,
            host=types.Host(name=hosts[0].name),
            storage=types.HostStorage(type=types.StorageType.POSIXFS, path=str(shared),
                                      vfs_type="none")))
        assert sd.status == types.StorageDomainStatus.UNATTACHED
        assert sd.storage.type == types.StorageType.POSIXFS and sd.storage.path == str(shared)
        assert (shared / sd.id / "dom_md" / "metadata").exists()

        dcs = system.data_centers_service()
        (dc,) = await in_thread(dcs.list, search="name=Default")
        assert dc.status == types.DataCenterStatus.UNINITIALIZED
        attached = dcs.data_center_service(dc.id).storage_domains_service()
        got = await in_thread(attached.add, types.StorageDomain(id=sd.id))
        assert got.id == sd.id
        await sdk_wait(lambda: attached.storage_domain_service(sd.id).get().status
                       == types.StorageDomainStatus.ACTIVE, 120, "domain active")
        await sdk_wait(lambda: dcs.data_center_service(dc.id).get().status
                       == types.DataCenterStatus.UP, 60, "data center up")
        listed = await in_thread(attached.list)
        assert [(d.id, d.master) for d in listed] == [(sd.id, True)]

        # a floating disk
        disks = system.disks_service()
        disk = await in_thread(disks.add, types.Disk(
            name="floating", format=types.DiskFormat.RAW, sparse=True, provisioned_size=GiB,
            storage_domains=[types.StorageDomain(name="data")]))
        assert disk.status in (types.DiskStatus.LOCKED, types.DiskStatus.OK)
        await sdk_wait(lambda: disks.disk_service(disk.id).get().status
                       == types.DiskStatus.OK, 60, "disk ok")
        got_disk = await in_thread(disks.disk_service(disk.id).get)
        assert got_disk.format == types.DiskFormat.RAW and got_disk.provisioned_size == GiB
        assert got_disk.storage_domains[0].id == sd.id

        # a VM with a new disk given inline (the SDK's add_vm_disk.py) and the floating one
        vms = system.vms_service()
        vm = await in_thread(vms.add, types.Vm(
            name="sdk-stor", memory=128 * 2**20, cluster=types.Cluster(name="Default"),
            template=types.Template(name="Blank")))
        vm_service = vms.vm_service(vm.id)
        das = vm_service.disk_attachments_service()
        att = await in_thread(das.add, types.DiskAttachment(
            disk=types.Disk(name="boot", format=types.DiskFormat.COW, provisioned_size=GiB,
                            storage_domains=[types.StorageDomain(name="data")]),
            interface=types.DiskInterface.VIRTIO, bootable=True, active=True))
        await sdk_wait(lambda: disks.disk_service(att.disk.id).get().status
                       == types.DiskStatus.OK, 60, "new VM disk ok")
        await in_thread(das.add, types.DiskAttachment(
            disk=types.Disk(id=disk.id), interface=types.DiskInterface.VIRTIO_SCSI,
            bootable=False, active=True))
        listed_att = await in_thread(das.list)
        assert {(a.disk.id, a.interface, a.bootable) for a in listed_att} == {
            (att.disk.id, types.DiskInterface.VIRTIO, True),
            (disk.id, types.DiskInterface.VIRTIO_SCSI, False)}
        await in_thread(vm_service.start)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.UP, 30, "VM up")
        await in_thread(vm_service.stop)
        await sdk_wait(lambda: vm_service.get().status == types.VmStatus.DOWN, 30, "VM down")
        # detach (the default): the disk stays, floating
        await in_thread(das.attachment_service(disk.id).remove)
        assert await in_thread(disks.disk_service(disk.id).get)

        # a template from the VM, then VMs from it
        templates = system.templates_service()
        tpl = await in_thread(templates.add, types.Template(name="sdk-tpl",
                                                            vm=types.Vm(id=vm.id)))
        assert tpl.status in (types.TemplateStatus.LOCKED, types.TemplateStatus.OK)
        await sdk_wait(lambda: templates.template_service(tpl.id).get().status
                       == types.TemplateStatus.OK, 120, "template ok")
        tpl_atts = await in_thread(templates.template_service(tpl.id)
                                   .disk_attachments_service().list)
        assert len(tpl_atts) == 1
        tpl_disk = await in_thread(disks.disk_service(tpl_atts[0].disk.id).get)

        thin = await in_thread(vms.add, types.Vm(
            name="sdk-thin", cluster=types.Cluster(name="Default"),
            template=types.Template(name="sdk-tpl")))
        clone = await in_thread(vms.add, types.Vm(
            name="sdk-clone", cluster=types.Cluster(name="Default"),
            template=types.Template(id=tpl.id),
            disk_attachments=[types.DiskAttachment(disk=types.Disk(
                id=tpl_disk.id, format=types.DiskFormat.RAW, sparse=True))]), clone=True)
        for v in (thin, clone):
            await sdk_wait(lambda v=v: vms.vm_service(v.id).get().status
                           == types.VmStatus.DOWN, 120, f"{v.name} created")
        formats = {}
        for v in (thin, clone):
            (a,) = await in_thread(vms.vm_service(v.id).disk_attachments_service().list)
            d = await in_thread(disks.disk_service(a.disk.id).get)
            assert d.status == types.DiskStatus.OK and d.provisioned_size == GiB
            formats[v.name] = d.format
        assert formats == {"sdk-thin": types.DiskFormat.COW, "sdk-clone": types.DiskFormat.RAW}

        with pytest.raises(sdk.Error) as err:  # VMs use it
            await in_thread(templates.template_service(tpl.id).remove)
        assert err.value.code == 409
        (thin_att,) = await in_thread(vms.vm_service(thin.id).disk_attachments_service().list)
        await in_thread(vms.vm_service(thin.id).remove)
        await sdk_wait(lambda: _gone(disks.disk_service(thin_att.disk.id).get), 60,
                       "thin clone's disk removed")
        assert not image_dir(shared, sd.id, thin_att.disk.id).exists()
        # detach_only keeps the disks as floating disks
        (clone_att,) = await in_thread(vms.vm_service(clone.id).disk_attachments_service().list)
        await in_thread(vms.vm_service(clone.id).remove, detach_only=True)
        assert (await in_thread(disks.disk_service(clone_att.disk.id).get)).status \
            == types.DiskStatus.OK
        await in_thread(disks.disk_service(clone_att.disk.id).remove)
        await sdk_wait(lambda: not image_dir(shared, sd.id, clone_att.disk.id).exists(), 60,
                       "clone's disk removed")
        await in_thread(templates.template_service(tpl.id).remove)
        await sdk_wait(lambda: not templates.list(search="name=sdk-tpl"), 60, "template gone")
        assert not image_dir(shared, sd.id, tpl_disk.id).exists()
        await in_thread(vm_service.remove)
        await in_thread(disks.disk_service(disk.id).remove)
        await sdk_wait(lambda: not disks.list(), 60, "no disks left")
        assert os.listdir(shared / sd.id / "images") == []
    finally:
        await in_thread(conn.close)


def _gone(get: Any) -> bool:
    try:
        get()
    except sdk.NotFoundError:
        return True
    return False


async def test_storage_routes_faults_and_permissions(engines: EngineFactory) -> None:
    engine = await engines.start(serve_api=True)
    client = await client_for(engine)
    try:
        await client.login()
        dc = str(await engine.s.pool.fetchval("SELECT id FROM data_centers WHERE name='Default'"))
        # 400 naming the field
        r = await client.post("/storagedomains", "<storage_domain><name>x</name><host><name>"
                              "nohost</name></host><storage><type>posixfs</type><path>/tmp"
                              "</path></storage></storage_domain>")
        assert r.status == 400 and "host" in r.text
        r = await client.post("/disks", "<disk><name>d</name><provisioned_size>1073741824"
                              "</provisioned_size></disk>")
        assert r.status == 400 and "storage_domains" in r.text
        r = await client.post("/disks", "<disk><provisioned_size>1073741824</provisioned_size>"
                              "<storage_domains><storage_domain><name>nope</name>"
                              "</storage_domain></storage_domains></disk>")
        assert r.status == 400 and "storage_domain" in r.text
        r = await client.post(f"/datacenters/{dc}/storagedomains",
                              '<storage_domain id="00000000-0000-0000-0000-00000000abcd"/>')
        assert r.status == 400
        r = await client.get(f"/datacenters/{dc}/storagedomains")
        assert r.status == 200 and "<storage_domains" in r.text
        r = await client.post("/templates", "<template><name>t</name></template>")
        assert r.status == 400 and "vm" in r.text
        # a user with UserRole (no storage permits) may not add domains or disks
        user = await add_user(engine, "plain")
        await grant(engine, user, USER_ROLE_ID, "system", SYSTEM_OBJECT_ID)
        plain = client.as_user(None)
        await plain.login("plain@internal", "secret-pw")
        r = await plain.post("/storagedomains", "<storage_domain><name>x</name><host><name>h"
                             "</name></host><storage><type>posixfs</type><path>/x</path>"
                             "<vfs_type>none</vfs_type></storage></storage_domain>")
        assert r.status == 403, r.text
        r = await plain.delete("/disks/00000000-0000-0000-0000-00000000abcd")
        assert r.status == 404
    finally:
        await client.session.close()
