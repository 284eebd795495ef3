"""oVirt's action groups (REST "permits") and its predefined roles, with their real ids.

Taken from ovirt-engine's ActionGroup.java and its roles / roles_groups seed
data (packaging/dbscripts/data), so that tools that refer to roles or permits
by id or name keep working. The role rows themselves are seeded by migration
0002_aaa.sql from the same data; `tests/unit/rest/test_permits.py` checks
that the two agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ActionGroup", "PredefinedRole", "PREDEFINED_ROLES", "SYSTEM_OBJECT_ID",
           "SUPER_USER_ROLE_ID", "USER_ROLE_ID", "USER_VM_MANAGER_ROLE_ID",
           "CLUSTER_ADMIN_ROLE_ID", "DATA_CENTER_ADMIN_ROLE_ID", "HOST_ADMIN_ROLE_ID",
           "POWER_USER_ROLE_ID", "TEMPLATE_ADMIN_ROLE_ID", "VM_CREATOR_ROLE_ID",
           "ADMIN_ROLE_TYPE", "USER_ROLE_TYPE"]

# The id of the system object (oVirt's "bottom" of the permission tree).
SYSTEM_OBJECT_ID = "aaa00000-0000-0000-0000-123456789aaa"

ADMIN_ROLE_TYPE = 1
USER_ROLE_TYPE = 2


class ActionGroup(enum.IntEnum):
    """Permit ids; the REST name is the lower-case member name."""

    CREATE_VM = 1
    DELETE_VM = 2
    EDIT_VM_PROPERTIES = 3
    CHANGE_VM_CD = 5
    MIGRATE_VM = 6
    CONNECT_TO_VM = 7
    IMPORT_EXPORT_VM = 8
    CONFIGURE_VM_NETWORK = 9
    CONFIGURE_VM_STORAGE = 10
    MOVE_VM = 11
    MANIPULATE_VM_SNAPSHOTS = 12
    RECONNECT_TO_VM = 13
    CHANGE_VM_CUSTOM_PROPERTIES = 14
    EDIT_ADMIN_VM_PROPERTIES = 15
    CREATE_INSTANCE = 16
    REBOOT_VM = 17
    STOP_VM = 18
    SHUT_DOWN_VM = 19
    HIBERNATE_VM = 21
    RUN_VM = 22
    RESET_VM = 23
    CREATE_HOST = 100
    EDIT_HOST_CONFIGURATION = 101
    DELETE_HOST = 102
    MANIPULATE_HOST = 103
    CONFIGURE_HOST_NETWORK = 104
    CREATE_TEMPLATE = 200
    EDIT_TEMPLATE_PROPERTIES = 201
    DELETE_TEMPLATE = 202
    COPY_TEMPLATE = 203
    CONFIGURE_TEMPLATE_NETWORK = 204
    EDIT_ADMIN_TEMPLATE_PROPERTIES = 205
    CREATE_VM_POOL = 300
    EDIT_VM_POOL_CONFIGURATION = 301
    DELETE_VM_POOL = 302
    VM_POOL_BASIC_OPERATIONS = 303
    CREATE_CLUSTER = 400
    EDIT_CLUSTER_CONFIGURATION = 401
    DELETE_CLUSTER = 402
    CONFIGURE_CLUSTER_NETWORK = 403
    ASSIGN_CLUSTER_NETWORK = 404
    MANIPULATE_USERS = 500
    MANIPULATE_ROLES = 501
    MANIPULATE_PERMISSIONS = 502
    ADD_USERS_AND_GROUPS_FROM_DIRECTORY = 503
    EDIT_PROFILE = 504
    CREATE_STORAGE_DOMAIN = 600
    EDIT_STORAGE_DOMAIN_CONFIGURATION = 601
    DELETE_STORAGE_DOMAIN = 602
    MANIPULATE_STORAGE_DOMAIN = 603
    CREATE_STORAGE_POOL = 700
    DELETE_STORAGE_POOL = 701
    EDIT_STORAGE_POOL_CONFIGURATION = 702
    CONFIGURE_STORAGE_POOL_NETWORK = 703
    CREATE_STORAGE_POOL_NETWORK = 704
    DELETE_STORAGE_POOL_NETWORK = 705
    CONFIGURE_ENGINE = 800
    CONFIGURE_QUOTA = 900
    CONSUME_QUOTA = 901
    CREATE_DISK = 1100
    ATTACH_DISK = 1101
    EDIT_DISK_PROPERTIES = 1102
    CONFIGURE_DISK_STORAGE = 1103
    DELETE_DISK = 1104
    CONFIGURE_SCSI_GENERIC_IO = 1105
    ACCESS_IMAGE_STORAGE = 1106
    DISK_LIVE_STORAGE_MIGRATION = 1107
    SPARSIFY_DISK = 1108
    REDUCE_DISK = 1109
    BACKUP_DISK = 1110
    CONFIGURE_NETWORK_VNIC_PROFILE = 1203
    CREATE_NETWORK_VNIC_PROFILE = 1204
    DELETE_NETWORK_VNIC_PROFILE = 1205
    LOGIN = 1300
    TAG_MANAGEMENT = 1301
    BOOKMARK_MANAGEMENT = 1302
    EVENT_NOTIFICATION_MANAGEMENT = 1303
    AUDIT_LOG_MANAGEMENT = 1304
    INJECT_EXTERNAL_EVENTS = 1400
    INJECT_EXTERNAL_TASKS = 1500
    MANIPULATE_AFFINITY_GROUPS = 1550
    CONFIGURE_STORAGE_DISK_PROFILE = 1560
    CREATE_STORAGE_DISK_PROFILE = 1561
    DELETE_STORAGE_DISK_PROFILE = 1562
    ATTACH_DISK_PROFILE = 1563
    CREATE_MAC_POOL = 1660
    EDIT_MAC_POOL = 1661
    DELETE_MAC_POOL = 1662
    CONFIGURE_MAC_POOL = 1663
    CONNECT_TO_SERIAL_CONSOLE = 1664
    DELETE_CPU_PROFILE = 1665
    UPDATE_CPU_PROFILE = 1666
    CREATE_CPU_PROFILE = 1667
    ASSIGN_CPU_PROFILE = 1668

    @property
    def rest_name(self) -> str:
        return self.name.lower()

    @classmethod
    def from_rest(cls, value: str) -> "ActionGroup":
        """By REST name (`run_vm`) or id (`22`)."""
        v = value.strip()
        if v.isdigit():
            return cls(int(v))
        return cls[v.upper()]


# Admin-type permits (RoleType.ADMIN in oVirt): a role holding one is administrative.
ADMIN_PERMITS = frozenset({
    ActionGroup.IMPORT_EXPORT_VM, ActionGroup.CHANGE_VM_CUSTOM_PROPERTIES,
    ActionGroup.EDIT_ADMIN_VM_PROPERTIES, *range(100, 105), ActionGroup.EDIT_ADMIN_TEMPLATE_PROPERTIES,
    *range(400, 405), ActionGroup.MANIPULATE_USERS, ActionGroup.MANIPULATE_ROLES,
    *range(600, 604), *range(700, 706), ActionGroup.CONFIGURE_ENGINE, ActionGroup.CONFIGURE_QUOTA,
    ActionGroup.CONFIGURE_SCSI_GENERIC_IO, ActionGroup.REDUCE_DISK, ActionGroup.BACKUP_DISK,
    *range(1203, 1206), *range(1301, 1305), ActionGroup.INJECT_EXTERNAL_EVENTS,
    ActionGroup.INJECT_EXTERNAL_TASKS, ActionGroup.MANIPULATE_AFFINITY_GROUPS,
    *range(1560, 1563), *range(1660, 1664), *range(1665, 1669)} - {1664})


@dataclass(frozen=True)
class PredefinedRole:
    id: str
    name: str
    description: str
    administrative: bool
    permits: frozenset[int]


def _r(id: str, name: str, description: str, admin: bool, *permits: int | range) -> PredefinedRole:
    flat: set[int] = set()
    for p in permits:
        flat.update(p if isinstance(p, range) else (p,))
    return PredefinedRole(id, name, description, admin, frozenset(flat))


SUPER_USER_ROLE_ID = "00000000-0000-0000-0000-000000000001"
USER_ROLE_ID = "00000000-0000-0000-0001-000000000001"
POWER_USER_ROLE_ID = "00000000-0000-0000-0001-000000000002"
CLUSTER_ADMIN_ROLE_ID = "def00001-0000-0000-0000-def000000001"
DATA_CENTER_ADMIN_ROLE_ID = "def00002-0000-0000-0000-def000000002"
HOST_ADMIN_ROLE_ID = "def00004-0000-0000-0000-def000000004"
USER_VM_MANAGER_ROLE_ID = "def00006-0000-0000-0000-def000000006"
TEMPLATE_ADMIN_ROLE_ID = "def00008-0000-0000-0000-def000000008"
VM_CREATOR_ROLE_ID = "def0000a-0000-0000-0000-def00000000d"

_VM_OPS = (17, 18, 19, 21, 22, 23)
PREDEFINED_ROLES: tuple[PredefinedRole, ...] = (
    _r(SUPER_USER_ROLE_ID, "SuperUser", "Roles management administrator", True,
       *(int(a) for a in ActionGroup)),
    _r(USER_ROLE_ID, "UserRole", "Standard User Role", False,
       5, 7, 17, 18, 19, 21, 22, 303, 1106, 1300),
    _r(POWER_USER_ROLE_ID, "PowerUserRole",
       "User Role, allowed to create VMs, Templates and Disks", False,
       1, 200, 1100, 1106, 1300, range(1665, 1669)),
    _r(CLUSTER_ADMIN_ROLE_ID, "ClusterAdmin",
       "Administrator Role, permission for all the objects underneath a specific Cluster", True,
       range(1, 4), range(5, 13), 14, 15, *_VM_OPS, range(100, 105), range(300, 304),
       range(400, 404), 502, 503, range(1100, 1105), 1107, range(1300, 1305), 1550,
       range(1665, 1669)),
    _r(DATA_CENTER_ADMIN_ROLE_ID, "DataCenterAdmin",
       "Administrator Role, permission for all the objects underneath a specific Data Center, "
       "except Storage", True,
       range(1, 4), range(5, 13), 14, 15, *_VM_OPS, range(100, 105), range(200, 206),
       range(300, 304), range(400, 405), 502, 503, range(700, 706), 900, 901,
       range(1100, 1106), 1107, range(1203, 1206), range(1300, 1305), 1550, 1663,
       range(1665, 1669)),
    _r("def00003-0000-0000-0000-def000000003", "StorageAdmin",
       "Administrator Role, permission for all operations on a specific Storage Domain", True,
       range(600, 604), range(1100, 1105), 1106, 1107, range(1300, 1305), range(1560, 1564)),
    _r(HOST_ADMIN_ROLE_ID, "HostAdmin",
       "Administrator Role, permission for all operations on a specific Host", True,
       range(100, 105), range(600, 604), range(1300, 1305), range(1560, 1564)),
    _r("def00005-0000-0000-0000-def000000005", "NetworkAdmin",
       "Administrator Role, permission for all operations on a specific Logical Network", True,
       9, 104, 204, 403, 404, range(703, 706), range(1203, 1206), range(1300, 1305)),
    _r(USER_VM_MANAGER_ROLE_ID, "UserVmManager",
       "User Role, with permission for any operation on Vms", False,
       1, 2, 3, 5, 7, 9, 10, 12, *_VM_OPS, 502, 503, 1100, 1101, 1102, 1104, 1110, 1300, 1664,
       1668),
    _r("def00006-0000-0000-0000-def000000011", "UserVmRunTimeManager",
       "User Role, with permission for any operation on Vms except of editing them", False,
       1, 2, 3, 5, 7, 9, 10, *_VM_OPS, 502, 503, 1100, 1101, 1102, 1104, 1300),
    _r("def00007-0000-0000-0000-def000000007", "VmPoolAdmin",
       "Administrator Role, permission for all operations on a specific VM Pool", True,
       1, range(300, 304), range(1300, 1305), 1668),
    _r(TEMPLATE_ADMIN_ROLE_ID, "TemplateAdmin",
       "Administrator Role, permission for all operations on a specific Template", True,
       range(200, 206), 502, 503, 1106, range(1300, 1305)),
    _r("def00009-0000-0000-0000-def000000009", "UserTemplateBasedVm", "Template User", False,
       1, 1668),
    _r("def0000a-0000-0000-0000-def00000000a", "QuotaConsumer",
       "User Role, permissions to consume the Quota resources", False, 901),
    _r("def0000a-0000-0000-0000-def00000000b", "DiskOperator",
       "User Role, permissions for all operations on a specific disk", False,
       1100, 1101, 1102, 1104, 1110, 502, 503, 1300),
    _r("def0000a-0000-0000-0000-def00000000c", "DiskCreator",
       "User Role, permission to create Disks", False, 1100, 1300),
    _r(VM_CREATOR_ROLE_ID, "VmCreator", "User Role, permission to create VMs", False,
       1, 1100, 1300, 1668),
    _r("def0000a-0000-0000-0000-def00000000e", "TemplateCreator",
       "User Role, permission to create Templates", False, 200, 1300),
    _r("def0000a-0000-0000-0000-def00000000f", "TemplateOwner",
       "User Role, permissions for all operations on Templates", False,
       range(201, 205), 502, 503, 1300),
    _r("def0000c-0000-0000-0000-def00000000c", "ReadOnlyAdmin", "Read Only Administrator Role",
       True, 1300),
    _r("def0000c-0000-0000-0000-def000000000", "ExternalEventsCreator",
       "External Events Creator", False, 1400),
    _r("def0000d-0000-0000-0000-def000000000", "ExternalTasksCreator",
       "External Tasks Creator", False, 1500),
    _r("def00011-0000-0000-0000-def000000011", "InstanceCreator",
       "User Role, permission to create Instances", False, 16, 1100, 1300),
    _r("def00012-0000-0000-0000-def000000012", "UserInstanceManager",
       "User Role, with permission for any operation on Instances", False,
       2, 3, 5, 7, 10, 12, *_VM_OPS, 502, 503, 1100, 1101, 1102, 1104, 1300, 1664),
    _r("def00011-0000-0000-0000-def000000013", "TagManager", "Tag Manager", True,
       1300, 1301, 1304),
    _r("def00011-0000-0000-0000-def000000014", "BookmarkManager", "Bookmark Manager", True,
       1300, 1302, 1304),
    _r("def00011-0000-0000-0000-def000000015", "EventNotificationManager",
       "Event Notification Manager", True, 1300, 1303, 1304),
)
