"""The task contract: typed plans, option metadata, two-phase validation, per-host copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cdlib import tasks
from cdlib.engine.errors import PlaybookError
from cdlib.engine.task import (
    Affects,
    HostContext,
    Plan,
    Task,
    Then,
    absolute_path,
    option,
)
from cdlib.engine.templating import Templar

BRANCHY = "{% if p %}/srv/a{% else %}/srv/b{% endif %}"


def test_block_template_is_accepted_statically_and_checked_per_host(tmp_path: Path) -> None:
    """``{% %}`` is a template like ``{{ }}``: left for later when built, checked when rendered."""
    task = tasks.absent(BRANCHY)
    templar = Templar([tmp_path])
    assert task.prepare({"p": True}, templar).path == "/srv/a"
    assert task.prepare({"p": False}, templar).path == "/srv/b"
    assert task.path == BRANCHY
    relative = tasks.absent("{% if p %}/srv/a{% else %}b{% endif %}")
    with pytest.raises(PlaybookError, match="option 'path' must be an absolute path, got 'b'"):
        relative.prepare({"p": False}, templar)
    # The removal rule itself runs on each host's rendered value too.
    with pytest.raises(PlaybookError, match="refusing to remove '/etc'"):
        tasks.absent("{{ d }}").prepare({"d": "/etc"}, templar)


def test_literal_values_are_checked_when_the_task_is_built() -> None:
    with pytest.raises(PlaybookError, match="must be an absolute path, got 'rel'"):
        tasks.absent("rel")
    with pytest.raises(PlaybookError, match="must be an absolute path"):
        tasks.directory("srv/x")
    with pytest.raises(PlaybookError, match="refusing to replace '/usr'"):
        tasks.unarchive("a.tar.gz", "/usr")


def test_rendered_values_are_not_written_onto_the_users_task(tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("x\n")
    templar = Templar([tmp_path])
    file_task = tasks.file("/srv/{{ h }}/VERSION", content="{{ v }}\n")
    copy_task = tasks.copy("app.conf", "/etc/")
    one = file_task.prepare({"h": "a", "v": "1"}, templar)
    two = file_task.prepare({"h": "b", "v": "2"}, templar)
    assert (one.path, one.desired_bytes()) == ("/srv/a/VERSION", b"1\n")
    assert (two.path, two.desired_bytes()) == ("/srv/b/VERSION", b"2\n")
    assert file_task.path == "/srv/{{ h }}/VERSION"
    assert file_task.desired_bytes() is None
    # Nothing templated: still a copy, so what prepare derives stays off the original.
    prepared = copy_task.prepare({}, templar)
    assert prepared is not copy_task
    assert prepared.dest == "/etc/app.conf"
    assert copy_task.dest == "/etc/"
    assert copy_task._local is None and copy_task._sha == ""


def test_templated_options_come_from_field_metadata() -> None:
    assert tasks.absent.templated_options() == ("path",)
    assert "dest" in tasks.template.templated_options()
    assert "vars" not in tasks.template.templated_options()


@dataclass(kw_only=True)
class _CountPlan(Plan):
    count: int


@dataclass
class _Touch(Task[_CountPlan]):
    """A minimal task written against the contract (what docs/tasks.md shows)."""

    path: str = field(metadata=option(templated=True, check=absolute_path))
    label_text: str = field(default="", metadata=option(templated=True))

    kind = "touch"

    def plan(self, ctx: HostContext) -> _CountPlan:
        return _CountPlan(changes=[f"touch {self.path}"], affects=[self.path], count=1)

    def apply(self, ctx: HostContext, plan: _CountPlan) -> str | None:
        return f"touched {plan.count}"


def test_a_new_task_type_gets_checks_and_rendering_from_its_metadata(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="option 'path' must be an absolute path"):
        _Touch("x")
    t = _Touch("{{ where }}")  # a template: checked once rendered
    assert t.prepare({"where": "/tmp/x"}, Templar([tmp_path])).path == "/tmp/x"
    with pytest.raises(PlaybookError, match="got 'x'"):
        t.prepare({"where": "x"}, Templar([tmp_path]))


def test_plan_state_is_one_explicit_value() -> None:
    assert Plan(changes=["x"]).applies
    assert not Plan().applies
    assert Plan(then=Then.ALWAYS).applies
    assert not Plan(changes=["x"], then=Then.DONE).applies
    assert not Plan(changes=["x"], then=Then.SKIP).applies
    assert Plan(affects=["/a"]).stale_paths == ["/a"]
    assert Plan(affects=Affects.EVERYTHING).stale_paths is None
    assert not hasattr(Plan(), "skipped")


def test_owner_and_group_of_file_like_tasks_are_rendered_per_host(tmp_path: Path) -> None:
    task = tasks.directory("/srv/x", owner="{{ u }}", group="{{ g }}")
    t = task.prepare({"u": "app", "g": "web"}, Templar([tmp_path]))
    assert (t.owner, t.group) == ("app", "web")
    assert {"owner", "group"} <= set(tasks.copy.templated_options())


def test_every_public_task_shows_its_real_signature() -> None:
    """``help(tasks.install)`` shows the options, not the metaclass's ``(*args, **kwargs)``."""
    import inspect

    factories = [
        n
        for n in tasks.__all__
        if isinstance(getattr(tasks, n), type) and issubclass(getattr(tasks, n), Task)
    ]
    assert "install" in factories and "copy" in factories and "smoke" in factories
    for n in factories:
        params = inspect.signature(getattr(tasks, n)).parameters
        assert "args" not in params and "kwargs" not in params, n
        assert {"name", "notify", "when"} <= set(params), n
    install = inspect.signature(tasks.install).parameters
    assert list(install)[:3] == ["app", "version", "build"]
    assert "self" not in install
    assert list(inspect.signature(tasks.copy).parameters)[:2] == ["src", "dest"]
