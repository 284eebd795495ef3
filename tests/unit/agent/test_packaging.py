"""conf/ovagent.yaml, systemd/ovagent.service and the config loader."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from ovagent import config
from protocol.configfile import ConfigError
from tests.fixtures.agent import REPO


def test_default_configuration_file_is_the_defaults() -> None:
    assert config.load(REPO / "conf" / "ovagent.yaml") == config.AgentConfig()


def test_every_key_is_documented() -> None:
    text = (REPO / "conf" / "ovagent.yaml").read_text()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":"):
            continue
        assert lines[i - 1].strip().startswith("#"), f"undocumented key: {stripped}"


def test_unknown_keys_and_bad_values_are_named(tmp_path: Path) -> None:
    path = tmp_path / "ovagent.yaml"
    path.write_text("vm:\n  powering_up: 3\n")
    with pytest.raises(ConfigError, match="vm.powering_up"):
        config.load(path)
    path.write_text("listen:\n  port: many\n")
    with pytest.raises(ConfigError, match="listen.port"):
        config.load(path)


def test_drop_ins_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "ovagent.yaml"
    path.write_text("vm:\n  powering_up_s: 3\nsampling:\n  vm_interval_s: 5\n")
    (tmp_path / "ovagent.yaml.d").mkdir()
    (tmp_path / "ovagent.yaml.d" / "10-lab.yaml").write_text("sampling:\n  host_interval_s: 7\n")
    cfg = config.load(path, {"libvirt.uri": "test:///default", "listen.port": 1})
    assert cfg.vm.powering_up_s == 3.0
    assert (cfg.sampling.vm_interval_s, cfg.sampling.host_interval_s) == (5.0, 7.0)
    assert cfg.libvirt.uri == "test:///default" and cfg.listen.port == 1


@pytest.mark.parametrize("value, parsed", [("127.0.0.1:1", ("127.0.0.1", 1)),
                                           ("[::1]:54321", ("::1", 54321)),
                                           (":5", ("0.0.0.0", 5))])
def test_parse_listen(value: str, parsed: tuple[str, int]) -> None:
    assert config.parse_listen(value) == parsed


def test_parse_listen_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        config.parse_listen("localhost")


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "systemd" / "ovagent.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "on-failure"
    # QEMU processes belong to libvirtd's cgroups, never to ours: no KillMode
    # can hit them; mixed also cleans up stuck hook scripts.
    assert service["KillMode"] in ("mixed", "control-group")
    assert service["ExecStart"].split()[0].endswith("/ovagent")
    assert "libvirtd.service" in unit["Unit"]["After"]
    assert "Requires" not in unit["Unit"]  # a libvirtd restart must not stop the agent
