"""Anything computed from a Secret is a secret: hosts get the real text, output is masked.

Each expression form writes a file on the local host (the real value must arrive) and is
run with ``--diff`` on the console, in JSON events and through the API; none of them may
show the secret or any value derived from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import cdlib
from cdlib.cli.main import main
from cdlib.engine.secrets import MASK, Redactor, Secret, SecretText
from cdlib.engine.templating import Templar, TemplateError

PW = "tok-4f9a1c77e2"
#: A second secret with a quote, which JSON escapes (``q\\"uote``).
QPW = 'q"uote-9d3b51'
USER = "alice"


def _json_escaped(text: str) -> str:
    return json.dumps(text)[1:-1]


# (id, content template, content the host must get, texts no output may show)
CASES = [
    ("tilde", '{{ "postgres://u:" ~ pw }}', f"postgres://u:{PW}", [PW]),
    ("plus", '{{ "postgres://u:" + pw }}', f"postgres://u:{PW}", [PW]),
    ("filter-upper", "{{ pw | upper }}", PW.upper(), [PW, PW.upper()]),
    (
        "interpolation",
        "{{ user }}:{{ pw }}",
        f"{USER}:{PW}",
        [PW],
    ),
    (
        "b64encode",
        "token={{ pw | b64encode }}",
        "token=" + base64.b64encode(PW.encode()).decode(),
        [PW, base64.b64encode(PW.encode()).decode()],
    ),
    ("to_json", "{{ pw | to_json }}", json.dumps(PW), [PW]),
    (
        "hash",
        "{{ pw | hash('sha256') }}",
        hashlib.sha256(PW.encode()).hexdigest(),
        [hashlib.sha256(PW.encode()).hexdigest()],
    ),
    (
        "format-filter",
        '{{ "%s@%s" | format(pw, "db") | upper }}',
        f"{PW}@db".upper(),
        [PW, PW.upper()],
    ),
    ("str-format", '{{ "{}:{}".format(user, pw) }}', f"{USER}:{PW}", [PW]),
    ("percent", '{{ "k=%s" % pw }}', f"k={PW}", [PW]),
    ("method", "{{ pw.upper() }}", PW.upper(), [PW.upper()]),
    ("slice", "{{ pw[:8] }}", PW[:8], [PW[:8]]),
    (
        "set",
        '{% set dsn = "u:" ~ pw %}{{ dsn | upper }}',
        f"U:{PW.upper()}",
        [PW.upper()],
    ),
    (
        "set-block",
        "{% set b %}{{ pw }}!{% endset %}{{ b | reverse }}",
        f"{PW}!"[::-1],
        [PW, f"{PW}!"[::-1]],
    ),
    (
        "loop",
        "{% for p in pws %}{{ p | upper }};{% endfor %}",
        f"PLAIN;{PW.upper()};",
        [PW, PW.upper()],
    ),
    (
        "map-join",
        '{{ pws | map("b64encode") | join(",") }}',
        "UExBSU4=," + base64.b64encode(PW.upper().encode()).decode(),
        [base64.b64encode(PW.upper().encode()).decode()],
    ),
    (
        "to_nice_json",
        "{{ cfg | to_nice_json }}\n",
        json.dumps({"password": QPW, "user": "bob"}, indent=4, sort_keys=True) + "\n",
        [QPW, _json_escaped(QPW)],
    ),
]


def _playbook(tmp_path: Path, content: str, *, name: str | None = None) -> Path:
    dest = tmp_path / "host" / "out.conf"
    dest.parent.mkdir(exist_ok=True)
    pb = tmp_path / "pb.py"
    task_name = name if name is not None else "write {{ pw | upper }}"
    when = f"pw | upper == {PW.upper()!r}"
    pb.write_text(
        "import os\n"
        "from cdlib import Play, Secret, tasks\n"
        "pw = Secret(os.environ['T_PW'])\n"
        "p = Play('p', vars={\n"
        f"    'pw': pw, 'user': {USER!r}, 'pws': ['PLAIN', Secret(os.environ['T_PW'].upper())],\n"
        "    'cfg': {'user': 'bob', 'password': Secret(os.environ['T_QPW'])},\n"
        "})\n"
        f"p.task(tasks.file({str(dest)!r}, content={content!r}, mode='0600',\n"
        f"    name={task_name!r}, when={when!r}))\n"
    )
    return pb


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_PW", PW)
    monkeypatch.setenv("T_QPW", QPW)


def _assert_masked(text: str, leaks: list[str]) -> None:
    for leak in [PW, PW.upper(), QPW, *leaks]:
        assert leak not in text, f"{leak!r} shown in output:\n{text}"


@pytest.mark.parametrize(
    ("content", "expected", "leaks"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_host_gets_real_value_and_output_is_masked(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    expected: str,
    leaks: list[str],
) -> None:
    pb = _playbook(tmp_path, content)
    dest = tmp_path / "host" / "out.conf"
    dest.write_text("old\n")

    assert main(["run", str(pb), "--diff"]) == 0
    assert dest.read_text() == expected  # the host got the real text
    out = capsys.readouterr()
    _assert_masked(out.out + out.err, leaks)
    assert MASK in out.out  # the task name and the diff are there, masked

    dest.write_text("old\n")
    assert main(["run", str(pb), "--diff", "--format", "json"]) == 0
    assert dest.read_text() == expected
    out = capsys.readouterr()
    events = [json.loads(x) for x in out.out.splitlines()]
    result = next(e for e in events if e["event"] == "task_result")
    assert result["status"] == "changed" and result["diff"]
    _assert_masked(out.out + out.err, leaks)

    dest.write_text("old\n")
    run = cdlib.run(pb, diff=True)
    assert run.ok and dest.read_text() == expected
    for r in run.results:
        _assert_masked(f"{r.task} {r.msg} {r.diff} {r.changes}", leaks)


def test_a_template_file_with_derived_secrets_is_masked_in_its_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.ini.j2").write_text(
        "[db]\n"
        "url = postgres://{{ user }}:{{ pw }}@db/app\n"
        "token = {{ pw | b64encode }}\n"
        "digest = {{ pw | hash('sha1') }}\n"
        "port = 5432\n"
    )
    dest = tmp_path / "app.ini"
    pb = tmp_path / "pb.py"
    pb.write_text(
        "import os\n"
        "from cdlib import Play, Secret, tasks\n"
        "p = Play('p', vars={'pw': Secret(os.environ['T_PW']), 'user': 'alice'})\n"
        f"p.task(tasks.template('app.ini.j2', {str(dest)!r}, mode='0600'))\n"
    )
    b64 = base64.b64encode(PW.encode()).decode()
    sha1 = hashlib.sha1(PW.encode()).hexdigest()
    assert main(["run", str(pb), "--diff", "--format", "json"]) == 0
    assert f"token = {b64}\n" in dest.read_text() and f"digest = {sha1}\n" in dest.read_text()
    out = capsys.readouterr().out
    _assert_masked(out, [b64, sha1])
    diff = next(json.loads(x) for x in out.splitlines() if '"task_result"' in x)["diff"]
    assert f"+token = {MASK}" in diff and "+port = 5432" in diff  # masked, not hidden

    dest.write_text("old\n")
    assert main(["run", str(pb), "--diff", "--check"]) == 0
    _assert_masked(capsys.readouterr().out, [b64, sha1])


def test_a_task_name_and_when_with_a_secret_run_on_the_real_value_and_stay_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pb = _playbook(tmp_path, "x", name="deploy as {{ pw | b64encode }}")
    assert main(["run", str(pb)]) == 0
    assert (tmp_path / "host" / "out.conf").read_text() == "x"  # `when` compared real text
    out = capsys.readouterr().out
    assert f"deploy as {MASK}" in out
    _assert_masked(out, [base64.b64encode(PW.encode()).decode()])


def test_templar_returns_secret_text_only_when_a_secret_contributed() -> None:
    pw = Secret(PW)
    red = Redactor()
    red.collect({"pw": pw})
    t = Templar()
    plain = t.render_string("{{ user | upper }}", {"user": USER, "pw": pw}, what="x")
    assert type(plain) is str and plain == USER.upper()
    out = t.render_string("url=/srv/{{ pw | upper }}", {"pw": pw}, what="x")
    assert isinstance(out, SecretText) and out.sources == (pw,)
    assert out == f"url=/srv/{PW.upper()}"
    # the literal text around the derived part stays readable
    assert red(out) == f"url=/srv/{MASK}" and red(f"x {PW.upper()} y") == f"x {MASK} y"
    # numbers and booleans computed from a secret are not secret
    assert t.render_string("{{ pw | length }}", {"pw": pw}, what="x") == str(len(PW))
    assert red("14 True") == "14 True"


def test_an_error_quoting_a_derived_value_is_masked() -> None:
    pw = Secret(PW)
    with pytest.raises(TemplateError) as err:
        Templar().render_string("{{ {'a': 1}[pw | upper] }}", {"pw": pw}, what="x")
    assert PW.upper() not in str(err.value) and MASK in str(err.value)


def test_short_derived_text_is_not_masked_everywhere() -> None:
    pw = Secret(PW)
    red = Redactor()
    red.collect({"pw": pw})
    out = Templar().render_string("{{ pw[0] }}-{{ pw[:3] }}", {"pw": pw}, what="x")
    assert out == "t-tok" and isinstance(out, SecretText)
    assert red("status: ok") == "status: ok"  # 't' alone was not learnt


def test_redactor_learns_derived_values_of_a_secret_it_knows_later() -> None:
    pw = Secret(PW)
    red = Redactor()
    red.collect([pw])
    assert red("ABC") == "ABC"
    pw.learn(["ABC"])
    assert red("xABCx") == f"x{MASK}x"
    # copies of the vars share the secret, so a copy's derived values are known too
    import copy

    assert copy.deepcopy({"pw": pw})["pw"] is pw
