"""An LDAP directory as an authentication domain (config auth.ldap).

`user@<name>` logs in by binding to the directory as that user; their groups
come from a search (group_filter) and map to `groups` rows, so permissions
granted to a group apply to its members. ldap3 is synchronous: every call
runs in a worker thread with the domain's timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from ..config import LdapConfig
from ..errors import EngineError, OperationFailed, Unauthorized

__all__ = ["LdapDirectory", "DirectoryUser", "DirectoryGroup"]

T = TypeVar("T")
_USER_ATTRS = ["uid", "cn", "givenName", "sn", "mail", "entryUUID", "departmentNumber"]


@dataclass(frozen=True)
class DirectoryGroup:
    dn: str
    name: str
    external_id: str


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    principal: str
    external_id: str
    first_name: str
    last_name: str
    email: str
    department: str
    groups: tuple[DirectoryGroup, ...] = ()


def _first(entry: dict[str, Any], key: str) -> str:
    v = entry.get(key)
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v) if v is not None else ""


class LdapDirectory:
    def __init__(self, cfg: LdapConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name
        # ldap3 packs socket timeouts as integers.
        self._timeout = max(1, int(round(cfg.timeout_s)))

    # ----------------------------------------------------------- blocking
    def _server(self) -> ldap3.Server:
        return ldap3.Server(self.cfg.url, connect_timeout=self._timeout, get_info=ldap3.NONE)

    def _service_bind_blocking(self) -> ldap3.Connection:
        conn = ldap3.Connection(self._server(), user=self.cfg.bind_dn or None,
                                password=self.cfg.bind_password or None,
                                receive_timeout=self._timeout, raise_exceptions=False)
        if not conn.bind():
            raise OperationFailed(f"LDAP domain {self.name}: the service bind failed: "
                                  f"{conn.result.get('description')}")
        return conn

    def _search_user_blocking(self, conn: ldap3.Connection, user: str) -> DirectoryUser | None:
        flt = self.cfg.user_filter.format(user=escape_filter_chars(user))
        conn.search(self.cfg.user_base, flt, ldap3.SUBTREE, attributes=_USER_ATTRS, size_limit=2)
        hits = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if len(hits) != 1:
            return None
        e = hits[0]
        attrs = e.get("attributes", {})
        return DirectoryUser(
            dn=e["dn"], principal=_first(attrs, "uid") or user,
            external_id=_first(attrs, "entryUUID") or e["dn"],
            first_name=_first(attrs, "givenName") or _first(attrs, "cn"),
            last_name=_first(attrs, "sn"), email=_first(attrs, "mail"),
            department=_first(attrs, "departmentNumber"))

    def _groups_blocking(self, conn: ldap3.Connection, u: DirectoryUser) -> tuple[DirectoryGroup, ...]:
        if not self.cfg.group_base:
            return ()
        flt = self.cfg.group_filter.format(dn=escape_filter_chars(u.dn),
                                           user=escape_filter_chars(u.principal))
        conn.search(self.cfg.group_base, flt, ldap3.SUBTREE, attributes=["cn", "entryUUID"])
        return tuple(DirectoryGroup(e["dn"], _first(e["attributes"], "cn"),
                                    _first(e["attributes"], "entryUUID") or e["dn"])
                     for e in conn.response or [] if e.get("type") == "searchResEntry")

    def _authenticate_blocking(self, user: str, password: str) -> DirectoryUser:
        if not password:
            raise Unauthorized("empty password")
        svc = self._service_bind_blocking()
        try:
            found = self._search_user_blocking(svc, user)
            if found is None:
                raise Unauthorized(f"no such user in {self.name}")
            conn = ldap3.Connection(self._server(), user=found.dn, password=password,
                                    receive_timeout=self._timeout, raise_exceptions=False)
            try:
                if not conn.bind():
                    raise Unauthorized("invalid credentials")
            finally:
                conn.unbind()
            return DirectoryUser(**{**found.__dict__,
                                    "groups": self._groups_blocking(svc, found)})
        finally:
            svc.unbind()

    def _find_user_blocking(self, user: str) -> DirectoryUser | None:
        svc = self._service_bind_blocking()
        try:
            found = self._search_user_blocking(svc, user)
            if found is None:
                return None
            return DirectoryUser(**{**found.__dict__, "groups": self._groups_blocking(svc, found)})
        finally:
            svc.unbind()

    def _find_group_blocking(self, name: str) -> DirectoryGroup | None:
        svc = self._service_bind_blocking()
        try:
            svc.search(self.cfg.group_base, f"(cn={escape_filter_chars(name)})", ldap3.SUBTREE,
                       attributes=["cn", "entryUUID"], size_limit=2)
            hits = [e for e in svc.response or [] if e.get("type") == "searchResEntry"]
            if len(hits) != 1:
                return None
            return DirectoryGroup(hits[0]["dn"], _first(hits[0]["attributes"], "cn"),
                                  _first(hits[0]["attributes"], "entryUUID") or hits[0]["dn"])
        finally:
            svc.unbind()

    # -------------------------------------------------------------- async
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args),
                                          timeout=self.cfg.timeout_s * 3)
        except asyncio.TimeoutError:
            raise OperationFailed(f"LDAP domain {self.name} did not answer in time") from None
        except EngineError:
            raise
        except (LDAPException, OSError, ValueError) as exc:
            raise OperationFailed(f"LDAP domain {self.name}: {exc}") from None

    async def authenticate(self, user: str, password: str) -> DirectoryUser:
        return await self._run(self._authenticate_blocking, user, password)

    async def find_user(self, user: str) -> DirectoryUser | None:
        return await self._run(self._find_user_blocking, user)

    async def find_group(self, name: str) -> DirectoryGroup | None:
        return await self._run(self._find_group_blocking, name)
