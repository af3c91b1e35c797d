"""Release writes stay inside the release dir, against the real fleet (security item 4).

Each build below tried to make the install write outside ``releases/<V>``: through a
REVISION symlink, a ``conf`` directory symlink, a chain of relative links. The victim files
outside must keep their content, and the old release must stay current with nothing
half-installed next to it.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import cdlib
from cdlib import Play, Status, tasks
from cdlib.engine.errors import PlaybookError
from cdlib.engine.playbook import Playbook
from tests.fleet import Fleet

pytestmark = pytest.mark.fleet

ROOT = "/srv/sampleapp"
VICTIM = "/srv/victim.txt"
OTHER = "/srv/other"

#: (name, symlink target or None for a file) beyond VERSION; each escapes the release.
ESCAPES: dict[str, list[tuple[str, str | None]]] = {
    "revision-abs": [("REVISION", VICTIM)],
    "revision-rel": [("REVISION", "../../../victim.txt")],
    "conf-dir": [("conf", OTHER)],
    "chain": [("conf", "x"), ("x", "y/../z"), ("y", None), ("z", "../../../other")],
}
NAMED = {
    "revision-abs": f"REVISION is a symlink to {VICTIM}",
    "revision-rel": "REVISION is a symlink to ../../../victim.txt",
    "conf-dir": f"conf is a symlink to {OTHER}",
    "chain": "is a symlink to",
}


def _build(path: Path, version: str, extra: list[tuple[str, str | None]] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, link in [("VERSION", None), *(extra or [])]:
            info = tarfile.TarInfo(name)
            if link is None:
                data = f"{version}\n".encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = link
                tar.addfile(info)
    return path


def _book(tmp_path: Path, version: str, build: Path, **kw: Any) -> Playbook:
    play = Play(f"release {version}", hosts="all")
    play.task(
        tasks.install(
            "sampleapp",
            version,
            str(build),
            templates={"app.ini.j2": "conf/app.ini"},
            env={"COLOR": "{{ color | default('blue') }}"},
            **kw,
        )
    )
    return Playbook(tmp_path / "site.py", [play])


def _failures(r: cdlib.RunResult) -> list[str]:
    return [x.msg for x in r.results if x.status is Status.FAILED]


@pytest.fixture
def host(fleet: Fleet, tmp_path: Path) -> tuple[Fleet, Path]:
    """One clean host with 1.0.0 installed, a victim file and an empty dir outside the app."""
    fleet.reset()
    inv = fleet.inventory_yaml(tmp_path / "one.yml", hosts=[1])
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.ini.j2").write_text("port = {{ port | default(80) }}\n")
    good = _build(tmp_path / "1.0.0.tar.gz", "1.0.0")
    r = cdlib.run(_book(tmp_path, "1.0.0", good), inv)
    assert r.ok, _failures(r)
    fleet.path(1, VICTIM).write_text("precious\n")
    fleet.path(1, OTHER).mkdir()
    return fleet, inv


def _nothing_written_outside(fleet: Fleet) -> None:
    assert fleet.path(1, VICTIM).read_text() == "precious\n"
    assert list(fleet.path(1, OTHER).iterdir()) == []
    assert fleet.ssh(1, f"readlink {ROOT}/current").stdout.strip() == f"{ROOT}/releases/1.0.0"
    # No half-installed release: neither releases/1.1.0 nor the temp dir it is unpacked in.
    assert [p.name for p in fleet.path(1, f"{ROOT}/releases").iterdir()] == ["1.0.0"]
    assert not [p for p in fleet.path(1, f"{ROOT}/.cdlib").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_build_with_a_symlink_out_is_refused_before_any_host(
    host: tuple[Fleet, Path], tmp_path: Path, case: str
) -> None:
    fleet, inv = host
    bad = _build(tmp_path / "bad.tar.gz", "1.1.0", ESCAPES[case])
    with pytest.raises(PlaybookError) as err:
        cdlib.run(_book(tmp_path, "1.1.0", bad), inv)
    msg = str(err.value)
    name, target = ESCAPES[case][0]
    assert f"build {str(bad)!r} refused: member {name!r} is a symlink to {target!r}" in msg
    assert "outside the release" in msg
    _nothing_written_outside(fleet)


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_the_host_refuses_it_too_when_the_local_check_is_skipped(
    host: tuple[Fleet, Path], tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host-side checks alone (a build the local scan missed) keep every write inside.
    fleet, inv = host
    monkeypatch.setattr(sys.modules["cdlib.tasks.install"], "check_build", lambda *a: (0, ""))
    bad = _build(tmp_path / "bad.tar.gz", "1.1.0", ESCAPES[case])
    r = cdlib.run(_book(tmp_path, "1.1.0", bad), inv)
    [msg] = _failures(r)
    assert "outside the release" in msg and NAMED[case] in msg, msg
    _nothing_written_outside(fleet)


def test_links_inside_are_kept_and_revision_replaced_not_followed(
    host: tuple[Fleet, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet, inv = host
    build = _build(tmp_path / "1.1.0.tar.gz", "1.1.0", [("REVISION", "VERSION"), ("v", "VERSION")])
    r = cdlib.run(_book(tmp_path, "1.1.0", build), inv)
    assert r.ok, _failures(r)
    rel = fleet.path(1, f"{ROOT}/releases/1.1.0")
    assert not (rel / "REVISION").is_symlink() and "version=1.1.0" in (rel / "REVISION").read_text()
    assert (rel / "VERSION").read_text() == "1.1.0\n"
    assert (rel / "v").is_symlink()

    # A symlinked directory on the way to a config file, even one pointing inside, is refused
    # by the host when the local check is skipped.
    monkeypatch.setattr(sys.modules["cdlib.tasks.install"], "check_build", lambda *a: (0, ""))
    inner = _build(tmp_path / "1.2.0.tar.gz", "1.2.0", [("etc", None), ("conf", "etc")])
    [msg] = _failures(cdlib.run(_book(tmp_path, "1.2.0", inner), inv))
    assert "refusing to write conf/app.ini in the release: conf is a symlink to etc" in msg
    assert not fleet.path(1, f"{ROOT}/releases/1.2.0").exists()


def test_config_write_into_a_tampered_release_is_refused_or_replaces_the_link(
    host: tuple[Fleet, Path], tmp_path: Path
) -> None:
    fleet, inv = host
    rel = fleet.path(1, f"{ROOT}/releases/1.0.0")
    good = tmp_path / "1.0.0.tar.gz"
    env_before = (rel / ".env").read_text()
    # conf/ swapped for a link out after the install: a config change must not follow it,
    # and no other config file is written either (nothing half-done).
    (rel / "conf" / "app.ini").unlink()
    (rel / "conf").rmdir()
    (rel / "conf").symlink_to(OTHER)
    r = cdlib.run(_book(tmp_path, "1.0.0", good), inv, extra_vars={"port": 81, "color": "red"})
    [msg] = _failures(r)
    assert f"refusing to write conf/app.ini in the release: conf is a symlink to {OTHER}" in msg
    assert list(fleet.path(1, OTHER).iterdir()) == []
    assert (rel / ".env").read_text() == env_before

    # The env file itself swapped for a link to the victim: it is replaced, not followed.
    (rel / "conf").unlink()
    (rel / ".env").unlink()
    (rel / ".env").symlink_to(VICTIM)
    r = cdlib.run(_book(tmp_path, "1.0.0", good), inv, extra_vars={"color": "red"})
    assert r.ok, _failures(r)
    assert fleet.path(1, VICTIM).read_text() == "precious\n"
    assert not (rel / ".env").is_symlink() and "COLOR=red" in (rel / ".env").read_text()
    assert (rel / "conf" / "app.ini").read_text() == "port = 80\n"
