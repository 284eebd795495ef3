"""Every command type the engine has, by action type.

Crash recovery looks interrupted commands up here by the type recorded in
command_entities, so every module that defines commands is listed (imported)
in one place.
"""

from __future__ import annotations

from .commands import Command

__all__ = ["command_types"]


def command_types() -> dict[str, type[Command]]:
    from . import (aaa_commands, disk_commands, host_commands,  # noqa: F401
                   ova_commands, snapshot_commands, snapshot_preview, storage_activation,
                   storage_commands, template_commands, topology_commands,
                   transfer_commands, vm_commands, vm_lifecycle)

    return dict(Command.registry)
