"""Releases from a team's pipeline: options from variables, --limit, metadata, build
sha256, gate approvals, environments and promotion, and ``cdlib status`` of every app.

The router is the in-memory one of test_release_state.py; deploys are real plays on
the local connection, each writing the version into its host's directory.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdlib import Play, Secret, tasks
from cdlib.cli.main import main
from cdlib.engine.errors import PlaybookError, PlaybookErrors
from cdlib.release import BlueGreen, Canary, CanaryStep, DeployTarget, Gate, History, Rolling
from cdlib.release.history import ReleaseRecord
from tests.unit.test_release_state import _ROUTERS, MemoryRouter, MemorySpec


@pytest.fixture
def two_routers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, MemoryRouter]]:
    for name in ("r", "staging", "production"):
        _ROUTERS[name] = MemoryRouter()
        _ROUTERS[name].tags["blue"] = "1.0.0"
    yield dict(_ROUTERS)
    _ROUTERS.clear()


@pytest.fixture
def inv(tmp_path: Path) -> str:
    def host(name: str) -> dict[str, Any]:
        return {"app_dir": str(tmp_path / "hosts" / name)}

    data = {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_host": "127.0.0.1", "env": "prod"},
            "children": {
                "blue": {"hosts": {"blue1": host("blue1"), "blue2": host("blue2")}},
                "green": {"hosts": {"green1": host("green1"), "green2": host("green2")}},
            },
        }
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _deploy(target: DeployTarget) -> Play:
    play = Play(f"deploy {target.version}", hosts=target.hosts)
    play.task(tasks.directory("{{ app_dir }}"))
    play.task(tasks.file("{{ app_dir }}/VERSION", content="{{ release_version }}\n"))
    return play


def _deployed(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "hosts"
    if not root.exists():
        return {}
    return {p.parent.name: p.read_text().strip() for p in sorted(root.glob("*/VERSION"))}


def _bg(sd: str, **kw: Any) -> BlueGreen:
    opts: dict[str, Any] = {
        "app": "app",
        "version": "{{ version }}",
        "router": MemorySpec("r"),
        "deploy": _deploy,
        "port": 8080,
        "state_dir": sd,
    }
    opts.update(kw)
    return BlueGreen(**opts)


# -- strategy options from variables ------------------------------------------------------
def test_version_comes_from_extra_vars_and_the_strategy_keeps_its_template(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    sd = str(tmp_path / "state")
    bg = _bg(sd)
    res = bg.run(inv, extra_vars={"version": "2.0.0"})
    assert res.ok, [r.msg for r in res.results]
    assert two_routers["r"].tags["green"] == "2.0.0"
    assert _deployed(tmp_path) == {"green1": "2.0.0", "green2": "2.0.0"}
    assert bg.version == "{{ version }}"  # rendered into a per-run copy only
    again = bg.run(inv, extra_vars={"version": "3.0.0"})
    assert again.ok
    assert two_routers["r"].tags["blue"] == "3.0.0"
    versions = [r.version for r in History("app", state_dir=sd).all()]
    assert versions == ["2.0.0", "3.0.0"]


def test_strategy_vars_and_lookup_env(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sd = str(tmp_path / "state")
    monkeypatch.setenv("PIPELINE_VERSION", "4.2.0")
    bg = _bg(sd, version="{{ lookup('env', 'PIPELINE_VERSION') }}", environment="{{ env }}")
    assert bg.run(inv).ok
    rec = History("app", state_dir=sd).latest()
    assert rec is not None and (rec.version, rec.environment) == ("4.2.0", "prod")
    # A strategy's vars are defaults; -e wins.
    bg2 = _bg(sd, vars={"version": "5.0.0"})
    assert bg2.run(inv).ok
    assert bg2.run(inv, extra_vars={"version": "6.0.0"}).ok
    assert [r.version for r in History("app", state_dir=sd).all()][-2:] == ["5.0.0", "6.0.0"]


@pytest.mark.parametrize(
    ("options", "extra", "why"),
    [
        ({}, {}, "undefined variable 'version'"),
        ({}, {"version": "{{ other }}"}, "still holds a template after rendering"),
        ({"version": "{{ lookup('env', 'CDLIB_TEST_UNSET_X') }}"}, {}, "is not set"),
        ({"environment": "{{ nope }}"}, {"version": "1"}, "option 'environment'"),
    ],
)
def test_an_option_that_does_not_render_stops_before_anything(
    tmp_path: Path,
    two_routers: dict[str, MemoryRouter],
    inv: str,
    options: dict[str, Any],
    extra: dict[str, Any],
    why: str,
) -> None:
    sd = tmp_path / "state"
    bg = _bg(str(sd), **options)
    with pytest.raises(PlaybookError) as err:
        bg.run(inv, extra_vars=extra)
    assert why in str(err.value)
    assert f"{Path(__file__).name}:" in str(err.value)  # the strategy's file:line
    assert _deployed(tmp_path) == {}
    assert two_routers["r"].changes == []
    assert not sd.exists() or not list(sd.rglob("*.json"))


def test_cli_exits_4_on_an_undefined_option(tmp_path: Path) -> None:
    pb = tmp_path / "release.py"
    pb.write_text(
        "from cdlib.release import BlueGreen, LocalHAProxySpec\n"
        "BlueGreen(app='app', version='{{ version }}',\n"
        f"    router=LocalHAProxySpec(workdir={str(tmp_path / 'lb')!r}, bind='127.0.0.1:1'))\n"
    )
    inv = tmp_path / "inv.yml"
    inv.write_text(
        yaml.safe_dump(
            {"all": {"children": {"blue": {"hosts": {"b": {}}}, "green": {"hosts": {"g": {}}}}}}
        )
    )
    assert main(["run", str(pb), "-i", str(inv)]) == 4
    assert not (tmp_path / "lb").exists()


# -- --limit ---------------------------------------------------------------------------------
def test_limit_leaving_every_group_partly_deployed_is_refused_exit_4(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    from cdlib.engine.runner import run

    with pytest.raises((PlaybookError, PlaybookErrors)) as err:
        run([_bg(str(tmp_path / "s"))], inv, limit="blue1,green1", extra_vars={"version": "2"})
    assert "leaves every group partly deployed" in str(err.value)
    assert "blue: 1 of 2" in str(err.value)
    assert _deployed(tmp_path) == {}


def test_limit_on_the_whole_idle_group_releases_and_on_the_live_group_refuses(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    from cdlib.engine.runner import run

    sd = str(tmp_path / "s")
    # Live is blue: limiting to it (green partly deployed: not at all) stops before deploying.
    res = run([_bg(sd)], inv, limit="blue,green1", extra_vars={"version": "2.0.0"})
    assert not res.ok
    msgs = " ".join(r.msg for r in res.results)
    assert "covers 1 of the 2 host(s) of green" in msgs
    assert _deployed(tmp_path) == {} and two_routers["r"].changes == []
    # The whole idle group (and more) is a normal release.
    res = run([_bg(sd)], inv, limit="green,blue1", extra_vars={"version": "2.0.0"})
    assert res.ok, [r.msg for r in res.results]
    assert _deployed(tmp_path) == {"green1": "2.0.0", "green2": "2.0.0"}
    assert two_routers["r"].state().live == "green"


def test_rolling_with_limit_updates_only_the_limited_hosts(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    from cdlib.engine.runner import run

    roll = Rolling(
        app="app",
        version="{{ version }}",
        router=MemorySpec("r"),
        deploy=_deploy,
        port=8080,
        group="blue",
        state_dir=str(tmp_path / "s"),
    )
    res = run([roll], inv, limit="blue2", extra_vars={"version": "2.0.0"})
    assert res.ok, [r.msg for r in res.results]
    assert _deployed(tmp_path) == {"blue2": "2.0.0"}
    with pytest.raises(PlaybookError, match="selects no host"):
        run([roll], inv, limit="green1", extra_vars={"version": "2.0.0"})


# -- metadata, build, approvals ------------------------------------------------------------
def test_metadata_build_sha256_and_gate_approver_in_history_json(
    tmp_path: Path,
    two_routers: dict[str, MemoryRouter],
    inv: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cdlib.engine.runner import run

    sd = str(tmp_path / "s")
    build = tmp_path / "app-2.0.0.tar.gz"
    build.write_bytes(b"the build")
    canary = Canary(
        app="app",
        version="{{ version }}",
        router=MemorySpec("r"),
        deploy=_deploy,
        port=8080,
        state_dir=sd,
        build=str(build),
        environment="{{ env }}",
        metadata={"ticket": "REL-{{ version }}", "commit": "from-playbook"},
        steps=[CanaryStep(50, gate=Gate("go", timeout=20, poll=0.05), analyse=False), 100],
    )
    done = threading.Event()

    def approve() -> None:
        while not done.is_set():
            latest = History("app", state_dir=sd).latest()
            if latest is not None and latest.unfinished and latest.weights.get("green") == 50:
                main(["promote", "app", "--state-dir", sd, "--by", "alice@ci"])
                return
            time.sleep(0.05)

    t = threading.Thread(target=approve)
    t.start()
    try:
        res = run([canary], inv, extra_vars={"version": "2.0.0"}, metadata={"commit": "abc123"})
    finally:
        done.set()
        t.join()
    assert res.ok, [r.msg for r in res.results]
    capsys.readouterr()
    assert main(["history", "app", "--state-dir", sd, "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[-1]
    assert rec["version"] == "2.0.0" and rec["environment"] == "prod"
    assert rec["metadata"] == {"ticket": "REL-2.0.0", "commit": "abc123"}  # --meta wins
    assert rec["build_sha256"] == hashlib.sha256(b"the build").hexdigest()
    assert [(a["gate"], a["how"], a["by"]) for a in rec["approvals"]] == [
        ("go", "promote", "alice@ci")
    ]
    assert main(["history", "app", "--state-dir", sd]) == 0
    text = capsys.readouterr().out
    assert "commit=abc123" in text and "alice@ci" in text and rec["build_sha256"] in text


def test_no_secret_reaches_the_state_directory(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    sd = tmp_path / "s"
    token = "s3cr3t-token-value-42"
    # A Secret as metadata, or rendered into an option, is refused before anything runs.
    with pytest.raises(PlaybookError, match="secret"):
        _bg(str(sd), metadata={"token": Secret(token)}).run(inv, extra_vars={"version": "2"})
    with pytest.raises(PlaybookError, match="secret"):
        _bg(str(sd), metadata={"t": "{{ token }}"}).run(
            inv, extra_vars={"version": "2", "token": Secret(token)}
        )
    with pytest.raises(PlaybookError, match="secret"):
        _bg(str(sd), version="{{ token }}").run(inv, extra_vars={"token": Secret(token)})
    from cdlib.engine.runner import run

    with pytest.raises(PlaybookError, match="secret"):
        run(
            [_bg(str(sd))],
            inv,
            extra_vars={"version": "2", "t": Secret(token)},
            metadata={"leak": token},
        )

    # A release whose deploy uses the secret records nothing of it.
    def deploy(target: DeployTarget) -> Play:
        play = _deploy(target)
        play.task(tasks.file("{{ app_dir }}/token", content="{{ token }}"))
        return play

    res = _bg(str(sd), deploy=deploy).run(
        inv, extra_vars={"version": "2.0.0", "token": Secret(token)}
    )
    assert res.ok
    files = [p for p in sd.rglob("*") if p.is_file()]
    assert files and not any(token.encode() in p.read_bytes() for p in files)


# -- environments and promotion --------------------------------------------------------------
def test_require_released_in_refuses_then_allows(
    tmp_path: Path,
    two_routers: dict[str, MemoryRouter],
    inv: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sd = str(tmp_path / "s")
    build = tmp_path / "build.tgz"
    build.write_bytes(b"build one")
    bg = _bg(
        sd,
        router=MemorySpec("{{ env }}"),
        environment="{{ env }}",
        build=str(build),
        require_released_in="{{ promote_from | default('') }}",
    )
    prod = {"version": "2.0.0", "env": "production", "promote_from": "staging"}
    refused = bg.run(inv, extra_vars=prod)
    assert not refused.ok
    msg = " ".join(r.msg for r in refused.results if r.status.value == "failed")
    assert "no successful release to staging" in msg
    assert hashlib.sha256(b"build one").hexdigest() in msg
    assert _deployed(tmp_path) == {} and two_routers["production"].changes == []

    assert bg.run(inv, extra_vars={"version": "2.0.0", "env": "staging"}).ok
    assert two_routers["staging"].state().live == "green"
    # A different build (same version) is still refused: builds compare by sha256.
    build.write_bytes(b"build two")
    assert not bg.run(inv, extra_vars=prod).ok
    build.write_bytes(b"build one")
    allowed = bg.run(inv, extra_vars=prod)
    assert allowed.ok, [r.msg for r in allowed.results]
    assert two_routers["production"].state().live == "green"

    capsys.readouterr()
    assert (
        main(["history", "app", "--state-dir", sd, "--env", "production", "--format", "json"]) == 0
    )
    recs = json.loads(capsys.readouterr().out)
    assert [(r["environment"], r["outcome"]) for r in recs] == [
        ("production", "failed"),
        ("production", "failed"),
        ("production", "succeeded"),
    ]


def test_require_released_in_without_a_build_is_bad_input(
    tmp_path: Path, two_routers: dict[str, MemoryRouter], inv: str
) -> None:
    with pytest.raises(PlaybookError, match="set build="):
        _bg(str(tmp_path / "s"), require_released_in="staging").run(
            inv, extra_vars={"version": "2"}
        )


# -- cdlib status without an app ----------------------------------------------------------------
def test_status_without_app_lists_every_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cdlib.release.history import Recorder

    sd = str(tmp_path / "s")
    for app, version, env, outcome in [
        ("web", "1.0.0", "production", "succeeded"),
        ("web", "1.1.0", "production", "failed"),
        ("web", "1.2.0", "staging", "succeeded"),
        ("api", "3.0.0", None, "succeeded"),
    ]:
        rec = ReleaseRecord(app, version, "blue/green", environment=env)
        Recorder(History(app, state_dir=sd), rec).finish(outcome)
    assert main(["status", "--state-dir", sd, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = [(r["app"], r["environment"], r["live_version"], r["latest"]["outcome"]) for r in rows]
    assert got == [
        ("api", None, "3.0.0", "succeeded"),
        ("web", "production", "1.0.0", "failed"),
        ("web", "staging", "1.2.0", "succeeded"),
    ]
    assert main(["status", "--state-dir", sd]) == 0
    out = capsys.readouterr().out
    assert "web [production]: live 1.0.0; latest release: failed 1.1.0" in out
    assert main(["status", "--state-dir", str(tmp_path / "empty")]) == 0
    assert "no app has a release recorded" in capsys.readouterr().out


def test_sticky_cookie_is_an_option_like_any_other_string(tmp_path: Path) -> None:
    """Rendered from variables before it is checked; a bad name is still refused."""
    from cdlib import Host, Inventory
    from cdlib.traffic import StickySpec

    canary = Canary(
        app="demo", version="1", router=MemorySpec("t"), deploy=_deploy,
        state_dir=str(tmp_path), sticky_cookie="{{ cookie }}",
    )  # fmt: skip
    inv = Inventory([Host("h1", {"ansible_connection": "local"}, ["blue", "green"])])
    run, errors = canary.for_run(inv, {"cookie": "uid"})
    assert errors == [] and run._sticky() == StickySpec(cookie="uid")
    _, errors = canary.for_run(inv, {"cookie": "no spaces"})
    assert errors and "sticky cookie 'no spaces' is invalid" in str(errors[0])
