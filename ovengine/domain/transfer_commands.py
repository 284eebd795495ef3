"""Image transfers (REST /imagetransfers): a disk's active volume served by
one host's image server for an upload or a download driven by the client.

TransferDiskImage validates, records the transfer (phase initializing) and
locks the disk; its asynchronous phase is the whole session, with the disk's
entity lock held throughout:

1. on a host of the disk's data center with a running image server (the
   one asked for, else the one serving the fewest transfers): Image.prepare
   the active volume; for an upload mark it ILLEGAL on storage (SPM
   Volume.setLegality, as oVirt does, so a half-written volume is never
   used); Host.add_image_ticket (ops [write] or [read]); phase transferring;
2. every POLL_INTERVAL_S, Host.get_image_ticket: `transferred`, `active`
   and idle time go to the row; the ticket is extended before it expires; a
   transfer idle for its inactivity_timeout is cancelled by the system;
3. the client's finalize (REST sets finalizing_success) or cancel
   (cancelled_user) ends it: the ticket is removed and the volume torn down;
   an upload is verified (Volume.getInfo: the size and format recorded) and
   made LEGAL again; then finished_success, or finished_failure with the
   disk illegal after an upload (as oVirt) and as before after a download.

REST actions change `phase` in the database (the one source of truth) and
wake the session through the event bus (topic "image_transfer").

Ticket size (as oVirt): an upload may write the volume's virtual size; a
download reads the volume file's apparent size (a qcow2 file as it is).
ov converts no formats: `format` must be the volume's own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from protocol.jsonrpc import JsonRpcError

from ..audit import AuditRefs, AuditType
from ..errors import Conflict, EngineError, OperationFailed, ValidationFailed
from ..hosts.manager import HostUnavailable
from ..storage.vdsm import BLANK_UUID
from .commands import Principal
from .images import load_disk, set_disks_status
from .locks import LockSpec
from .storage_base import StorageCommand
from .vm_base import load_vm

__all__ = ["TransferDiskImage", "TransferSpec", "TransferAudit", "TOPIC", "ACTIVE_PHASES",
           "FINISHED_PHASES", "request_phase", "expire_finished"]

log = logging.getLogger(__name__)

TOPIC = "image_transfer"
ACTIVE_PHASES = ("initializing", "transferring")
FINISHED_PHASES = ("finished_success", "finished_failure")
CANCELLED_PHASES = ("cancelled_user", "cancelled_system")
POLL_INTERVAL_S = 1.0
# Host ticket lifetime and when to renew it (oVirt's defaults: 300 s, 60 s).
TICKET_TIMEOUT_S = 300
TICKET_REFRESH_S = 60.0
# Finished transfers stay listed this long (clients poll for the outcome).
KEEP_FINISHED_S = 900


class TransferAudit:
    """ov's own event codes for transfers (99xx: oVirt's numbers were not
    confirmed from its source, so ov does not claim them)."""

    INITIATED = 9920
    SUCCEEDED = 9921
    CANCELLED = 9922
    FAILED = 9923


def _audit(code: int) -> AuditType:
    return code  # type: ignore[return-value]  # AuditLog.log stores int(kind)


@dataclass(frozen=True)
class TransferSpec:
    disk_id: str
    direction: str                      # upload | download
    host_id: str | None = None
    fmt: str | None = None              # cow | raw; None: the volume's
    inactivity_timeout_s: int = 60
    timeout_policy: str = "legacy"


async def request_phase(services: Any, transfer_id: str, phase: str,
                        allowed_from: tuple[str, ...]) -> str:
    """Move a transfer to `phase` if it is in one of `allowed_from` and wake
    its session; returns the phase it is in afterwards."""
    key = uuid.UUID(transfer_id)
    got = await services.pool.fetchval(
        "UPDATE image_transfers SET phase=$2, last_updated=now() "
        "WHERE id=$1 AND phase = ANY($3::text[]) RETURNING phase", key, phase,
        list(allowed_from))
    services.bus.publish(TOPIC, {"id": transfer_id, "phase": phase})
    if got is not None:
        return str(got)
    return str(await services.pool.fetchval("SELECT phase FROM image_transfers WHERE id=$1",
                                            key))


async def expire_finished(pool: Any) -> None:
    await pool.execute(
        "DELETE FROM image_transfers WHERE phase = ANY($1::text[]) "
        "AND last_updated < now() - make_interval(secs => $2)",
        list(FINISHED_PHASES), float(KEEP_FINISHED_S))


class TransferDiskImage(StorageCommand):
    action_type = "TransferDiskImage"

    def __init__(self, services: Any, principal: Principal, spec: TransferSpec,
                 transfer_id: str | None = None) -> None:
        super().__init__(services, principal)
        self.spec = spec
        self.transfer_id = transfer_id or str(uuid.uuid4())
        self.row: Any = None
        self.dc_id = ""
        self.sd_id = ""
        self.volume_id = ""
        self.fmt = ""
        self.host_id = ""
        self.host_name = ""
        self.ticket_id: str | None = None
        self.ticket_deadline = 0.0
        self.prepared = False
        self.made_illegal = False
        self.ended = False

    # ------------------------------------------------------------ basics
    @property
    def upload(self) -> bool:
        return self.spec.direction == "upload"

    @property
    def alias(self) -> str:
        return self.row["alias"] if self.row is not None else self.spec.disk_id

    def description(self) -> str:
        return f"{'Uploading' if self.upload else 'Downloading'} disk {self.alias}"

    def locks(self) -> list[LockSpec]:
        return [LockSpec("disk", self.spec.disk_id, reason="an image transfer")]

    def recovery_params(self) -> dict[str, Any]:
        return {"transfer_id": self.transfer_id, "disk_id": self.spec.disk_id,
                "direction": self.spec.direction}

    def has_async_phase(self) -> bool:
        return True

    def refs(self) -> AuditRefs:
        return self.audit_refs(
            storage_domain_id=uuid.UUID(self.sd_id) if self.sd_id else None,
            data_center_id=uuid.UUID(self.dc_id) if self.dc_id else None,
            host_id=uuid.UUID(self.host_id) if self.host_id else None,
            host_name=self.host_name or None)

    def _vol(self) -> dict[str, Any]:
        return {"storagepoolID": self.dc_id, "storagedomainID": self.sd_id,
                "imageID": self.spec.disk_id, "volumeID": self.volume_id}

    # ---------------------------------------------------------- validate
    async def validate(self) -> None:
        spec = self.spec
        if spec.direction not in ("upload", "download"):
            raise ValidationFailed(f"direction must be upload or download, got "
                                   f"{spec.direction!r}", "direction")
        if not 1 <= spec.inactivity_timeout_s <= 86400:
            raise ValidationFailed("inactivity_timeout must be 1-86400 seconds",
                                   "inactivity_timeout")
        if spec.timeout_policy not in ("legacy", "cancel", "pause"):
            raise ValidationFailed(f"unknown timeout_policy {spec.timeout_policy!r}",
                                   "timeout_policy")
        self.row = row = await load_disk(self.s.pool, spec.disk_id)
        what = f"Cannot {spec.direction} disk {row['alias']}"
        if row["status"] == "locked":
            raise Conflict(f"{what}: it is locked.")
        if row["status"] != "ok" and not (self.upload and row["status"] == "illegal"):
            raise Conflict(f"{what}: it is {row['status']}.")
        if self.upload and row["template_ids"]:
            raise Conflict(f"{what}: it belongs to a template.")
        if row["image_id"] is None:
            raise Conflict(f"{what}: it has no volume.")
        if self.upload and str(row["parent_id"] or BLANK_UUID) != BLANK_UUID:
            raise Conflict(f"{what}: it has snapshots or is a thin clone of a template; "
                           f"only a disk with a single volume can be uploaded to.")
        for vm_id in row["vm_ids"]:
            vm = await load_vm(self.s.pool, str(vm_id))
            if vm["status"] != "down":
                raise Conflict(f"{what}: VM {vm['name']} using it is {vm['status']}; stop "
                               f"the VM first.")
        if row["data_center_id"] is None or row["sd_status"] != "active":
            raise Conflict(f"{what}: its storage domain {row['sd_name']} is not active.")
        self.dc_id = str(row["data_center_id"])
        self.sd_id = str(row["storage_domain_id"])
        self.volume_id = str(row["image_id"])
        self.fmt = str(row["volume_format"] or row["format"])
        if spec.fmt is not None and spec.fmt != self.fmt:
            raise ValidationFailed(
                f"{what} as {spec.fmt}: its volume is {self.fmt} and ov does not convert "
                f"formats during transfers; ask for format {self.fmt}.", "format")
        if self.upload:
            await self.s.storage.spm.require_spm(self.dc_id)
        self.host_id = await self._pick_host()
        rt = self.s.hosts.hosts.get(self.host_id)
        self.host_name = rt.name if rt is not None else self.host_id

    async def _pick_host(self) -> str:
        usable = [h for h in self.s.storage.connector.pool_hosts(self.dc_id)
                  if self._imageio_port(h) > 0]
        if self.spec.host_id is not None:
            if self.spec.host_id not in usable:
                rt = self.s.hosts.hosts.get(self.spec.host_id)
                name = rt.name if rt is not None else self.spec.host_id
                reason = ("its image server is not running" if rt is not None and
                          self._imageio_port(self.spec.host_id) == 0 else
                          "it is not up in the disk's data center")
                raise Conflict(f"Cannot transfer disk {self.alias} through host {name}: "
                               f"{reason}.")
            return self.spec.host_id
        if not usable:
            raise Conflict(f"Cannot transfer disk {self.alias}: no host of its data center "
                           f"is up with a running image server.")
        busy = dict(await self.s.pool.fetch(
            "SELECT host_id::text, count(*) FROM image_transfers "
            "WHERE phase <> ALL($1::text[]) AND host_id IS NOT NULL GROUP BY host_id",
            list(FINISHED_PHASES)))
        return min(usable, key=lambda h: (busy.get(h, 0), h))

    def _imageio_port(self, host_id: str) -> int:
        rt = self.s.hosts.hosts.get(host_id)
        if rt is None or rt.facts is None:
            return 0
        return int(rt.facts.imageio_port)

    # ----------------------------------------------------------- execute
    async def execute(self) -> str:
        await expire_finished(self.s.pool)
        async with self.s.pool.acquire() as conn, conn.transaction():
            await conn.execute("""
                INSERT INTO image_transfers (id, disk_id, image_id, storage_domain_id,
                    data_center_id, host_id, direction, format, phase, inactivity_timeout,
                    timeout_policy, disk_status_before, owner_id, command_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'initializing', $9, $10, $11, $12, $13)
                """, uuid.UUID(self.transfer_id), uuid.UUID(self.spec.disk_id),
                uuid.UUID(self.volume_id), uuid.UUID(self.sd_id), uuid.UUID(self.dc_id),
                uuid.UUID(self.host_id), self.spec.direction, self.fmt,
                self.spec.inactivity_timeout_s, self.spec.timeout_policy, self.row["status"],
                uuid.UUID(self.principal.user_id) if self.principal.user_id else None,
                uuid.UUID(self.command_id))
            await set_disks_status(conn, [self.spec.disk_id], "locked")
        await self.s.audit.log(_audit(TransferAudit.INITIATED),
                               f"Image {self.spec.direction} of disk {self.alias} was "
                               f"initiated by {self.principal.name} (host {self.host_name}).",
                               self.refs())
        return self.transfer_id

    # ------------------------------------------------------- the session
    async def finish(self) -> None:
        try:
            await self._start_session()
            outcome = await self._monitor()
            if outcome == "finalizing_success":
                await self._finalize_success()
                return
            await self._finalize_failure(outcome)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s", self.description(), exc)
            await self._set(message=_message(exc))
            await self._finalize_failure("finalizing_failure")
        # A failed or cancelled transfer fails its job (as oVirt's command does).
        raise OperationFailed(f"{self.description()} did not complete: "
                              f"{await self._field('message') or 'cancelled'}")

    async def _start_session(self) -> None:
        # An upload may fix a volume a failed upload left ILLEGAL.
        prepared = await self.s.storage.host_call(self.host_id, "Image.prepare", {
            **self._vol(), "allowIllegal": self.upload})
        path = str(prepared["path"])
        self.prepared = True
        if self.upload:
            size = int(self.row["provisioned_size"])
            await self._spm("Volume.setLegality", {**self._vol(), "legality": "ILLEGAL"})
            self.made_illegal = True
        else:
            info = await self.s.storage.host_call(self.host_id, "Volume.getInfo", self._vol())
            size = int(info["apparentsize"])
        ticket = str(uuid.uuid4())
        await self.s.storage.host_call(self.host_id, "Host.add_image_ticket", {"ticket": {
            "uuid": ticket, "size": size, "url": f"file://{path}",
            "timeout": TICKET_TIMEOUT_S, "ops": ["write" if self.upload else "read"],
            "transfer_id": self.transfer_id, "sparse": False,
            "filename": f"{self.alias}.{'qcow2' if self.fmt == 'cow' else 'raw'}"}})
        self.ticket_id = ticket
        self.ticket_deadline = time.monotonic() + TICKET_TIMEOUT_S
        rt = self.s.hosts.hosts[self.host_id]
        url = f"https://{_url_host(rt.address)}:{self._imageio_port(self.host_id)}/images/{ticket}"
        # ov has no imageio proxy on the engine: proxy_url is the host's URL too.
        await self.s.pool.execute(
            "UPDATE image_transfers SET ticket_id=$2, transfer_url=$3, proxy_url=$3, size=$4, "
            "phase = CASE WHEN phase = 'initializing' THEN 'transferring' ELSE phase END, "
            "last_updated=now() WHERE id=$1", uuid.UUID(self.transfer_id), uuid.UUID(ticket),
            url, size)

    async def _monitor(self) -> str:
        """Poll the ticket until the transfer leaves `transferring`; the new phase."""
        sub = self.s.bus.subscribe({TOPIC})
        unreachable_since: float | None = None
        try:
            while True:
                phase = await self._field("phase")
                if phase != "transferring":
                    return str(phase)
                now = time.monotonic()
                try:
                    info = await self._ticket_info()
                    unreachable_since = None
                except (HostUnavailable, JsonRpcError) as exc:
                    if isinstance(exc, JsonRpcError) and "No such ticket" in exc.message:
                        await self._cancel_system("the host lost the ticket (its agent "
                                                  "restarted?)")
                        continue
                    unreachable_since = unreachable_since or now
                    if now - unreachable_since >= self.spec.inactivity_timeout_s:
                        await self._cancel_system(f"host {self.host_name} unreachable: {exc}")
                        continue
                    info = None
                if info is not None:
                    idle = 0 if info.get("active") else int(info.get("idle_time", 0))
                    await self._set(transferred=int(info.get("transferred", 0)),
                                    active=bool(info.get("active")))
                    if idle >= self.spec.inactivity_timeout_s:
                        await self._cancel_system(f"no activity for {idle} s "
                                                  f"(inactivity_timeout)")
                        continue
                    if self.ticket_deadline - now < TICKET_REFRESH_S:
                        await self._extend_ticket()
                await self._wait(sub, POLL_INTERVAL_S)
        finally:
            sub.close()

    async def _wait(self, sub: Any, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                note = await asyncio.wait_for(sub.get(), left)
            except asyncio.TimeoutError:
                return
            if note.payload.get("id") == self.transfer_id:
                if note.payload.get("extend"):
                    await self._extend_ticket()
                return

    async def _ticket_info(self) -> dict[str, Any]:
        assert self.ticket_id is not None
        info: dict[str, Any] = await self.s.storage.host_call(
            self.host_id, "Host.get_image_ticket", {"uuid": self.ticket_id})
        return info

    async def _extend_ticket(self) -> None:
        if self.ticket_id is None:
            return
        try:
            await self.s.storage.host_call(self.host_id, "Host.extend_image_ticket",
                                           {"uuid": self.ticket_id, "timeout": TICKET_TIMEOUT_S})
            self.ticket_deadline = time.monotonic() + TICKET_TIMEOUT_S
        except (HostUnavailable, JsonRpcError) as exc:
            log.info("extending ticket of %s: %s", self.description(), exc)

    async def _cancel_system(self, why: str) -> None:
        log.warning("%s cancelled: %s", self.description(), why)
        await self._set(message=why)
        await request_phase(self.s, self.transfer_id, "cancelled_system", ("transferring",))

    # ---------------------------------------------------------- endings
    async def _remove_ticket(self) -> None:
        """No new request may touch the volume (the last progress is recorded)."""
        if self.ticket_id is None:
            return
        try:
            info = await self._ticket_info()
            await self._set(transferred=int(info.get("transferred", 0)), active=False)
        except (HostUnavailable, JsonRpcError):
            pass
        try:
            await self.s.storage.host_call(self.host_id, "Host.remove_image_ticket",
                                           {"uuid": self.ticket_id})
        except (HostUnavailable, JsonRpcError) as exc:
            # Unremoved, it expires on its own within TICKET_TIMEOUT_S.
            log.warning("removing the ticket of %s: %s", self.description(), exc)
        self.ticket_id = None
        await self.s.pool.execute("UPDATE image_transfers SET ticket_id=NULL, active=false "
                                  "WHERE id=$1", uuid.UUID(self.transfer_id))

    async def _teardown(self) -> None:
        if self.prepared:
            await self.s.storage.teardown_image(self.host_id, self.dc_id, self.sd_id,
                                                self.spec.disk_id, self.volume_id)
            self.prepared = False

    async def _finalize_success(self) -> None:
        await self._remove_ticket()
        if self.upload:
            try:
                await self._verify_upload()
                await self._spm("Volume.setLegality", {**self._vol(), "legality": "LEGAL"})
                self.made_illegal = False
            except Exception as exc:
                await self._set(message=f"the uploaded volume failed verification: "
                                        f"{_message(exc)}")
                raise
        await self._teardown()
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [self.spec.disk_id], "ok")
            await conn.execute("UPDATE image_transfers SET phase='finished_success', "
                               "last_updated=now() WHERE id=$1", uuid.UUID(self.transfer_id))
        self.ended = True
        self.s.bus.publish(TOPIC, {"id": self.transfer_id, "phase": "finished_success"})
        await self.s.audit.log(_audit(TransferAudit.SUCCEEDED),
                               f"Image {self.spec.direction} of disk {self.alias} succeeded.",
                               self.refs())

    async def _verify_upload(self) -> None:
        info = await self.s.storage.host_call(self.host_id, "Volume.getInfo", self._vol())
        want_fmt = "COW" if self.fmt == "cow" else "RAW"
        if info.get("format") != want_fmt:
            raise OperationFailed(f"the volume is {info.get('format')}, not {want_fmt}")
        if int(info.get("capacity", 0)) != int(self.row["provisioned_size"]):
            raise OperationFailed(f"the volume's size {info.get('capacity')} is not the "
                                  f"disk's {self.row['provisioned_size']}")
        try:
            size = await self.s.storage.host_call(self.host_id, "Volume.getSize", self._vol())
        except (HostUnavailable, JsonRpcError):
            return  # sizes are informative
        actual = int(size["truesize"])
        await self.s.pool.execute("UPDATE images SET actual_size=$2 WHERE id=$1",
                                  uuid.UUID(self.volume_id), actual)
        await self.s.pool.execute("UPDATE disks SET actual_size=$2 WHERE id=$1",
                                  uuid.UUID(self.spec.disk_id), actual)

    async def _finalize_failure(self, phase: str) -> None:
        if self.ended:
            return
        cancelled = phase == "cancelled_user"
        await self.s.pool.execute("UPDATE image_transfers SET phase='finalizing_failure', "
                                  "last_updated=now() WHERE id=$1", uuid.UUID(self.transfer_id))
        try:
            await self._remove_ticket()
            await self._teardown()
        except Exception:  # best effort: the ticket expires by itself
            log.exception("cleaning up after %s", self.description())
        # An upload that did not finish leaves a volume of unknown content: illegal
        # (a new upload may fix it). A download changed nothing.
        status = "illegal" if self.upload else str(self.row["status"])
        async with self.s.pool.acquire() as conn, conn.transaction():
            await set_disks_status(conn, [self.spec.disk_id], status)
            await conn.execute("UPDATE image_transfers SET phase='finished_failure', "
                               "last_updated=now() WHERE id=$1", uuid.UUID(self.transfer_id))
        self.ended = True
        self.s.bus.publish(TOPIC, {"id": self.transfer_id, "phase": "finished_failure"})
        why = await self._field("message")
        if cancelled:
            await self.s.audit.log(_audit(TransferAudit.CANCELLED),
                                   f"Image {self.spec.direction} of disk {self.alias} was "
                                   f"cancelled.", self.refs(), severity="warning")
        else:
            await self.s.audit.log(_audit(TransferAudit.FAILED),
                                   f"Image {self.spec.direction} of disk {self.alias} failed"
                                   f"{': ' + why if why else ''}.", self.refs(),
                                   severity="error")

    async def compensate(self) -> None:
        # execute() failed (nothing started) or finish() raised after its own ending.
        if self.ended:
            return
        await self._finalize_failure("finalizing_failure")

    @classmethod
    async def recover(cls, services: Any, params: dict[str, Any]) -> str:
        """The engine died during the transfer: the host's ticket expires by itself;
        the disk is illegal after an upload, as it was after a download."""
        transfer_id, disk_id = params.get("transfer_id"), params.get("disk_id")
        if not transfer_id:
            return "nothing to undo"
        row = await services.pool.fetchrow(
            "UPDATE image_transfers SET phase='finished_failure', ticket_id=NULL, "
            "active=false, message='the engine restarted during the transfer', "
            "last_updated=now() WHERE id=$1 RETURNING disk_status_before",
            uuid.UUID(transfer_id))
        if disk_id and row is not None:
            status = "illegal" if params.get("direction") == "upload" else \
                str(row["disk_status_before"])
            async with services.pool.acquire() as conn, conn.transaction():
                await set_disks_status(conn, [disk_id], status, only_if="locked")
            return f"transfer {transfer_id} failed; disk {disk_id} is {status}"
        return f"transfer {transfer_id} failed"

    # ----------------------------------------------------------- helpers
    async def _spm(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self.s.storage.spm_call(self.dc_id, method, params)
        except JsonRpcError as exc:
            raise OperationFailed(f"{method}: {exc.message} (code {exc.code})") from None

    async def _field(self, name: str) -> Any:
        return await self.s.pool.fetchval(f"SELECT {name} FROM image_transfers WHERE id=$1",
                                          uuid.UUID(self.transfer_id))

    async def _set(self, **values: Any) -> None:
        cols = list(values)
        sets = ", ".join(f"{c}=${i + 2}" for i, c in enumerate(cols))
        await self.s.pool.execute(
            f"UPDATE image_transfers SET {sets}, last_updated=now() WHERE id=$1",
            uuid.UUID(self.transfer_id), *values.values())


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _message(exc: BaseException) -> str:
    if isinstance(exc, EngineError):
        return exc.detail
    if isinstance(exc, JsonRpcError):
        return f"{exc.message} (code {exc.code})"
    return str(exc) or type(exc).__name__
