-- VM network interfaces get a vNIC profile (oVirt's vnic_profiles): a NIC
-- is connected to a logical network through one of its profiles. NULL is
-- oVirt's "empty profile": the NIC has no network (its link is down).
CREATE TABLE vnic_profiles (
    id           uuid PRIMARY KEY,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    network_id   uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    UNIQUE (network_id, name)
);

-- Every network has a default profile named after it (as ovirtmgmt has in oVirt).
INSERT INTO vnic_profiles (id, name, network_id)
    SELECT gen_random_uuid(), name, id FROM networks;

ALTER TABLE vm_interfaces
    ADD COLUMN vnic_profile_id uuid REFERENCES vnic_profiles (id) ON DELETE SET NULL;
-- The network is reached through the profile: one source for one fact.
UPDATE vm_interfaces i SET vnic_profile_id = p.id
    FROM vnic_profiles p WHERE p.network_id = i.network_id;
ALTER TABLE vm_interfaces DROP COLUMN network_id;
CREATE INDEX vm_interfaces_profile ON vm_interfaces (vnic_profile_id);

-- MAC addresses are stored lower case and are unique among all NICs: the
-- engine's allocation (ovengine/domain/macpool.py) relies on this index.
UPDATE vm_interfaces SET mac_address = lower(mac_address);
CREATE UNIQUE INDEX vm_interfaces_mac ON vm_interfaces (mac_address);
