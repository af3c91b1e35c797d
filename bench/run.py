"""Benchmark driver: the same deployment with cdlib, pyinfra, ansible-core and plain ssh.

``bench/run`` (the one command) calls this after making the tools' virtualenvs. It brings up
a test fleet (tests/fleet.py), and for each fleet size times every tool as a subprocess, the
whole command included: a *fresh* run on emptied hosts, then the *no-change* re-run. Rounds
interleave the tools so machine noise hits them alike; medians go into a table with ratios
from the same run, printed and written to bench/RESULTS.md. Every run is checked on every
host (files, link, config text) and a re-run must leave the deployed files untouched.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.build_tarball import build  # noqa: E402
from tests.fleet import Fleet  # noqa: E402

WORK = BENCH / ".work"
VERSION = "1.0.0"
APP_ROOT = "/srv/app"
TOOLS = ("cdlib", "pyinfra", "ansible", "floor")
CDLIB = BENCH / ".venv-cdlib" / "bin" / "cdlib"
ANSIBLE = BENCH / ".venv-ansible" / "bin" / "ansible-playbook"
PYINFRA = BENCH / ".venv-pyinfra" / "bin" / "pyinfra"
PHASES = ("first", "rerun")
#: The deployments: ``app`` (bench's eight steps) and ``steps`` (many small steps).
DEPLOYMENTS = ("app", "steps")
PLAYBOOKS = {
    ("cdlib", "app"): "deploy_cdlib.py",
    ("cdlib", "steps"): "deploy_steps_cdlib.py",
    ("pyinfra", "app"): "deploy_pyinfra.py",
    ("pyinfra", "steps"): "deploy_steps_pyinfra.py",
    ("ansible", "app"): "deploy_ansible.yml",
    ("ansible", "steps"): "deploy_steps_ansible.yml",
}
#: The steps deployment's components and the ones whose env file gets a line edit.
COMPONENTS = [f"c{k:02d}" for k in range(1, 11)]
EDITED = COMPONENTS[:6]


@dataclass
class Sample:
    """One timed command: wall seconds and the CPU seconds its processes used locally."""

    wall: float
    cpu: float


@dataclass
class Cell:
    """The samples of one tool at one size and phase."""

    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall time."""
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        """Median local CPU time."""
        return statistics.median(s.cpu for s in self.samples)


class BenchError(RuntimeError):
    """A tool failed or left a host in the wrong state."""


# ---------------------------------------------------------------- per-host data


def host_vars(k: int, n: int) -> dict[str, Any]:
    """Per-host variables for host ``k`` of ``n`` (same for every tool)."""
    peers = [f"host{j}" for j in (k - 1, k + 1) if 1 <= j <= n]
    return {
        "host_name": f"host{k}",
        "app_port": 8000 + k,
        "app_color": "blue" if k % 2 else "green",
        "app_workers": 2 + k % 3,
        "app_peers": peers,
    }


def common_vars(tarball: Path) -> dict[str, Any]:
    """Variables shared by every host."""
    return {
        "version": VERSION,
        "app_root": APP_ROOT,
        "tarball": str(tarball),
        "template": str(BENCH / "templates" / "app.conf.j2"),
    }


def expected_config(k: int, n: int, tarball: Path) -> str:
    """The config text every tool must produce on host ``k``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(BENCH / "templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("app.conf.j2").render({**common_vars(tarball), **host_vars(k, n)})


# ---------------------------------------------------------------- inventories


def write_inventories(fleet: Fleet, n: int, tarball: Path, d: Path) -> dict[str, Path]:
    """Inventories for hosts 1..n in each tool's format; returns tool -> path."""
    d.mkdir(parents=True, exist_ok=True)
    common = common_vars(tarball)
    key, known = str(fleet.key_file), str(fleet.known_hosts)
    hosts = [fleet.host(k) for k in range(1, n + 1)]

    cd_hosts = {}
    an_hosts = {}
    for h in hosts:
        base = {
            "ansible_host": h.address,
            "ansible_port": h.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": key,
            **host_vars(h.index, n),
        }
        cd_hosts[h.name] = {**base, "cdlib_known_hosts_file": known}
        an_hosts[h.name] = base
    out: dict[str, Path] = {}
    out["cdlib"] = d / "cdlib.yml"
    out["cdlib"].write_text(yaml.safe_dump({"all": {"hosts": cd_hosts, "vars": common}}))
    an_vars = {
        **common,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes",
    }
    out["ansible"] = d / "ansible.yml"
    out["ansible"].write_text(yaml.safe_dump({"all": {"hosts": an_hosts, "vars": an_vars}}))
    py_hosts = [
        (
            h.name,
            {
                "ssh_hostname": h.address,
                "ssh_port": h.port,
                "ssh_user": "root",
                "ssh_key": key,
                "ssh_known_hosts_file": known,
                "ssh_strict_host_key_checking": "yes",
                **common,
                **host_vars(h.index, n),
            },
        )
        for h in hosts
    ]
    out["pyinfra"] = d / "pyinfra_inventory.py"
    out["pyinfra"].write_text(f"hosts = {py_hosts!r}\n")
    spec = {
        "tarball": str(tarball),
        "vars": common,
        "hosts": [
            {"name": h.name, "ssh": fleet.ssh_command(h.index), "vars": host_vars(h.index, n)}
            for h in hosts
        ],
    }
    out["floor"] = d / "floor.json"
    out["floor"].write_text(json.dumps(spec))
    out["floor-steps"] = d / "floor-steps.json"
    out["floor-steps"].write_text(json.dumps({**spec, "deployment": "steps"}))
    return out


# ---------------------------------------------------------------- commands


def command(
    tool: str, inv: Path, n: int, rundir: Path, deployment: str = "app"
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run ``tool`` over ``n`` hosts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYINFRA_"))}
    playbook = str(BENCH / PLAYBOOKS.get((tool, deployment), ""))
    if tool == "cdlib":
        return [
            str(CDLIB),
            "run",
            playbook,
            "-i",
            str(inv),
            "-f",
            str(n),
        ], env
    if tool == "floor":
        return [sys.executable, "-S", str(BENCH / "floor.py"), str(inv)], env
    if tool == "pyinfra":
        argv = [
            str(PYINFRA),
            "-y",
            "--parallel",
            str(n),
            str(inv),
            playbook,
        ]
        return argv, env
    if tool == "ansible":
        env.update(
            {
                "ANSIBLE_CONFIG": str(rundir / "ansible.cfg"),
                "ANSIBLE_FORKS": str(n),
                "ANSIBLE_PIPELINING": "True",
                "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_RETRY_FILES_ENABLED": "False",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCAL_TEMP": str(rundir / "local-tmp"),
                # Ansible's usual connection reuse inside a run, but never across runs,
                # and without -C (compressing an incompressible tarball only costs CPU).
                "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(rundir / "cp"),
                "ANSIBLE_SSH_CONTROL_PATH": str(rundir / "cp" / "%(directory)s/%%C"),
            }
        )
        del env["ANSIBLE_SSH_CONTROL_PATH"]
        argv = [str(ANSIBLE), "-i", str(inv), "-f", str(n), playbook]
        return argv, env
    raise ValueError(tool)


def timed(argv: list[str], env: dict[str, str], log: Path) -> Sample:
    """Run ``argv`` to completion; its wall time and children's CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, cwd=BENCH, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log.write_bytes(proc.stdout + b"\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv[:3])} ... exited {proc.returncode}; output in {log}")
    return Sample(wall, cpu)


def close_ansible_masters(rundir: Path) -> None:
    """Stop the ControlPersist masters of one ansible run (they would linger 60 s)."""
    cp = rundir / "cp"
    if not cp.is_dir():
        return
    for sock in cp.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
            capture_output=True,
            timeout=30,
        )


# ---------------------------------------------------------------- host state


def reset_hosts(fleet: Fleet, n: int) -> None:
    """Empty /srv (and /tmp) of hosts 1..n: the next run starts from fresh hosts."""
    for k in range(1, n + 1):
        for inside in ("/srv", "/tmp"):
            d = fleet.path(k, inside)
            if not d.is_dir():
                continue
            for child in d.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()


def deployed(deployment: str) -> list[str]:
    """The paths a deployment makes (a re-run must leave every one untouched)."""
    if deployment == "steps":
        s = f"{APP_ROOT}/steps"
        return [
            f"{s}/current",
            f"{s}/VERSION",
            *(f"{s}/{c}/{c}.conf" for c in COMPONENTS),
            *(f"{s}/{c}/env" for c in EDITED),
        ]
    return [
        f"{APP_ROOT}/current",
        f"{APP_ROOT}/shared/app.conf",
        f"{APP_ROOT}/shared/VERSION",
        f"{APP_ROOT}/shared/app-{VERSION}.tar.gz",
        f"{APP_ROOT}/releases/{VERSION}",
    ]


def snapshot(fleet: Fleet, n: int, deployment: str = "app") -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every deployed file: a re-run must not rewrite any."""
    out = {}
    for k in range(1, n + 1):
        for inside in deployed(deployment):
            st = fleet.path(k, inside).lstat()
            out[f"host{k}:{inside}"] = (st.st_ino, st.st_mtime_ns)
    return out


def expected_steps(k: int, n: int) -> dict[str, str]:
    """The step configs every tool must produce on host ``k``: component -> text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(BENCH / "templates")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    t = env.get_template("step.conf.j2")
    v = {"version": VERSION, **host_vars(k, n)}
    return {c: t.render({**v, "component": c, "index": i}) for i, c in enumerate(COMPONENTS)}


def verify_steps(fleet: Fleet, n: int, tool: str) -> None:
    """Every host 1..n holds the many-small-steps deployment."""
    s = f"{APP_ROOT}/steps"
    for k in range(1, n + 1):
        problems = []
        link = fleet.path(k, f"{s}/current")
        if not link.is_symlink() or os.readlink(link) != f"{s}/c01":
            problems.append("current is not a link to c01")
        for c, text in expected_steps(k, n).items():
            conf = fleet.path(k, f"{s}/{c}/{c}.conf")
            if not conf.is_file() or conf.read_text() != text:
                problems.append(f"{c}.conf differs from the template's rendering")
        for c in EDITED:
            env = fleet.path(k, f"{s}/{c}/env")
            if not env.is_file() or env.read_text() != f"APP_VERSION={VERSION}\n":
                problems.append(f"{c}/env wrong")
        ver = fleet.path(k, f"{s}/VERSION")
        if not ver.is_file() or ver.read_text() != f"{VERSION}\n":
            problems.append("VERSION file wrong")
        if problems:
            raise BenchError(f"{tool}: host{k}: {'; '.join(problems)}")


def verify(fleet: Fleet, n: int, tarball: Path, configs: dict[int, str], tool: str) -> None:
    """Every host 1..n holds the deployment; raise :class:`BenchError` naming what is wrong."""
    blob = tarball.read_bytes()
    for k in range(1, n + 1):

        def p(inside: str, k: int = k) -> Path:
            return fleet.path(k, inside)

        problems = []
        link = p(f"{APP_ROOT}/current")
        if not link.is_symlink() or os.readlink(link) != f"{APP_ROOT}/releases/{VERSION}":
            problems.append("current is not a link to the release")
        rel = p(f"{APP_ROOT}/releases/{VERSION}")
        if not (rel / "VERSION").is_file() or (rel / "VERSION").read_text() != f"{VERSION}\n":
            problems.append("release not unpacked")
        if not (rel / "assets" / "blob.bin").is_file():
            problems.append("release incomplete")
        if p(f"{APP_ROOT}/shared/app-{VERSION}.tar.gz").read_bytes() != blob:
            problems.append("tarball differs")
        conf = p(f"{APP_ROOT}/shared/app.conf")
        if not conf.is_file() or conf.read_text() != configs[k]:
            problems.append("app.conf differs from the template's rendering")
        ver = p(f"{APP_ROOT}/shared/VERSION")
        if not ver.is_file() or ver.read_text() != f"{VERSION}\n":
            problems.append("VERSION file wrong")
        if problems:
            raise BenchError(f"{tool}: host{k}: {'; '.join(problems)}")


# ---------------------------------------------------------------- the run


def measure(
    fleet: Fleet,
    n: int,
    tools: list[str],
    runs: int,
    tarball: Path,
    phases: tuple[str, ...] = PHASES,
    progress: Callable[[str], None] = print,
    tool_runs: dict[str, int] | None = None,
    after_round: Callable[[dict[tuple[str, str], Cell]], None] | None = None,
    deployment: str = "app",
) -> dict[tuple[str, str], Cell]:
    """Median-ready samples for each tool and phase at ``n`` hosts."""
    invs = write_inventories(fleet, n, tarball, WORK / f"inv-{n}")
    if deployment == "steps":
        invs["floor"] = invs["floor-steps"]
    configs = {k: expected_config(k, n, tarball) for k in range(1, n + 1)}
    paths = deployed(deployment)

    def check(tool: str) -> None:
        if deployment == "steps":
            verify_steps(fleet, n, tool)
        else:
            verify(fleet, n, tarball, configs, tool)

    cells: dict[tuple[str, str], Cell] = {(t, ph): Cell() for t in tools for ph in PHASES}
    for r in range(runs):
        # Rotate the order each round so no tool always runs right after another.
        order = tools[r % len(tools) :] + tools[: r % len(tools)]
        for tool in order:
            if r >= (tool_runs or {}).get(tool, runs):
                continue
            rundir = Path(tempfile.mkdtemp(prefix=f"{tool}-{n}-", dir=WORK / "runs"))
            (rundir / "cp").mkdir()
            (rundir / "local-tmp").mkdir()
            (rundir / "ansible.cfg").write_text("# defaults; settings come from the environment\n")
            argv, env = command(tool, invs[tool], n, rundir, deployment)
            try:
                if "first" in phases or not (fleet.path(1, paths[0])).is_symlink():
                    reset_hosts(fleet, n)
                    s = timed(argv, env, rundir / "first.log")
                    check(tool)
                    if "first" in phases:
                        cells[(tool, "first")].samples.append(s)
                if "rerun" in phases:
                    before = snapshot(fleet, n, deployment)
                    s = timed(argv, env, rundir / "rerun.log")
                    check(tool)
                    after = snapshot(fleet, n, deployment)
                    touched = [k for k, v in after.items() if before[k] != v]
                    if touched:
                        raise BenchError(f"{tool}: the no-change re-run rewrote {touched[:3]}")
                    cells[(tool, "rerun")].samples.append(s)
            finally:
                if tool == "ansible":
                    close_ansible_masters(rundir)
            got = ", ".join(
                f"{ph} {cells[(tool, ph)].samples[-1].wall:.2f}s"
                for ph in phases
                if cells[(tool, ph)].samples
            )
            progress(f"  {deployment:<5} n={n:<3} round {r + 1}/{runs} {tool:<8} {got}")
        if after_round is not None:
            after_round(cells)
    return cells


def versions() -> dict[str, str]:
    """Versions of everything measured."""

    def out(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except OSError:
            return "missing"
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr) else "?"

    rev = out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", str(ROOT), "status", "--porcelain", "--", "cdlib"])
    mark = "" if dirty == "?" else ", modified"
    return {
        "cdlib": f"{out([str(CDLIB), '--version'])} (git {rev}{mark})",
        "cdlib paramiko": out(
            [
                str(BENCH / ".venv-cdlib/bin/python"),
                "-c",
                "import paramiko;print(paramiko.__version__)",
            ]
        ),
        "pyinfra": out([str(PYINFRA), "--version"]),
        "pyinfra paramiko": out(
            [
                str(BENCH / ".venv-pyinfra/bin/python"),
                "-c",
                "import paramiko;print(paramiko.__version__)",
            ]
        ),
        "ansible-core": out([str(ANSIBLE), "--version"]),
        "OpenSSH": out(["ssh", "-V"]),
        "Python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}",
    }


def ratio(a: float, b: float) -> str:
    """``a/b`` as text."""
    return f"{a / b:.2f}x" if b > 0 else "-"


Results = dict[tuple[str, int], dict[tuple[str, str], Cell]]


def _phase(ph: str) -> str:
    return "first" if ph == "first" else "no-change"


def table(results: Results, tools: list[str]) -> str:
    """The Markdown table of medians and same-run ratios."""
    head = ["deployment", "hosts", "run"] + [f"{t} (s)" for t in tools]
    others = [t for t in ("pyinfra", "ansible", "floor") if t in tools and "cdlib" in tools]
    head += [f"cdlib/{t}" for t in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (dep, n), cells in results.items():
        for ph in PHASES:
            if not all(cells.get((t, ph)) and cells[(t, ph)].samples for t in tools):
                continue
            row = [dep, str(n), _phase(ph)]
            row += [f"{cells[(t, ph)].median:.2f}" for t in tools]
            row += [ratio(cells[("cdlib", ph)].median, cells[(t, ph)].median) for t in others]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cpu_table(results: Results, tools: list[str]) -> str:
    """Median local CPU seconds (user+sys of the tool's processes, sshd not included)."""
    head = ["deployment", "hosts", "run"] + [f"{t} CPU (s)" for t in tools]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (dep, n), cells in results.items():
        for ph in PHASES:
            if not all(cells.get((t, ph)) and cells[(t, ph)].samples for t in tools):
                continue
            row = [dep, str(n), _phase(ph)]
            row += [f"{cells[(t, ph)].cpu:.2f}" for t in tools]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def scale_table(scale: dict[int, dict[tuple[str, str], Cell]], tools: list[str]) -> str:
    """Scale-out rows (fewer tools, more hosts)."""
    head = ["hosts", "run"] + [f"{t} (s)" for t in tools]
    head += ["cdlib per host (ms)", "floor per host (ms)", "cdlib CPU per host (ms)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, cells in sorted(scale.items()):
        for ph in PHASES:
            if not all(cells.get((t, ph)) and cells[(t, ph)].samples for t in tools):
                continue
            row = [str(n), _phase(ph)]
            row += [f"{cells[(t, ph)].median:.2f}" for t in tools]
            for t in ("cdlib", "floor"):
                c = cells.get((t, ph))
                row.append(f"{c.median / n * 1000:.0f}" if c and c.samples else "-")
            row.append(f"{cells[('cdlib', ph)].cpu / n * 1000:.1f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(results: Results, scale: dict[int, dict[tuple[str, str], Cell]]) -> list[str]:
    """The issue's targets, checked against this run's medians."""
    out = ["Targets, checked against the medians above:", ""]

    def med(cells: dict[tuple[str, str], Cell], tool: str, ph: str) -> float | None:
        c = cells.get((tool, ph))
        return c.median if c and c.samples else None

    def line(what: str, ok: bool) -> None:
        out.append(f"- {what}: {'met' if ok else 'MISSED'}")

    for (dep, n), cells in results.items():
        for ph in PHASES:
            cd, fl = med(cells, "cdlib", ph), med(cells, "floor", ph)
            name = f"{dep}, {n} host(s), {_phase(ph)}"
            for other in ("pyinfra", "ansible"):
                o = med(cells, other, ph)
                if cd is not None and o is not None:
                    line(f"ahead of {other}, {name}: {cd:.2f} s vs {o:.2f} s", cd < o)
            if cd is None or fl is None:
                continue
            ratio_ = f"{cd / fl:.2f}x ({cd:.2f} s vs {fl:.2f} s)"
            if n == 1:
                line(f"within 1.5x the floor, {name}: {ratio_}", cd <= 1.5 * fl)
            elif ph == "first":
                line(f"within 1.1x the floor, {name}: {ratio_}", cd <= 1.1 * fl)
            else:
                line(f"at or below the floor, {name}: {ratio_}", cd <= fl)
    sizes = sorted(scale)
    for a, b in itertools.pairwise(sizes):
        for ph in PHASES:
            x, y = med(scale[a], "cdlib", ph), med(scale[b], "cdlib", ph)
            if x is None or y is None:
                continue
            pa, pb = x / a * 1000, y / b * 1000
            line(
                f"time per host, {a} -> {b} hosts, {_phase(ph)}: {pa:.0f} ms -> {pb:.0f} ms",
                pb <= pa * 1.05,
            )
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    """``bench/run [--sizes 1,10,30] [--runs 5] [--tools ...] [--scale 100]``."""
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,10,30", help="fleet sizes (default 1,10,30)")
    ap.add_argument("--runs", type=int, default=5, help="rounds per size (default 5)")
    ap.add_argument(
        "--deployments", default=",".join(DEPLOYMENTS), help="app, steps (default: both)"
    )
    ap.add_argument("--tools", default=",".join(TOOLS), help="default: all four")
    ap.add_argument(
        "--tool-runs",
        default="",
        metavar="TOOL=N,...",
        help="fewer rounds for slow tools, e.g. ansible=1,pyinfra=3 (default: --runs for all)",
    )
    ap.add_argument(
        "--scale",
        default="100,300",
        help="sizes of the scale-out check (app deployment), cdlib and floor only",
    )
    ap.add_argument("--scale-runs", type=int, default=3)
    ap.add_argument("--subnet", default=os.environ.get("CDLIB_FLEET_SUBNET", "127.0.8"))
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="'' to skip writing")
    ap.add_argument("--note", default="", help="text added to RESULTS.md (machine load ...)")
    ap.add_argument(
        "--attach", default="", help="use a fleet started with `python -m tests.fleet up`"
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    scale_sizes = [int(s) for s in args.scale.split(",") if s]
    tools = [t for t in args.tools.split(",") if t]
    tool_runs = {
        k: int(v) for k, _, v in (i.partition("=") for i in args.tool_runs.split(",") if i)
    }
    bad = [t for t in [*tools, *tool_runs] if t not in TOOLS]
    if bad:
        ap.error(f"unknown tool(s) {bad}; choose from {', '.join(TOOLS)}")
    (WORK / "runs").mkdir(parents=True, exist_ok=True)
    tarball = build(VERSION, WORK)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = os.getloadavg()
    biggest = max(sizes + scale_sizes)
    print(f"bringing up {biggest} fleet hosts on {args.subnet}.*")
    deployments = [d for d in args.deployments.split(",") if d]
    if any(d not in DEPLOYMENTS for d in deployments):
        ap.error(f"unknown deployment in {deployments}; choose from {', '.join(DEPLOYMENTS)}")
    results: Results = {}
    scale: dict[int, dict[tuple[str, str], Cell]] = {}
    scale_tools = [t for t in ("cdlib", "floor") if t in tools]
    fleet = Fleet.attach(args.attach) if args.attach else Fleet(biggest, subnet=args.subnet)
    if fleet.n < biggest:
        raise BenchError(f"the attached fleet has {fleet.n} hosts, {biggest} are needed")
    try:
        for n in sizes:
            for dep in deployments:

                def partial(cells: dict[tuple[str, str], Cell], n: int = n, dep: str = dep) -> None:
                    results[(dep, n)] = cells
                    report(args, results, scale, tools, scale_tools, started, load_before)

                measure(
                    fleet,
                    n,
                    tools,
                    args.runs,
                    tarball,
                    tool_runs=tool_runs,
                    after_round=partial,
                    deployment=dep,
                )
        for n in scale_sizes:

            def partial_scale(cells: dict[tuple[str, str], Cell], n: int = n) -> None:
                scale[n] = cells
                report(args, results, scale, tools, scale_tools, started, load_before)

            measure(fleet, n, scale_tools, args.scale_runs, tarball, after_round=partial_scale)
    finally:
        if not args.attach:
            fleet.stop()
    return 0


def report(
    args: argparse.Namespace,
    results: Results,
    scale: dict[int, dict[tuple[str, str], Cell]],
    tools: list[str],
    scale_tools: list[str],
    started: str,
    load_before: tuple[float, float, float],
) -> None:
    """Print the tables and (re)write RESULTS.md; called after every round, so a long run
    that is cut short still leaves what it measured."""
    load_after = os.getloadavg()
    scale = {
        **{n: c for (dep, n), c in results.items() if dep == "app" and n >= 30 and scale},
        **scale,
    }
    text = table(results, tools)
    print()
    print(text)
    if scale:
        print()
        print(scale_table(scale, scale_tools))
    if args.out:
        v = versions()
        body = [
            "# Benchmark results",
            "",
            f"Written by `bench/run` on {started}: medians of {args.runs} runs per cell "
            "(whole command: start-up, connect, deploy), every tool on the same fleet in "
            "the same session, rounds interleaved. *first* is a run on emptied hosts, "
            "*no-change* the re-run right after it. Ratios below 1 mean cdlib is faster."
            + (f" Fewer runs for: {args.tool_runs}." if args.tool_runs else ""),
            "",
            text,
            "",
            "Local CPU time (user+sys of the tool's own processes; the sshd side is not counted):",
            "",
            cpu_table(results, tools),
            "",
        ]
        if scale:
            body += [
                f"Scale-out (cdlib and the floor only; {args.scale_runs} runs at sizes beyond "
                "the main table):",
                "",
                scale_table(scale, scale_tools),
                "",
            ]
        body += targets(results, scale)
        body += ["Versions:", ""]
        body += [f"- {k}: {val}" for k, val in v.items()]
        body += [
            "",
            f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}.",
            "",
        ]
        if args.note:
            body += [args.note, ""]
        Path(args.out).write_text("\n".join(body))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
