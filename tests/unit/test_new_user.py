"""What a careful new user hits: counting, empty plays, code-built groups, modes, vars."""

from __future__ import annotations

from pathlib import Path

import pytest

import cdlib
from cdlib import Host, Inventory, Play, tasks


def _local(tmp_path: Path, *names: str, groups: tuple[str, ...] = ()) -> Inventory:
    return Inventory(
        [
            Host(n, {"ansible_connection": "local", "dir": str(tmp_path / n)}, list(groups))
            for n in names
        ]
    )


def test_changed_counts_tasks_that_share_a_label(tmp_path: Path) -> None:
    conf = tmp_path / "h1.conf"
    play = Play("p", hosts="h1")
    for line in ("a=1", "b=2", "c=3"):
        play.task(tasks.line_in_file(str(conf), line=line, create=True, name="conf line"))
    res = cdlib.run(play, _local(tmp_path, "h1"))
    assert res.ok
    changed = res.changed()
    assert len(changed) == 3  # three tasks, one label
    assert {t for _, t in changed} == {"conf line"}
    assert ("h1", "conf line") in changed  # still compares like the plain pair
    assert sorted(c.position for c in changed) == [0, 1, 2]  # type: ignore[attr-defined]
    assert cdlib.run(play, _local(tmp_path, "h1")).changed() == set()


def test_groups_named_on_hosts_of_a_code_built_inventory_are_groups(tmp_path: Path) -> None:
    inv = _local(tmp_path, "h1", "h2", groups=("web",))
    assert [h.name for h in inv.select("web")] == ["h1", "h2"]
    assert inv.group_hosts("all") == ["h1", "h2"] and inv.groups["ungrouped"].hosts == []
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir }}"))
    res = cdlib.run(play, inv)
    assert res.ok and {h for h, _ in res.changed()} == {"h1", "h2"}


def test_a_group_named_on_a_host_but_missing_from_full_groups_is_refused() -> None:
    from cdlib.inventory.model import Group

    with pytest.raises(cdlib.InventoryError, match="host h1: groups 'db'"):
        Inventory([Host("h1", {}, ["db"])], {"all": Group("all")})


def test_a_play_whose_pattern_matches_no_host_is_bad_input(tmp_path: Path) -> None:
    inv = _local(tmp_path, "h1", "h2", groups=("web",))
    play = Play("deploy", hosts="webb")
    play.task(tasks.directory("{{ dir }}"))
    with pytest.raises(cdlib.PlaybookError, match="deploy") as err:
        cdlib.run(play, inv)
    assert "host pattern 'webb' matches no host" in str(err.value)
    assert "did you mean 'web'" in str(err.value) and err.value.exit_code == 4
    assert not (tmp_path / "h1").exists()


def test_an_empty_play_may_say_so_and_limit_is_no_error(tmp_path: Path) -> None:
    inv = _local(tmp_path, "h1", "h2", groups=("web",))
    empty = Play("maybe", hosts="db", allow_empty=True)
    empty.task(tasks.directory("{{ dir }}"))
    web = Play("web", hosts="web:!h2")
    web.task(tasks.directory("{{ dir }}"))
    # --limit h2 leaves the web play with no host: skipped, as Ansible does.
    res = cdlib.run([empty, web], inv, limit="h2")
    assert res.ok and res.exit_code == 0 and res.results == []


@pytest.mark.parametrize(
    "make",
    [
        lambda p, m: tasks.file(p, content="x", mode=m),
        lambda p, m: tasks.directory(p, mode=m),
        lambda p, m: tasks.line_in_file(p, line="x", create=True, mode=m),
    ],
)
def test_an_int_mode_written_in_decimal_is_refused_before_any_host(
    tmp_path: Path, make: object
) -> None:
    target = tmp_path / "h1" / "f"
    with pytest.raises(cdlib.PlaybookError) as err:
        make(str(target), 755)  # type: ignore[operator]
    msg = str(err.value)
    assert msg.startswith("tests/unit/test_new_user.py:")  # file:line of the task
    assert "decimal number 755 (mode 0o1363)" in msg and "mode=0o755" in msg
    for ok in (0o755, "0755", "755", 0o644):
        t = make(str(target), ok)  # type: ignore[operator]
        assert t.mode in ("0755", "0644")
    assert not target.parent.exists()


def test_bad_connection_settings_are_bad_input_before_any_host(tmp_path: Path) -> None:
    inv = _local(tmp_path, "h1", groups=("web",))
    inv = Inventory(
        [
            *inv.hosts.values(),
            Host("h2", {"ansible_connection": "telnet", "dir": str(tmp_path / "h2")}, ["web"]),
            Host("h3", {"ansible_ssh_private_key_file": str(tmp_path / "nokey")}, ["web"]),
        ]
    )
    play = Play("p", hosts="web")
    play.task(tasks.directory("{{ dir | default('/nonexistent/x') }}"))
    with pytest.raises(cdlib.PlaybookErrors) as err:
        cdlib.run(play, inv)
    msgs = [str(e) for e in err.value.errors]
    assert any("host h2: unknown ansible_connection 'telnet'" in m for m in msgs)
    assert any(
        f"host h3: ansible_ssh_private_key_file '{tmp_path}/nokey' does not" in m for m in msgs
    )
    assert err.value.exit_code == 4 and not (tmp_path / "h1").exists()


def test_a_value_error_while_connecting_is_a_failure_not_unreachable(tmp_path: Path) -> None:
    def factory(host: Host) -> cdlib.Connection:
        raise ValueError("port must be 0-65535")

    play = Play("p", hosts="h1")
    play.task(tasks.directory("{{ dir }}"))
    res = cdlib.run(play, _local(tmp_path, "h1"), connection_factory=factory)
    (r,) = res.results
    assert r.status is cdlib.Status.FAILED and res.unreachable_hosts == []
    assert r.msg == "bad connection settings: port must be 0-65535"
    assert res.exit_code == cdlib.EXIT_FAILED


class _Deploys:
    """An item deploying plays with release vars, as a release strategy does."""

    def __init__(self, deploy: Play, later: Play) -> None:
        from cdlib.engine.errors import Origin

        self.deploy, self.later = deploy, later
        self.origin = Origin("release.py", 1)
        self.results: list[cdlib.RunResult] = []

    label = "release"

    def validate(self, scope: object) -> list[cdlib.PlaybookError]:
        return []

    def execute(self, ctx: object) -> None:
        extra = {"release_group": "blue", "release_version": "1.2"}
        self.results.append(ctx.run_plays([self.deploy], extra_vars=extra))  # type: ignore[attr-defined]
        self.results.append(ctx.run_plays([self.later]))  # type: ignore[attr-defined]
        self.hosts = dict(ctx.inventory.hosts)  # type: ignore[attr-defined]


def test_release_vars_stay_in_the_deploy_plays(tmp_path: Path) -> None:
    deploy = Play("deploy", hosts="h1")
    deploy.task(tasks.directory("{{ dir }}/{{ release_group }}-{{ release_version }}"))
    later = Play("later", hosts="h1")
    later.task(tasks.directory("{{ dir }}/later", when="release_group is defined"))
    after = Play("after", hosts="h1")
    after.task(tasks.directory("{{ dir }}/after", when="release_version is not defined"))
    item = _Deploys(deploy, later)
    inv = _local(tmp_path, "h1")
    res = cdlib.run([item, after], inv)  # type: ignore[list-item]
    assert res.ok and (tmp_path / "h1" / "blue-1.2").is_dir()
    assert [r.status for r in item.results[1].results] == [cdlib.Status.SKIPPED]
    assert (tmp_path / "h1" / "after").is_dir() and not (tmp_path / "h1" / "later").exists()
    assert all("release_group" not in h.vars for h in [*item.hosts.values(), *inv.hosts.values()])


def test_bad_input_of_a_playbook_file_is_reported_at_once(tmp_path: Path) -> None:
    pb = tmp_path / "site.py"
    pb.write_text(
        "from cdlib import Play, tasks\n"
        "p = Play('site', hosts='all')\n"
        "p.task(tasks.directory('/srv/a', state=3))\n"  # wrong type
        "p.task(tasks.directory('/srv/b', modee='0755'))\n"  # unknown option
        "p.task(tasks.directory('/srv/{{ nope }}'))\n"  # undefined on every host
    )
    inv = Inventory([Host(f"h{i}", {"ansible_connection": "local"}) for i in (1, 2, 3)])
    with pytest.raises(cdlib.PlaybookErrors) as err:
        cdlib.run(pb, inv)
    msgs = [str(e) for e in err.value.errors]
    assert len(msgs) == 3, msgs
    assert msgs[0].startswith(f"{pb}:3:") or ":3:" in msgs[0]
    assert "option 'state'" in msgs[0]
    assert ":4:" in msgs[1] and "unknown option 'modee'" in msgs[1]
    assert ":5:" in msgs[2] and "host h1, h2, h3:" in msgs[2] and "nope" in msgs[2]
    # load_playbook alone still raises what it found.
    with pytest.raises(cdlib.PlaybookErrors, match="modee"):
        cdlib.load_playbook(pb)


class _ChecksDeploy(_Deploys):
    """A release-like item that checks its deploy play up front, as strategies do."""

    def validate(self, scope: object) -> list[cdlib.PlaybookError]:
        return scope.check_plays([self.deploy], limit=None, extra_vars={})  # type: ignore[attr-defined,no-any-return]


def test_bad_connection_settings_of_deploy_only_hosts_are_bad_input(tmp_path: Path) -> None:
    """A host only a release's deploy play reaches is checked with the others: exit 4
    before anything runs, not a failed task once the release is under way."""
    first = Play("first", hosts="h1")
    first.task(tasks.directory("{{ dir }}/first"))
    deploy = Play("deploy", hosts="h2")
    deploy.task(tasks.directory("{{ dir }}/deployed"))
    item = _ChecksDeploy(deploy, Play("later", hosts="h1"))
    inv = _local(tmp_path, "h1", "h2")
    inv.hosts["h2"].vars["ansible_connection"] = "telnet"
    with pytest.raises(cdlib.PlaybookError) as err:
        cdlib.run([first, item], inv)  # type: ignore[list-item]
    assert "host h2: unknown ansible_connection 'telnet'" in str(err.value)
    assert err.value.exit_code == 4
    assert item.results == [] and not (tmp_path / "h1" / "first").exists()
