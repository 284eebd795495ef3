"""Storage verbs (StoragePool.*, StorageDomain.*, Volume.*, Image.*, Task.* and the
Host storage queries): thin handlers from wire params to StorageService."""

from __future__ import annotations

from typing import Any

from protocol.schema import verb

from ..storage import StorageService

__all__ = ["StoragePoolApi", "StorageDomainApi", "VolumeApi", "ImageApi", "TaskApi",
           "HostStorageApi", "storage_apis"]


class StoragePoolApi:
    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("StoragePool.connectStorageServer")
    async def connect_storage_server(self, storagepool_id: str, domain_type: Any,
                                     connection_params: list[dict[str, Any]]
                                     ) -> list[dict[str, Any]]:
        return await self.storage.connect_storage_server(domain_type, connection_params)

    @verb("StoragePool.disconnectStorageServer")
    async def disconnect_storage_server(self, storagepool_id: str, domain_type: Any,
                                        connection_params: list[dict[str, Any]]
                                        ) -> list[dict[str, Any]]:
        return await self.storage.disconnect_storage_server(domain_type, connection_params)

    @verb("StoragePool.create")
    async def create(self, storagepool_id: str, name: str, master_sd_uuid: str,
                     master_version: int, domain_list: list[str],
                     lock_renewal_interval_sec: int, lease_time_sec: int,
                     io_op_timeout_sec: int, lease_retries: int) -> None:
        await self.storage.create_pool(
            storagepool_id, name, master_sd_uuid, master_version, domain_list,
            {"lockRenewalIntervalSec": lock_renewal_interval_sec,
             "leaseTimeSec": lease_time_sec, "ioOpTimeoutSec": io_op_timeout_sec,
             "leaseRetries": lease_retries})

    @verb("StoragePool.connect")
    async def connect(self, storagepool_id: str, host_id: int, scsi_key: str,
                      master_sd_uuid: str, master_version: int,
                      domain_dict: dict[str, str] | None) -> None:
        await self.storage.connect_pool(storagepool_id, host_id, master_sd_uuid,
                                        master_version, domain_dict)

    @verb("StoragePool.disconnect")
    async def disconnect(self, storagepool_id: str, host_id: int, scsi_key: str,
                         remove: bool) -> None:
        await self.storage.disconnect_pool(storagepool_id, host_id)

    @verb("StoragePool.refresh")
    async def refresh(self, storagepool_id: str, master_sd_uuid: str,
                      master_version: int) -> None:
        await self.storage.refresh_pool(storagepool_id, master_sd_uuid, master_version)

    @verb("StoragePool.getInfo")
    async def get_info(self, storagepool_id: str) -> dict[str, Any]:
        return await self.storage.pool_info(storagepool_id)

    @verb("StoragePool.getSpmStatus")
    async def get_spm_status(self, storagepool_id: str) -> dict[str, Any]:
        return await self.storage.spm_status(storagepool_id)

    @verb("StoragePool.spmStart")
    async def spm_start(self, storagepool_id: str, prev_id: int, prev_lver: Any,
                        enable_scsi_fencing: Any, max_host_id: int | None,
                        dom_version: Any) -> str:
        # prevID/prevLver/enableScsiFencing are deprecated in vdsm too: sanlock
        # decides who may take the lease.
        return await self.storage.spm_start(storagepool_id)

    @verb("StoragePool.spmStop")
    async def spm_stop(self, storagepool_id: str) -> None:
        await self.storage.spm_stop(storagepool_id)


class StorageDomainApi:
    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("StorageDomain.create")
    async def create(self, storagedomain_id: str, domain_type: Any, type_args: Any,
                     name: str, domain_class: Any, version: Any, block_size: int,
                     max_hosts: int) -> None:
        await self.storage.create_domain(storagedomain_id, domain_type, type_args, name,
                                         domain_class, version, block_size)

    @verb("StorageDomain.getInfo")
    async def get_info(self, storagedomain_id: str) -> dict[str, Any]:
        return await self.storage.domain_info(storagedomain_id)

    @verb("StorageDomain.getStats")
    async def get_stats(self, storagedomain_id: str) -> dict[str, Any]:
        return await self.storage.domain_stats(storagedomain_id)

    @verb("StorageDomain.getImages")
    async def get_images(self, storagedomain_id: str) -> list[str]:
        return await self.storage.domain_images(storagedomain_id)

    @verb("StorageDomain.getVolumes")
    async def get_volumes(self, storagedomain_id: str, storagepool_id: str,
                          image_id: str) -> list[str]:
        return await self.storage.domain_volumes(storagedomain_id, image_id)

    @verb("StorageDomain.validate")
    async def validate(self, storagedomain_id: str) -> None:
        await self.storage.validate_domain(storagedomain_id)

    @verb("StorageDomain.format")
    async def format(self, storagedomain_id: str, auto_detach: Any) -> None:
        await self.storage.format_domain(storagedomain_id,
                                         str(auto_detach).lower() in ("true", "1"))

    @verb("StorageDomain.attach")
    async def attach(self, storagedomain_id: str, storagepool_id: str) -> None:
        await self.storage.attach_domain(storagedomain_id, storagepool_id)

    @verb("StorageDomain.activate")
    async def activate(self, storagedomain_id: str, storagepool_id: str) -> None:
        await self.storage.activate_domain(storagedomain_id, storagepool_id)

    @verb("StorageDomain.deactivate")
    async def deactivate(self, storagedomain_id: str, storagepool_id: str,
                         master_sd_uuid: str, master_version: int) -> None:
        await self.storage.deactivate_domain(storagedomain_id, storagepool_id,
                                             master_sd_uuid, master_version)

    @verb("StorageDomain.detach")
    async def detach(self, storagedomain_id: str, storagepool_id: str,
                     master_sd_uuid: str | None, master_version: int, force: Any) -> None:
        await self.storage.detach_domain(storagedomain_id, storagepool_id)


class VolumeApi:
    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("Volume.create")
    async def create(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                     image_id: str, size: Any, vol_format: Any, preallocate: Any,
                     disk_type: Any, desc: str, src_img_uuid: str, src_vol_uuid: str,
                     initial_size: Any, add_bitmaps: bool, legal: Any, sequence: int,
                     bitmap: str | None, vol_type: Any = None) -> str:
        return await self.storage.create_volume(
            storagepool_id, storagedomain_id, image_id, volume_id, size, vol_format,
            preallocate, disk_type, desc, src_img_uuid, src_vol_uuid, initial_size, legal,
            vol_type)

    @verb("Volume.delete")
    async def delete(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                     image_id: str, post_zero: Any, force: Any, discard: Any) -> str:
        return await self.storage.delete_volume(storagepool_id, storagedomain_id, image_id,
                                                volume_id, force)

    @verb("Volume.getInfo")
    async def get_info(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                       image_id: str) -> dict[str, Any]:
        return await self.storage.volume_info(storagedomain_id, image_id, volume_id)

    @verb("Volume.getSize")
    async def get_size(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                       image_id: str) -> dict[str, str]:
        return await self.storage.volume_size(storagedomain_id, image_id, volume_id)

    @verb("Volume.extendSize")
    async def extend_size(self, storagepool_id: str, storagedomain_id: str, image_id: str,
                          volume_id: str, new_size: Any) -> str:
        return await self.storage.extend_volume(storagepool_id, storagedomain_id, image_id,
                                                volume_id, new_size)

    @verb("Volume.setLegality")
    async def set_legality(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                           image_id: str, legality: str) -> None:
        await self.storage.set_volume_legality(storagepool_id, storagedomain_id, image_id,
                                               volume_id, legality)

    @verb("Volume.setDescription")
    async def set_description(self, volume_id: str, storagepool_id: str,
                              storagedomain_id: str, image_id: str, description: str) -> None:
        await self.storage.set_volume_description(storagepool_id, storagedomain_id,
                                                  image_id, volume_id, description)

    @verb("Volume.copy")
    async def copy(self, volume_id: str, storagepool_id: str, storagedomain_id: str,
                   image_id: str, dst_sd_uuid: str, dst_img_uuid: str, dst_vol_uuid: str,
                   desc: str, vol_type: Any, vol_format: Any, preallocate: Any,
                   post_zero: Any, force: Any, discard: Any) -> str:
        return await self.storage.copy_volume(
            storagepool_id, storagedomain_id, image_id, volume_id, dst_sd_uuid,
            dst_img_uuid, dst_vol_uuid, desc, vol_type, vol_format, preallocate)


class ImageApi:
    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("Image.getVolumes")
    async def get_volumes(self, image_id: str, storagepool_id: str,
                          storagedomain_id: str) -> list[str]:
        return await self.storage.image_volumes(storagedomain_id, image_id)

    @verb("Image.delete")
    async def delete(self, image_id: str, storagepool_id: str, storagedomain_id: str,
                     post_zero: Any, force: Any, discard: Any) -> str:
        return await self.storage.delete_image(storagepool_id, storagedomain_id, image_id)

    @verb("Image.coldMerge")
    async def cold_merge(self, storagepool_id: str, storagedomain_id: str, image_id: str,
                         base_vol_uuid: str, top_vol_uuid: str) -> str:
        return await self.storage.cold_merge(storagepool_id, storagedomain_id, image_id,
                                             base_vol_uuid, top_vol_uuid)

    @verb("Image.prepare")
    async def prepare(self, storagepool_id: str, storagedomain_id: str, image_id: str,
                      volume_id: str, allow_illegal: bool) -> dict[str, Any]:
        return await self.storage.prepare_image(storagedomain_id, image_id, volume_id,
                                                allow_illegal)

    @verb("Image.teardown")
    async def teardown(self, storagepool_id: str, storagedomain_id: str, image_id: str,
                       volume_id: str | None) -> None:
        await self.storage.teardown_image(storagedomain_id, image_id, volume_id)


class TaskApi:
    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("Task.getStatus")
    async def get_status(self, task_id: str) -> dict[str, Any]:
        return self.storage.tasks.get(task_id).status()

    @verb("Task.getInfo")
    async def get_info(self, task_id: str) -> dict[str, Any]:
        return self.storage.tasks.get(task_id).info()

    @verb("Task.clear")
    async def clear(self, task_id: str) -> None:
        await self.storage.tasks.clear(task_id)

    @verb("Task.stop")
    async def stop(self, task_id: str) -> None:
        await self.storage.tasks.stop(task_id)


class HostStorageApi:
    """Host.* verbs about storage (tasks, domains, pools, monitoring)."""

    def __init__(self, storage: StorageService) -> None:
        self.storage = storage

    @verb("Host.getAllTasksStatuses")
    async def get_all_tasks_statuses(self) -> dict[str, Any]:
        return {r.id: r.status() for r in self.storage.tasks.records.values()}

    @verb("Host.getAllTasksInfo")
    async def get_all_tasks_info(self) -> dict[str, Any]:
        return {r.id: r.info() for r in self.storage.tasks.records.values()}

    @verb("Host.getAllTasks")
    async def get_all_tasks(self) -> dict[str, Any]:
        return {r.id: r.details() for r in self.storage.tasks.records.values()}

    @verb("Host.getStorageDomains")
    async def get_storage_domains(self, storagepool_id: str | None, domain_class: Any,
                                  storage_type: Any, remote_path: str | None) -> list[str]:
        return await self.storage.storage_domains(storagepool_id, domain_class,
                                                  storage_type, remote_path)

    @verb("Host.getConnectedStoragePools")
    async def get_connected_storage_pools(self) -> list[str]:
        return self.storage.connected_pools()

    @verb("Host.getStorageRepoStats")
    async def get_storage_repo_stats(self, domains: list[str]) -> dict[str, Any]:
        return self.storage.domain_vitals(domains)


def storage_apis(storage: StorageService) -> list[object]:
    from ..storage.ova import OvaService
    from .ova import OvaApi

    return [StoragePoolApi(storage), StorageDomainApi(storage), VolumeApi(storage),
            ImageApi(storage), TaskApi(storage), HostStorageApi(storage),
            OvaApi(OvaService(storage))]
