"""OpenSSH's known_hosts format and verdicts (cdlib.connections.known_hosts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
import threading
from pathlib import Path

import pytest

from cdlib.connections import known_hosts as kh

A = b"\x00\x00\x00\x0bssh-ed25519key-a"
B = b"\x00\x00\x00\x0bssh-ed25519key-b"
E = b"\x00\x00\x00\x13ecdsa-sha2-nistp256key-e"


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def _hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{_b64(salt)}|{_b64(digest)}"


def _file(tmp_path: Path, text: str, name: str = "known_hosts") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_host_name_uses_brackets_for_ports_other_than_22() -> None:
    assert kh.host_name("10.0.0.1", 22) == "10.0.0.1"
    assert kh.host_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"


@pytest.mark.parametrize(
    ("hosts", "name", "hit"),
    [
        ("web1,10.0.0.1", "10.0.0.1", True),
        ("WEB1", "web1", True),
        ("[10.0.0.1]:2222", "[10.0.0.1]:2222", True),
        ("10.0.0.1", "[10.0.0.1]:2222", False),
        ("*.example.com", "a.example.com", True),
        ("10.0.0.?", "10.0.0.7", True),
        ("10.0.0.?", "10.0.0.17", False),
        ("*.example.com,!bad.example.com", "bad.example.com", False),
        (_hashed("10.0.0.1"), "10.0.0.1", True),
        (_hashed("10.0.0.1"), "10.0.0.2", False),
        (_hashed("[10.0.0.1]:2222"), "[10.0.0.1]:2222", True),
    ],
)
def test_host_patterns(tmp_path: Path, hosts: str, name: str, hit: bool) -> None:
    path = _file(tmp_path, f"{hosts} ssh-ed25519 {_b64(A)}\n")
    assert bool(kh.lookup([path], name)) is hit


def test_parse_keeps_line_numbers_markers_and_skips_junk(tmp_path: Path) -> None:
    text = (
        "# comment\n\n"
        f"h1 ssh-ed25519 {_b64(A)} a comment\n"
        "h1 ssh-ed25519 not-base64!!\n"
        f"@revoked h1 ssh-ed25519 {_b64(B)}\n"
        f"@cert-authority *.x ssh-ed25519 {_b64(B)}\n"
        f"@other h1 ssh-ed25519 {_b64(B)}\n"
    )
    got = kh.parse(text, "f")
    assert [(e.line, e.marker, e.key_type) for e in got] == [
        (3, None, "ssh-ed25519"),
        (5, "@revoked", "ssh-ed25519"),
        (6, "@cert-authority", "ssh-ed25519"),
    ]
    assert got[0].where == "f:3" and got[0].blob == A


def test_verdicts_follow_openssh(tmp_path: Path) -> None:
    user = _file(tmp_path, f"h1 ssh-ed25519 {_b64(B)}\nh2 ecdsa-sha2-nistp256 {_b64(E)}\n")
    glob = _file(tmp_path, f"h1,h3 ssh-ed25519 {_b64(A)}\n", "global")
    # A line holding the key wins over one holding another key of the type.
    assert kh.check(kh.lookup([user, glob], "h1"), "ssh-ed25519", A).status == "known"
    changed = kh.check(kh.lookup([user], "h1"), "ssh-ed25519", A)
    assert changed.status == "changed" and changed.entry is not None
    assert changed.entry.where == f"{user}:1"
    # Known only with another type: new (OpenSSH's accept-new adds it).
    other = kh.check(kh.lookup([user], "h2"), "ssh-ed25519", A)
    assert other.status == "new" and [e.where for e in other.others] == [f"{user}:2"]
    assert kh.check(kh.lookup([user, glob], "h9"), "ssh-ed25519", A).status == "new"
    # A CA line is no known key; a revoked one refuses even a listed key.
    ca = _file(tmp_path, f"@cert-authority h1 ssh-ed25519 {_b64(A)}\n", "ca")
    assert kh.check(kh.lookup([ca], "h1"), "ssh-ed25519", A).status == "new"
    rev = _file(tmp_path, f"h1 ssh-ed25519 {_b64(A)}\n@revoked * ssh-ed25519 {_b64(A)}\n", "r")
    revoked = kh.check(kh.lookup([rev], "h1"), "ssh-ed25519", A)
    assert revoked.status == "revoked" and revoked.entry is not None
    assert revoked.entry.where == f"{rev}:2"


def test_lookup_skips_missing_files_and_sees_changes(tmp_path: Path) -> None:
    path = tmp_path / "kh"
    assert kh.lookup([str(path)], "h1") == []
    path.write_text(f"h1 ssh-ed25519 {_b64(A)}\n")
    assert len(kh.lookup([str(path)], "h1")) == 1
    path.write_text(f"h2 ssh-ed25519 {_b64(A)}\nh1 ssh-ed25519 {_b64(B)}\n")
    assert [e.blob for e in kh.lookup([str(path)], "h1")] == [B]


def test_files_from_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USER", "ann")
    user, glob = kh.files_from_config({})
    assert user == [f"{tmp_path}/.ssh/known_hosts", f"{tmp_path}/.ssh/known_hosts2"]
    assert glob == ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
    user, glob = kh.files_from_config(
        {"userknownhostsfile": "~/a %d/b/%u /x/%h", "globalknownhostsfile": "none"},
        host="web1",
    )
    assert user == [f"{tmp_path}/a", f"{tmp_path}/b/ann", "/x/web1"]
    assert glob == []


def test_record_creates_a_private_file_and_appends_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "known_hosts"
    names = [f"[10.0.0.{i}]:2222" for i in range(20)]
    threads = [
        threading.Thread(target=kh.record, args=(str(path), n, "ssh-ed25519", A)) for n in names * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"{n} ssh-ed25519 {_b64(A)}" for n in names)


def test_record_appends_after_a_last_line_without_newline_and_can_hash(tmp_path: Path) -> None:
    path = _file(tmp_path, f"h1 ssh-ed25519 {_b64(A)}")
    assert kh.record(path, "h2", "ssh-ed25519", B, hashed=True).status == "new"
    lines = Path(path).read_text().splitlines()
    # The name is hashed: not among the line's host names (the salt is random base64 and may
    # itself contain "h2").
    assert len(lines) == 2 and lines[1].startswith("|1|")
    assert "h2" not in lines[1].split()[0].split(",")
    assert [e.blob for e in kh.lookup([path], "h2")] == [B]


def test_record_refuses_a_key_that_another_run_recorded_meanwhile(tmp_path: Path) -> None:
    path = _file(tmp_path, f"h1 ssh-ed25519 {_b64(A)}\n")
    verdict = kh.record(path, "h1", "ssh-ed25519", B)
    assert verdict.status == "changed"
    assert Path(path).read_text() == f"h1 ssh-ed25519 {_b64(A)}\n"


def test_fingerprint_is_openssh_sha256() -> None:
    digest = base64.b64encode(hashlib.sha256(A).digest()).decode().rstrip("=")
    assert kh.fingerprint(A) == "SHA256:" + digest


def test_ssh_config_chooses_the_name_and_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cdlib.connections import ssh_config
    from cdlib.connections.ssh import SSHConnection, _HostKeyCheck

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text(
        "Host web1\n  HostName 10.1.1.1\n  Port 2222\n  UserKnownHostsFile ~/k1 ~/k2\n"
        "Host web2\n  HostKeyAlias alias2\n  GlobalKnownHostsFile /g\n"
    )

    def checker(name: str, known_hosts: str | None = None) -> _HostKeyCheck:
        conn = SSHConnection(name, known_hosts=known_hosts)
        return conn._host_key_check(ssh_config.resolve(name))

    one = checker("web1")
    assert one.name == "[10.1.1.1]:2222"
    assert one.user_files == [f"{tmp_path}/k1", f"{tmp_path}/k2"]
    two = checker("web2")
    assert (two.name, two.global_files) == ("alias2", ["/g"])
    assert two.user_files[0] == f"{tmp_path}/.ssh/known_hosts"
    # cdlib_known_hosts_file replaces the user files, as -o UserKnownHostsFile does.
    assert checker("web1", "~/mine").user_files == [f"{tmp_path}/mine"]
