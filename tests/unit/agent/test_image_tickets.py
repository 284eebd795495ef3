"""Image transfer tickets (ovagent.imageio.tickets) on a controlled clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ovagent.imageio.tickets import Forbidden, TicketError, TicketStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ticket(**kw: Any) -> dict[str, Any]:
    return {"uuid": "t1", "size": 1024, "url": "file:///repo/mnt/x/sd/images/i/v",
            "timeout": 60, "ops": ["read"], **kw}


@pytest.fixture
def store() -> tuple[TicketStore, Clock]:
    clock = Clock()
    return TicketStore([Path("/repo")], clock), clock


def test_add_authorize_expire_extend(store: tuple[TicketStore, Clock]) -> None:
    tickets, clock = store
    tickets.add(ticket(filename="d.raw"))
    t = tickets.authorize("t1", "read")
    with pytest.raises(Forbidden, match="forbids write"):
        tickets.authorize("t1", "write")
    with pytest.raises(Forbidden, match="No such ticket t2"):
        tickets.authorize("t2", "read")
    tickets.begin(t)
    t.transferred += 100
    clock.now += 5
    info = tickets.info("t1")
    assert info["active"] and info["connections"] == 1 and info["idle_time"] == 0
    assert info["transferred"] == 100 and info["expires"] == 1060 and info["filename"] == "d.raw"
    tickets.end(t)
    clock.now += 3
    assert tickets.info("t1")["idle_time"] == 3
    clock.now = 1060
    with pytest.raises(Forbidden, match="expired"):
        tickets.authorize("t1", "read")
    tickets.extend("t1", 30)
    assert tickets.authorize("t1", None) is t and tickets.info("t1")["expires"] == 1090


def test_remove_while_in_use_cancels(store: tuple[TicketStore, Clock]) -> None:
    tickets, _ = store
    t = tickets.add(ticket())
    tickets.begin(t)
    tickets.remove("t1")
    assert t.canceled
    with pytest.raises(Forbidden):
        tickets.authorize("t1", "read")
    tickets.remove("t1")  # unknown: fine
    with pytest.raises(TicketError):
        tickets.info("t1")


@pytest.mark.parametrize("bad", [
    {"url": "file:///etc/passwd"},
    {"url": "file:///repo/../etc/passwd"},
    {"url": "nbd://host/export"},
    {"url": "file://otherhost/repo/x"},
    {"ops": ["delete"]},
    {"ops": []},
    {"size": -1},
    {"timeout": "soon"},
    {"uuid": ""},
])
def test_bad_tickets_are_refused(store: tuple[TicketStore, Clock], bad: dict[str, Any]) -> None:
    tickets, _ = store
    with pytest.raises(TicketError) as err:
        tickets.add(ticket(**bad))
    assert err.value.code == 482


def test_adding_again_renews_and_keeps_progress(store: tuple[TicketStore, Clock]) -> None:
    tickets, clock = store
    t = tickets.add(ticket())
    t.transferred = 512
    clock.now += 50
    again = tickets.add(ticket(timeout=100))
    assert again.transferred == 512 and tickets.info("t1")["expires"] == 1150
    with pytest.raises(TicketError):
        tickets.add(ticket(url="file:///repo/other"))
