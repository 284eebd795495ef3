"""File-based storage of the agent, the way vdsm does it for file domains.

connections (localfs links, NFS/posixfs mounts) -> domains (dom_md + images
on disk, vdsm's metadata) -> a pool with a master domain and an SPM guarded
by sanlock -> volumes made by qemu-img, in persisted tasks. `service` is
what the verb handlers (ovagent/api/storage.py) talk to.
"""

from .service import StorageService

__all__ = ["StorageService"]
