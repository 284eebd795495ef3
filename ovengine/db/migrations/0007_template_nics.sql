-- Templates carry NICs too (copied from the VM a template is made from, and
-- copied again to each VM made from it). A template NIC has no MAC address:
-- every VM made from the template gets a new one from the pool. The unique
-- index on mac_address still holds for the addresses there are (NULLs are
-- distinct in a unique index).
ALTER TABLE vm_interfaces ALTER COLUMN mac_address DROP NOT NULL;
