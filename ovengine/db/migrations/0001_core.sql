-- ov engine core schema, after oVirt's data model.
-- Status columns hold the lower-case enum values of the oVirt REST API model
-- (e.g. VmStatus 'powering_up', HostStatus 'non_responsive'), so the API
-- renders them as stored.

-- ---------------------------------------------------------------- topology
CREATE TABLE data_centers (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    description     text NOT NULL DEFAULT '',
    comment         text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'uninitialized',
    local           boolean NOT NULL DEFAULT false,
    compat_major    int NOT NULL DEFAULT 4,
    compat_minor    int NOT NULL DEFAULT 7,
    storage_format  text NOT NULL DEFAULT 'v5',
    quota_mode      text NOT NULL DEFAULT 'disabled',
    spm_host_id     uuid,
    master_version  int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clusters (
    id                    uuid PRIMARY KEY,
    name                  text NOT NULL UNIQUE,
    description           text NOT NULL DEFAULT '',
    comment               text NOT NULL DEFAULT '',
    data_center_id        uuid REFERENCES data_centers (id) ON DELETE RESTRICT,
    cpu_type              text NOT NULL DEFAULT '',
    architecture          text NOT NULL DEFAULT 'x86_64',
    compat_major          int NOT NULL DEFAULT 4,
    compat_minor          int NOT NULL DEFAULT 7,
    memory_overcommit_pct int NOT NULL DEFAULT 100,
    ballooning_enabled    boolean NOT NULL DEFAULT false,
    threads_as_cores      boolean NOT NULL DEFAULT false,
    scheduling_policy     text NOT NULL DEFAULT 'evenly_distributed',
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clusters_dc ON clusters (data_center_id);

-- ------------------------------------------------------------------- hosts
CREATE TABLE hosts (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    description      text NOT NULL DEFAULT '',
    comment          text NOT NULL DEFAULT '',
    address          text NOT NULL,
    port             int NOT NULL DEFAULT 54321,
    cluster_id       uuid NOT NULL REFERENCES clusters (id) ON DELETE RESTRICT,
    -- Enrollment: the engine trusts this host only through this certificate.
    cert_fingerprint text,
    cert_serial      numeric,
    spm_priority     int NOT NULL DEFAULT 5,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hosts_cluster ON hosts (cluster_id);

CREATE TABLE host_dynamic (
    host_id           uuid PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'installing',
    status_detail     text NOT NULL DEFAULT '',
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    -- status to return to after a reconnect (up or maintenance)
    admin_status      text NOT NULL DEFAULT 'up',
    cpu_model         text,
    cpu_cores         int,
    cpu_threads       int,
    cpu_sockets       int,
    cpu_speed_mhz     double precision,
    cpu_flags         text,
    online_cpus       int,
    mem_size_mib      bigint,
    kvm_enabled       boolean,
    software_version  text,
    os_name           text,
    os_version        text,
    kernel_version    text,
    libvirt_version   text,
    qemu_version      text,
    cluster_levels    text[],
    hw_manufacturer   text,
    hw_product        text,
    hw_serial         text,
    hw_uuid           text,
    capabilities      jsonb,
    last_seen_at      timestamptz
);

CREATE TABLE host_statistics (
    host_id            uuid PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    cpu_user           double precision NOT NULL DEFAULT 0,
    cpu_sys            double precision NOT NULL DEFAULT 0,
    cpu_idle           double precision NOT NULL DEFAULT 100,
    cpu_load           double precision NOT NULL DEFAULT 0,
    mem_free_mib       bigint NOT NULL DEFAULT 0,
    mem_available_mib  bigint NOT NULL DEFAULT 0,
    mem_committed_mib  bigint NOT NULL DEFAULT 0,
    mem_used_pct       int NOT NULL DEFAULT 0,
    mem_shared_mib     bigint NOT NULL DEFAULT 0,
    swap_total_mib     bigint NOT NULL DEFAULT 0,
    swap_free_mib      bigint NOT NULL DEFAULT 0,
    ksm_state          boolean NOT NULL DEFAULT false,
    ksm_cpu            double precision NOT NULL DEFAULT 0,
    vm_count           int NOT NULL DEFAULT 0,
    vm_active          int NOT NULL DEFAULT 0,
    vm_migrating       int NOT NULL DEFAULT 0,
    boot_time          bigint NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------ VMs and templates
-- Static configuration of VMs and templates (oVirt's vm_static), one table.
CREATE TABLE vm_static (
    id                      uuid PRIMARY KEY,
    entity_type             text NOT NULL CHECK (entity_type IN ('vm', 'template')),
    name                    text NOT NULL,
    description             text NOT NULL DEFAULT '',
    comment                 text NOT NULL DEFAULT '',
    cluster_id              uuid REFERENCES clusters (id) ON DELETE RESTRICT,
    template_id             uuid REFERENCES vm_static (id) ON DELETE RESTRICT,
    original_template_id    uuid,
    origin                  text NOT NULL DEFAULT 'ovirt',   -- ovirt | external
    memory_mib              int NOT NULL DEFAULT 1024,
    memory_guaranteed_mib   int NOT NULL DEFAULT 1024,
    memory_max_mib          int NOT NULL DEFAULT 4096,
    ballooning              boolean NOT NULL DEFAULT true,
    cpu_sockets             int NOT NULL DEFAULT 1,
    cpu_cores               int NOT NULL DEFAULT 1,
    cpu_threads             int NOT NULL DEFAULT 1,
    os_type                 text NOT NULL DEFAULT 'other',
    vm_type                 text NOT NULL DEFAULT 'server',
    display_type            text NOT NULL DEFAULT 'vnc',
    boot_devices            text[] NOT NULL DEFAULT '{hd}',
    stateless               boolean NOT NULL DEFAULT false,
    delete_protected        boolean NOT NULL DEFAULT false,
    ha_enabled              boolean NOT NULL DEFAULT false,
    ha_priority             int NOT NULL DEFAULT 1,
    preferred_host_id       uuid REFERENCES hosts (id) ON DELETE SET NULL,
    custom_properties       jsonb NOT NULL DEFAULT '{}',
    template_status         text,            -- templates: ok | locked | illegal
    template_version_number int,
    template_version_name   text,
    base_template_id        uuid,
    created_by_user_id      uuid,
    creation_time           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_type, name)
);
CREATE INDEX vm_static_cluster ON vm_static (cluster_id);

-- Runtime state of a VM (oVirt's vm_dynamic), written by monitoring and commands.
CREATE TABLE vm_dynamic (
    vm_id             uuid PRIMARY KEY REFERENCES vm_static (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'down',
    status_detail     text NOT NULL DEFAULT '',
    run_on_host_id    uuid REFERENCES hosts (id) ON DELETE SET NULL,
    last_host_id      uuid,
    start_time        timestamptz,
    stop_time         timestamptz,
    stop_reason       text,
    exit_status       int,
    exit_message      text,
    exit_reason       int,
    pause_code        text,
    display_type      text,
    display_address   text,
    display_port      int,
    display_tls_port  int,
    domxml_hash       text,
    guest_fqdn        text,
    guest_os          text,
    client_ip         text,
    not_responding    boolean NOT NULL DEFAULT false,
    run_once          boolean NOT NULL DEFAULT false,
    -- agent clock (statusTime / notify_time) of the last applied report
    agent_status_time bigint NOT NULL DEFAULT 0,
    status_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vm_dynamic_host ON vm_dynamic (run_on_host_id);
CREATE INDEX vm_dynamic_status ON vm_dynamic (status);

CREATE TABLE vm_statistics (
    vm_id        uuid PRIMARY KEY REFERENCES vm_static (id) ON DELETE CASCADE,
    cpu_user     double precision NOT NULL DEFAULT 0,
    cpu_sys      double precision NOT NULL DEFAULT 0,
    mem_usage    int NOT NULL DEFAULT 0,
    elapsed_s    bigint NOT NULL DEFAULT 0,
    network      jsonb NOT NULL DEFAULT '{}',
    disks        jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vm_interfaces (
    id          uuid PRIMARY KEY,
    vm_id       uuid NOT NULL REFERENCES vm_static (id) ON DELETE CASCADE,
    name        text NOT NULL,
    mac_address text NOT NULL,
    interface   text NOT NULL DEFAULT 'virtio',
    network_id  uuid,
    plugged     boolean NOT NULL DEFAULT true,
    linked      boolean NOT NULL DEFAULT true,
    UNIQUE (vm_id, name)
);

CREATE TABLE snapshots (
    id                  uuid PRIMARY KEY,
    vm_id               uuid NOT NULL REFERENCES vm_static (id) ON DELETE CASCADE,
    snapshot_type       text NOT NULL DEFAULT 'regular',  -- regular | active | stateless | preview
    status              text NOT NULL DEFAULT 'ok',       -- ok | locked | in_preview
    description         text NOT NULL DEFAULT '',
    creation_date       timestamptz NOT NULL DEFAULT now(),
    persist_memorystate boolean NOT NULL DEFAULT false,
    vm_configuration    jsonb
);
CREATE INDEX snapshots_vm ON snapshots (vm_id);

-- ------------------------------------------------------------------ storage
CREATE TABLE storage_domains (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    description      text NOT NULL DEFAULT '',
    comment          text NOT NULL DEFAULT '',
    domain_type      text NOT NULL DEFAULT 'data',     -- data | iso | export
    storage_type     text NOT NULL DEFAULT 'nfs',      -- nfs | localfs | posixfs
    address          text NOT NULL DEFAULT '',
    path             text NOT NULL DEFAULT '',
    status           text NOT NULL DEFAULT 'unattached',
    data_center_id   uuid REFERENCES data_centers (id) ON DELETE SET NULL,
    master           boolean NOT NULL DEFAULT false,
    available_bytes  bigint NOT NULL DEFAULT 0,
    used_bytes       bigint NOT NULL DEFAULT 0,
    committed_bytes  bigint NOT NULL DEFAULT 0,
    storage_format   text NOT NULL DEFAULT 'v5',
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE disks (
    id                 uuid PRIMARY KEY,
    alias              text NOT NULL,
    description        text NOT NULL DEFAULT '',
    provisioned_size   bigint NOT NULL,
    actual_size        bigint NOT NULL DEFAULT 0,
    format             text NOT NULL DEFAULT 'cow',    -- cow | raw
    sparse             boolean NOT NULL DEFAULT true,
    status             text NOT NULL DEFAULT 'ok',     -- ok | locked | illegal
    content_type       text NOT NULL DEFAULT 'data',
    storage_domain_id  uuid REFERENCES storage_domains (id) ON DELETE RESTRICT,
    image_id           uuid,
    shareable          boolean NOT NULL DEFAULT false,
    wipe_after_delete  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE disk_attachments (
    vm_id         uuid NOT NULL REFERENCES vm_static (id) ON DELETE CASCADE,
    disk_id       uuid NOT NULL REFERENCES disks (id) ON DELETE CASCADE,
    interface     text NOT NULL DEFAULT 'virtio',
    bootable      boolean NOT NULL DEFAULT false,
    active        boolean NOT NULL DEFAULT true,
    pass_discard  boolean NOT NULL DEFAULT false,
    read_only     boolean NOT NULL DEFAULT false,
    logical_name  text,
    PRIMARY KEY (vm_id, disk_id)
);

-- ----------------------------------------------------------------- networks
CREATE TABLE networks (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    description     text NOT NULL DEFAULT '',
    comment         text NOT NULL DEFAULT '',
    data_center_id  uuid NOT NULL REFERENCES data_centers (id) ON DELETE CASCADE,
    vlan_id         int,
    mtu             int NOT NULL DEFAULT 0,
    stp             boolean NOT NULL DEFAULT false,
    vm_network      boolean NOT NULL DEFAULT true,
    required        boolean NOT NULL DEFAULT true,
    usages          text[] NOT NULL DEFAULT '{vm}',
    UNIQUE (data_center_id, name)
);

-- ---------------------------------------------------------------------- AAA
CREATE TABLE users (
    id             uuid PRIMARY KEY,
    domain         text NOT NULL,        -- 'internal' or an LDAP profile name
    principal      text NOT NULL,        -- user name within the domain
    external_id    text NOT NULL DEFAULT '',
    first_name     text NOT NULL DEFAULT '',
    last_name      text NOT NULL DEFAULT '',
    email          text NOT NULL DEFAULT '',
    department     text NOT NULL DEFAULT '',
    password_hash  text,                 -- internal domain only (scrypt)
    active         boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain, principal)
);

CREATE TABLE groups (
    id           uuid PRIMARY KEY,
    domain       text NOT NULL,
    name         text NOT NULL,
    external_id  text NOT NULL DEFAULT '',
    UNIQUE (domain, name)
);

-- Group membership as last resolved from the directory (at login).
CREATE TABLE user_groups (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id  uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE roles (
    id             uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    description    text NOT NULL DEFAULT '',
    administrative boolean NOT NULL DEFAULT false,
    mutable        boolean NOT NULL DEFAULT true
);

-- Action groups a role grants (oVirt's roles_groups).
CREATE TABLE role_permits (
    role_id  uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permit   text NOT NULL,
    PRIMARY KEY (role_id, permit)
);

CREATE TABLE permissions (
    id           uuid PRIMARY KEY,
    role_id      uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    group_id     uuid REFERENCES groups (id) ON DELETE CASCADE,
    object_type  text NOT NULL,  -- system | data_center | cluster | host | vm | template | storage_domain | disk | network
    object_id    uuid NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX permissions_object ON permissions (object_type, object_id);
CREATE INDEX permissions_user ON permissions (user_id);
CREATE INDEX permissions_group ON permissions (group_id);

-- SSO tokens (only a hash is stored; the token itself is the bearer secret).
CREATE TABLE sso_tokens (
    token_hash  text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope       text NOT NULL DEFAULT 'ovirt-app-api',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX sso_tokens_user ON sso_tokens (user_id);

-- ---------------------------------------------------------------- audit log
CREATE TABLE audit_log (
    id                 bigserial PRIMARY KEY,
    log_time           timestamptz NOT NULL DEFAULT now(),
    log_type           int NOT NULL,             -- oVirt AuditLogType code
    severity           text NOT NULL DEFAULT 'normal',  -- normal | warning | error | alert
    message            text NOT NULL,
    user_id            uuid,
    user_name          text,
    vm_id              uuid,
    vm_name            text,
    host_id            uuid,
    host_name          text,
    cluster_id         uuid,
    data_center_id     uuid,
    storage_domain_id  uuid,
    template_id        uuid,
    correlation_id     text,
    job_id             uuid,
    origin             text NOT NULL DEFAULT 'oVirt',
    custom_id          text
);
CREATE INDEX audit_log_time ON audit_log (log_time);
CREATE INDEX audit_log_vm ON audit_log (vm_id);
CREATE INDEX audit_log_host ON audit_log (host_id);

-- ------------------------------------------------------ commands and locks
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    action_type     text NOT NULL,
    description     text NOT NULL,
    status          text NOT NULL DEFAULT 'started',  -- started | finished | failed | aborted | unknown
    owner_id        uuid,
    correlation_id  text,
    start_time      timestamptz NOT NULL DEFAULT now(),
    end_time        timestamptz,
    last_update     timestamptz NOT NULL DEFAULT now(),
    external        boolean NOT NULL DEFAULT false,
    auto_cleared    boolean NOT NULL DEFAULT true
);
CREATE INDEX jobs_status ON jobs (status);

CREATE TABLE steps (
    id              uuid PRIMARY KEY,
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    parent_step_id  uuid,
    step_type       text NOT NULL,    -- validating | executing | finalizing
    description     text NOT NULL,
    step_number     int NOT NULL,
    status          text NOT NULL DEFAULT 'started',
    start_time      timestamptz NOT NULL DEFAULT now(),
    end_time        timestamptz,
    correlation_id  text
);
CREATE INDEX steps_job ON steps (job_id);

-- A command in flight: enough to finish or undo it after an engine crash.
CREATE TABLE command_entities (
    id            uuid PRIMARY KEY,
    command_type  text NOT NULL,
    status        text NOT NULL DEFAULT 'active',  -- active | succeeded | failed | compensated
    params        jsonb NOT NULL DEFAULT '{}',
    job_id        uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_entities_active ON command_entities (status) WHERE status = 'active';

-- Entity locks taken by commands. An exclusive lock excludes every other lock
-- on the entity; shared locks coexist. Rows are removed when the command ends,
-- and all of them at engine start (their commands died with the engine).
CREATE TABLE entity_locks (
    entity_type  text NOT NULL,
    entity_id    uuid NOT NULL,
    command_id   uuid NOT NULL,
    exclusive    boolean NOT NULL,
    reason       text NOT NULL DEFAULT '',
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_type, entity_id, command_id)
);

CREATE TABLE engine_settings (
    key    text PRIMARY KEY,
    value  jsonb NOT NULL
);

-- ------------------------------------------------------------ initial data
INSERT INTO data_centers (id, name, description)
    VALUES (gen_random_uuid(), 'Default', 'The default Data Center');
INSERT INTO clusters (id, name, description, data_center_id)
    SELECT gen_random_uuid(), 'Default', 'The default server cluster', id
    FROM data_centers WHERE name = 'Default';
INSERT INTO networks (id, name, description, data_center_id, usages)
    SELECT gen_random_uuid(), 'ovirtmgmt', 'Management Network', id, '{vm,management,display}'
    FROM data_centers WHERE name = 'Default';
-- The built-in Blank template (id all zeros), as in every oVirt installation.
INSERT INTO vm_static (id, entity_type, name, description, memory_mib, memory_guaranteed_mib,
                       memory_max_mib, template_status, template_version_number,
                       template_version_name, base_template_id)
    VALUES ('00000000-0000-0000-0000-000000000000', 'template', 'Blank', 'Blank template',
            1024, 1024, 4096, 'ok', 1, 'base version', '00000000-0000-0000-0000-000000000000');
