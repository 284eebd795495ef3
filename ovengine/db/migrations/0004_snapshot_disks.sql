-- Snapshots with disks (oVirt's images.vm_snapshot_id): a volume that holds
-- a disk's state as of a snapshot names that snapshot (a regular one, or the
-- 'preview' snapshot that keeps the chain the VM ran on before a preview).
-- The active volume (disks.image_id, the leaf the VM opens) names none.
ALTER TABLE images
    ADD COLUMN vm_snapshot_id uuid REFERENCES snapshots (id) ON DELETE SET NULL;
CREATE INDEX images_vm_snapshot ON images (vm_snapshot_id);
