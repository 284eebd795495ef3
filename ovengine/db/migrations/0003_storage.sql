-- Storage: connections, domains in data centers, the SPM's host ids, volumes
-- (oVirt's images), disks and the storage tasks commands wait for.
--
-- Names follow oVirt's schema where it has one (storage_server_connections,
-- storage_pool_iso_map, vds_spm_id_map, images, async_tasks); statuses are
-- the lower-case enum values of the REST model, so the API renders them as
-- stored.

-- ------------------------------------------------------------ connections
-- How hosts reach a domain's storage (StoragePool.connectStorageServer).
CREATE TABLE storage_server_connections (
    id             uuid PRIMARY KEY,
    -- localfs: the directory; nfs: "server:/export"; posixfs: the mount spec
    connection     text NOT NULL,
    storage_type   text NOT NULL CHECK (storage_type IN ('nfs', 'localfs', 'posixfs')),
    vfs_type       text NOT NULL DEFAULT '',
    mount_options  text NOT NULL DEFAULT '',
    nfs_version    text NOT NULL DEFAULT '',
    nfs_retrans    int,
    nfs_timeo      int,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- storage_domains.status is the domain's own status (unattached, or locked
-- while a command works on it); once attached, its status in the data center
-- is in storage_pool_iso_map. data_center_id names that data center.
ALTER TABLE storage_domains
    ADD COLUMN connection_id      uuid REFERENCES storage_server_connections (id)
                                  ON DELETE RESTRICT,
    ADD COLUMN wipe_after_delete  boolean NOT NULL DEFAULT false,
    ADD COLUMN space_checked_at   timestamptz;

-- A domain's status in the data center it is attached to (oVirt's
-- storage_pool_iso_map): active | inactive | maintenance | locked.
CREATE TABLE storage_pool_iso_map (
    storage_domain_id  uuid NOT NULL REFERENCES storage_domains (id) ON DELETE CASCADE,
    data_center_id     uuid NOT NULL REFERENCES data_centers (id) ON DELETE CASCADE,
    status             text NOT NULL DEFAULT 'locked',
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (storage_domain_id, data_center_id)
);
-- A data domain belongs to one data center at a time.
CREATE UNIQUE INDEX storage_pool_iso_map_domain ON storage_pool_iso_map (storage_domain_id);
CREATE INDEX storage_pool_iso_map_dc ON storage_pool_iso_map (data_center_id);

-- ------------------------------------------------------------------- SPM
-- A host's id in a data center's storage pool (sanlock host id, 1..250):
-- given once, kept for as long as the host is in the data center.
CREATE TABLE vds_spm_id_map (
    data_center_id  uuid NOT NULL REFERENCES data_centers (id) ON DELETE CASCADE,
    host_id         uuid NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    vds_spm_id      int NOT NULL CHECK (vds_spm_id BETWEEN 1 AND 250),
    PRIMARY KEY (data_center_id, host_id),
    UNIQUE (data_center_id, vds_spm_id)
);

-- data_centers.spm_host_id (0001) is the host whose getSpmStatus last said
-- "SPM"; NULL while there is none. spm_lver: that SPM lease's version.
ALTER TABLE data_centers
    ADD COLUMN spm_lver        bigint NOT NULL DEFAULT -1,
    ADD COLUMN spm_changed_at  timestamptz,
    ADD CONSTRAINT data_centers_spm_host FOREIGN KEY (spm_host_id) REFERENCES hosts (id)
        ON DELETE SET NULL;

-- ------------------------------------------------------------ disks, volumes
-- disks.id is the image group (vdsm imageID); disks.image_id its active
-- (leaf) volume; disks.status: ok | locked | illegal.
CREATE INDEX disks_storage_domain ON disks (storage_domain_id);
CREATE INDEX disk_attachments_disk ON disk_attachments (disk_id);

-- One row per volume (oVirt's images).
CREATE TABLE images (
    id                  uuid PRIMARY KEY,                 -- volume (vdsm volumeID)
    disk_id             uuid NOT NULL REFERENCES disks (id) ON DELETE CASCADE,
    storage_domain_id   uuid NOT NULL REFERENCES storage_domains (id) ON DELETE RESTRICT,
    -- the parent volume (a template's volume for a thin clone), or the blank id
    parent_id           uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    -- the template volume at the base of the chain, or the blank id (oVirt: it_guid)
    template_volume_id  uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    volume_format       text NOT NULL CHECK (volume_format IN ('cow', 'raw')),
    volume_type         text NOT NULL CHECK (volume_type IN ('sparse', 'preallocated')),
    volume_role         text NOT NULL DEFAULT 'leaf'
                        CHECK (volume_role IN ('leaf', 'internal', 'shared')),
    active              boolean NOT NULL DEFAULT true,
    status              text NOT NULL DEFAULT 'locked'
                        CHECK (status IN ('ok', 'locked', 'illegal')),
    size                bigint NOT NULL,                  -- virtual size, bytes
    actual_size         bigint NOT NULL DEFAULT 0,        -- allocated, bytes
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX images_disk ON images (disk_id);
CREATE INDEX images_template_volume ON images (template_volume_id);

-- ------------------------------------------------------------------ tasks
-- A storage task (an agent task id) a command waits for. The row lives while
-- the command waits; rows left by a crashed engine are finished by the
-- storage manager when the task's host answers again (on_success says what
-- the task's success means: disks to mark ok, disks to forget, a template).
CREATE TABLE async_tasks (
    id              uuid PRIMARY KEY,
    host_id         uuid NOT NULL,
    data_center_id  uuid,
    command_id      uuid NOT NULL,
    command_type    text NOT NULL,
    verb            text NOT NULL,
    on_success      jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX async_tasks_command ON async_tasks (command_id);
