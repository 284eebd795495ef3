-- Image transfers (REST /imagetransfers, oVirt's image_transfers table): a
-- disk's active volume served by one host's image server under a ticket,
-- for an upload or a download driven by the client.
--
-- phase: the REST ImageTransferPhase values (initializing, transferring,
-- finalizing_success, finished_success, cancelled_user, cancelled_system,
-- finalizing_failure, finished_failure). Finished rows are kept a while so
-- clients polling after finalize see the outcome, then deleted.
CREATE TABLE image_transfers (
    id                  uuid PRIMARY KEY,
    -- the disk; NULL once it is removed (the transfer's record stays)
    disk_id             uuid REFERENCES disks (id) ON DELETE SET NULL,
    image_id            uuid NOT NULL,                    -- the volume served
    storage_domain_id   uuid NOT NULL,
    data_center_id      uuid NOT NULL,
    host_id             uuid REFERENCES hosts (id) ON DELETE SET NULL,
    direction           text NOT NULL CHECK (direction IN ('upload', 'download')),
    format              text NOT NULL CHECK (format IN ('cow', 'raw')),
    phase               text NOT NULL DEFAULT 'initializing',
    ticket_id           uuid,                             -- while the host has a ticket
    transfer_url        text,
    proxy_url           text,
    size                bigint NOT NULL DEFAULT 0,        -- bytes the ticket covers
    transferred         bigint NOT NULL DEFAULT 0,
    active              boolean NOT NULL DEFAULT false,   -- a client is connected now
    inactivity_timeout  int NOT NULL,                     -- seconds
    timeout_policy      text NOT NULL DEFAULT 'legacy',
    disk_status_before  text NOT NULL DEFAULT 'ok',
    message             text NOT NULL DEFAULT '',         -- why it failed
    owner_id            uuid,
    command_id          uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_updated        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX image_transfers_disk ON image_transfers (disk_id);
