"""reconcile(): the one rule set that turns host reports into VM changes."""

from __future__ import annotations

from ovengine.monitoring.reconcile import (ExternalVm, ReleaseVm, StatsUpdate, StatusChange,
                                           Vanished, VmView, reconcile)
from ovengine.monitoring.report import (HostReport, ReportedVm, reported_vm_from_stats,
                                        reported_vms_from_event)

H1, H2 = "host-1", "host-2"


def view(vm_id: str, status: str, host: str | None, agent_time: int = 100,
         changed_at: float = 1000.0) -> VmView:
    return VmView(vm_id, vm_id, status, host, agent_time, changed_at)


def rep(vm_id: str, status: str, t: int = 200, **kw: object) -> ReportedVm:
    return ReportedVm(vm_id, status, t, **kw)  # type: ignore[arg-type]


def run(views: list[VmView], host: str, vms: list[ReportedVm], complete: bool = True,
        requested_at: float = 2000.0) -> list[object]:
    by_id = {v.vm_id: v for v in views}
    on_host = [v.vm_id for v in views if v.run_on_host_id == host]
    return reconcile(by_id, on_host, HostReport(host, tuple(vms), complete, requested_at))


def kinds(changes: list[object]) -> list[str]:
    return [type(c).__name__ for c in changes]


def test_status_change_detected() -> None:
    changes = run([view("a", "powering_up", H1)], H1, [rep("a", "up")])
    assert kinds(changes) == ["StatusChange"]
    c = changes[0]
    assert isinstance(c, StatusChange)
    assert (c.old_status, c.new_status, c.host_id, c.agent_time) == ("powering_up", "up", H1,
                                                                       200)


def test_same_status_gives_only_stats() -> None:
    r = rep("a", "up", stats={"cpu_user": 1.0})
    changes = run([view("a", "up", H1)], H1, [r])
    assert kinds(changes) == ["StatsUpdate"]
    assert isinstance(changes[0], StatsUpdate) and changes[0].stats == {"cpu_user": 1.0}


def test_stale_report_is_ignored() -> None:
    # The engine already applied an event newer than this poll's sample.
    changes = run([view("a", "paused", H1, agent_time=500)], H1, [rep("a", "up", t=400)])
    assert changes == []


def test_down_is_recorded_then_released() -> None:
    changes = run([view("a", "up", H1)], H1,
                  [rep("a", "down", exit_code=0, exit_message="bye", exit_reason=6)])
    assert kinds(changes) == ["StatusChange", "ReleaseVm"]
    assert isinstance(changes[1], ReleaseVm) and changes[1].host_id == H1


def test_down_vm_already_down_is_only_released() -> None:
    changes = run([view("a", "down", None)], H1, [rep("a", "down")])
    assert kinds(changes) == ["ReleaseVm"]


def test_unknown_running_vm_is_external_and_unknown_down_vm_released() -> None:
    changes = run([], H1, [rep("x", "up", name="foreign"), rep("y", "down")])
    assert kinds(changes) == ["ExternalVm", "ReleaseVm"]
    assert isinstance(changes[0], ExternalVm) and changes[0].report.name == "foreign"


def test_vanished_only_in_complete_reports() -> None:
    views = [view("a", "up", H1), view("b", "up", H1)]
    assert kinds(run(views, H1, [rep("a", "up")], complete=True)) == ["Vanished"]
    assert run(views, H1, [rep("a", "up")], complete=False) == []


def test_not_vanished_when_changed_after_the_poll_left() -> None:
    # RunVm marked it wait_for_launch after the poll was sent: not evidence.
    views = [view("a", "wait_for_launch", H1, changed_at=3000.0)]
    assert run(views, H1, [], requested_at=2000.0) == []
    views = [view("a", "wait_for_launch", H1, changed_at=1000.0)]
    changes = run(views, H1, [], requested_at=2000.0)
    assert kinds(changes) == ["Vanished"]
    assert isinstance(changes[0], Vanished) and changes[0].old_status == "wait_for_launch"


def test_down_vms_are_never_vanished() -> None:
    assert run([view("a", "down", H1)], H1, []) == []


def test_vm_owned_by_another_host_is_not_stolen() -> None:
    changes = run([view("a", "up", H2)], H1, [rep("a", "up")])
    assert changes == []


def test_unknown_vm_found_running_on_a_host_is_adopted() -> None:
    # Its host went non_responsive; it turns up running elsewhere.
    changes = run([view("a", "unknown", H2)], H1, [rep("a", "up")])
    assert kinds(changes) == ["StatusChange"]


def test_down_report_from_other_host_does_not_change_status() -> None:
    changes = run([view("a", "up", H2)], H1, [rep("a", "down")])
    assert kinds(changes) == ["ReleaseVm"]


def test_reports_from_vdsm_shapes() -> None:
    stats = {"vmId": "A1", "status": "Up", "statusTime": "4294967295", "monitorResponse": "-1",
             "cpuUser": "1.50", "cpuSys": "0.25", "memUsage": "30", "elapsedTime": "12",
             "displayInfo": [{"type": "vnc", "port": "5900", "tlsPort": "-1",
                              "ipAddress": "0"}]}
    r = reported_vm_from_stats(stats)
    assert r.vm_id == "a1" and r.status == "not_responding" and r.agent_time == 4294967295
    assert r.stats is not None and r.stats["cpu_user"] == 1.5
    down = reported_vm_from_stats({"vmId": "b", "status": "Down", "statusTime": "5",
                                   "exitCode": 1, "exitMessage": "boom", "exitReason": 1})
    assert down.status == "down" and down.stats is None and down.exit_message == "boom"
    event = reported_vms_from_event({"notify_time": 77, "c": {"status": "Paused",
                                                              "pauseCode": "EIO"}})
    assert [(e.vm_id, e.status, e.agent_time, e.pause_code) for e in event] == [
        ("c", "paused", 77, "EIO")]
    # vdsm status strings, including the odd ones.
    for vdsm, ours in [("Saving State", "saving_state"), ("RebootInProgress",
                                                          "reboot_in_progress"),
                       ("Migration Source", "migrating"), ("WaitForLaunch", "wait_for_launch")]:
        assert reported_vm_from_stats({"vmId": "d", "status": vdsm}).status == ours
