"""The client configuration a connection honours (~/.ssh/config, then the system file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.connections import ssh_config
from cdlib.connections.ssh_config import SSHConfigError


def _files(tmp_path: Path, user: str, system: str = "") -> tuple[str, str]:
    (tmp_path / "user").write_text(user)
    (tmp_path / "system").write_text(system)
    return str(tmp_path / "user"), str(tmp_path / "system")


def test_host_name_user_port_and_keys_come_from_the_first_file_that_sets_them(
    tmp_path: Path,
) -> None:
    key = tmp_path / "id_web"
    key.write_text("not read here")
    paths = _files(
        tmp_path,
        f"Host web1\n  HostName 10.1.1.1\n  Port 2222\n  IdentityFile {key}\n"
        f"  IdentityFile {tmp_path}/missing\n",
        "Host *\n  User deploy\n  Port 2200\n",
    )
    found = ssh_config.resolve("web1", paths=paths)
    assert (found.hostname, found.port, found.user) == ("10.1.1.1", 2222, "deploy")
    # A missing IdentityFile is skipped, as ssh skips it.
    assert found.identity_files == (str(key),)
    # The inventory's port and user win, as ssh's -p and -l do.
    mine = ssh_config.resolve("web1", port=22, user="root", paths=paths)
    assert (mine.port, mine.user) == (22, "root")
    assert ssh_config.resolve("other", paths=paths).port == 2200


def test_proxy_jump_runs_through_openssh_and_proxy_command_as_written(tmp_path: Path) -> None:
    paths = _files(
        tmp_path,
        "Host inner\n  ProxyJump bastion1,admin@bastion2:2022\n"
        "Host piped\n  ProxyCommand nc -q0 %h %p\n",
    )
    inner = ssh_config.resolve("inner", paths=paths)
    assert inner.proxy_argv(10) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-W", "inner:22", "-J", "admin@bastion2:2022", "--", "bastion1",
    ]  # fmt: skip
    assert ssh_config.resolve("piped", paths=paths).proxy_argv(10) == ["nc", "-q0", "piped", "22"]
    assert ssh_config.resolve("direct", paths=paths).proxy_argv(10) is None


def test_a_port_that_is_not_a_number_is_an_error_naming_the_host(tmp_path: Path) -> None:
    paths = _files(tmp_path, "Host h\n  Port ssh\n")
    with pytest.raises(SSHConfigError, match="ssh config for h: Port 'ssh' is not a number"):
        ssh_config.resolve("h", paths=paths)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    paths = _files(tmp_path, "Host h\n  Port 1\n")
    assert ssh_config.resolve("h", paths=paths).port == 1
    Path(paths[0]).write_text("Host h\n  Port 22022\n")
    assert ssh_config.resolve("h", paths=paths).port == 22022
