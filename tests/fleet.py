"""The SSH test fleet: N real sshd hosts on loopback addresses, each with private directories.

Host ``k`` (1-based) is an OpenSSH server listening on ``{subnet}.{10+k}:22`` (past 245 hosts,
on the next /24: see :func:`host_address`). It runs in its
own mount namespace where per-host directories from the fleet's work dir are bind-mounted over
``/srv``, ``/opt``, ``/var/lib/cdlib``, ``/etc/cdlib-host``, ``/run``, ``/var/log/supervisor``,
copies of ``/etc/supervisor`` and ``/etc/haproxy`` (and ``/tmp`` when the work dir is not itself
under ``/tmp``), so what one host writes there the others do not see. Processes, users and the
network are shared with the machine: only those directories are per host.

A private ``/tmp`` would hide what the machine keeps under ``/tmp`` from the hosts: a checkout
cloned there (whose sample app and venv the hosts run), pytest's temporary directories. So the
fleet's *shared paths* (this checkout, the running Python's prefix and whatever the caller names
in ``shared``) that lie under ``/tmp`` are bind-mounted, read-only, at the same path inside each
host's private ``/tmp``: the suite passes wherever the checkout is, and no host can change or
delete the checkout through its ``/tmp``.

Use it from pytest through the ``fleet`` fixture (tests/conftest.py), from Python::

    with Fleet(3) as fleet:
        inv = fleet.inventory_yaml(tmp / "inventory.yml")

or from a shell::

    python -m tests.fleet up 5 --dir /var/tmp/cdlib-fleet   # prints the inventory path
    python -m tests.fleet down --dir /var/tmp/cdlib-fleet

Needs root (mount namespaces, root login) and ``openssh-server`` / ``openssh-client``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "ssh-keygen"
#: Hosts per /24: addresses {subnet}.11 .. {subnet}.255.
PER_SUBNET = 245
#: A fleet bigger than one /24 goes on in the next ones (127.X.Y+1 ...): four at most.
MAX_HOSTS = 4 * PER_SUBNET
DEFAULT_SUBNET = "127.0.0"
# Directories each host gets a private copy of; the key is the name of its dir in the work dir.
PRIVATE_DIRS: dict[str, str] = {
    "srv": "/srv",
    "opt": "/opt",
    "var-lib-cdlib": "/var/lib/cdlib",
    "etc-cdlib-host": "/etc/cdlib-host",
}
# Per-host copies of the machine's service configuration, refreshed by reset(), so each host
# can run its own supervisord / haproxy with the stock Debian layout.
SEEDED_DIRS: dict[str, str] = {
    "etc-supervisor": "/etc/supervisor",
    "etc-haproxy": "/etc/haproxy",
}
# Per-host runtime state (pid files, sockets, logs), empty at start and after reset().
RUNTIME_DIRS: dict[str, str] = {
    "run": "/run",
    "var-log-supervisor": "/var/log/supervisor",
}
# Each host's own /root, seeded as on a fresh Debian install (base-files' dot.bashrc and
# dot.profile): the hosts must not run this machine's dotfiles (a `pyenv init` in root's
# ~/.bashrc takes a lock shared by every login on every host).
_ROOT_HOME = ("root-home", "/root")
_ROOT_SEED = {
    ".bashrc": "/usr/share/base-files/dot.bashrc",
    ".profile": "/usr/share/base-files/dot.profile",
}
# Made in each host's /run: sshd's privilege separation dir and what daemons expect there.
_RUN_SUBDIRS = ("sshd", "lock", "haproxy")
_STATE_FILE = "fleet.json"
# The checkout this file belongs to: its sample app and venv must be visible on every host.
REPO = Path(__file__).resolve().parents[1]
_MARKER = "# cdlib test fleet"


class FleetError(RuntimeError):
    """The fleet could not be started or used; the message says which host and why."""


@dataclass(frozen=True)
class FleetHost:
    """One fleet host: its inventory name (``host1``...), index, and listen address."""

    name: str
    index: int
    address: str
    port: int = 22


def fleet_available() -> str | None:
    """Why the fleet cannot run here (not root, no sshd, ...), or None when it can."""
    if os.geteuid() != 0:
        return "the SSH test fleet needs root (mount namespaces, root login)"
    for tool in (SSHD, SSH_KEYGEN, "unshare", "nsenter", "ssh"):
        if shutil.which(tool) is None:
            return (
                f"the SSH test fleet needs {tool!r} (apt-get install openssh-server openssh-client)"
            )
    return None


class Fleet:
    """N sshd hosts on ``{subnet}.{10+k}:22``; see the module docstring.

    Attributes: ``hosts`` (list of :class:`FleetHost`), ``key_file`` (client private key,
    authorized for root on every host), ``known_hosts`` (file with every host's key),
    ``workdir``.
    """

    def __init__(
        self,
        n: int,
        subnet: str | None = None,
        workdir: str | Path | None = None,
        *,
        start: bool = True,
        timeout: float = 30.0,
        detached: bool = False,
        shared: Sequence[str | Path] = (),
    ) -> None:
        if not 1 <= n <= MAX_HOSTS:
            raise FleetError(f"fleet size must be 1..{MAX_HOSTS}, got {n}")
        subnet = subnet or os.environ.get("CDLIB_FLEET_SUBNET") or DEFAULT_SUBNET
        _check_subnet(subnet)
        self.subnet = subnet
        self.n = n
        self.timeout = timeout
        self._own_workdir = workdir is None
        # The process whose death makes this fleet stale (reclaimed by the next fleet on the
        # subnet); None for fleets meant to outlive their starter (the CLI's ``up``).
        self.owner: int | None = None if detached else os.getpid()
        # Not under /tmp by default so each host can also get a private /tmp.
        base = Path(workdir) if workdir is not None else Path(_mkdtemp())
        base.mkdir(parents=True, exist_ok=True)
        self.workdir = base.resolve()
        if int(subnet.split(".")[2]) + (n - 1) // PER_SUBNET > 255:
            raise FleetError(f"{n} hosts do not fit in the /24s from {subnet} on")
        self.hosts = [FleetHost(f"host{k}", k, host_address(subnet, k)) for k in range(1, n + 1)]
        self.key_file = self.workdir / "client_key"
        self.known_hosts = self.workdir / "known_hosts"
        self.authorized_keys = self.workdir / "authorized_keys"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._pids: dict[int, int] = {}
        self.private_tmp = not _is_under(self.workdir, Path("/tmp"))
        # Machine paths every host must see at the same path, even those under its private /tmp.
        self.shared = _outermost([REPO, Path(sys.prefix), *(Path(p) for p in shared)])
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Generate keys and configs (once) and start every host that is not running."""
        why = fleet_available()
        if why:
            raise FleetError(why)
        self._reclaim_stale()
        self._prepare()
        self._start([h.index for h in self.hosts if not self.is_running(h.index)])
        self._save_state()

    def stop(self) -> None:
        """Stop every host (by pid, with everything left in its namespace) and remove the dirs."""
        for h in self.hosts:
            self.stop_host(h.index)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            return
        # A work dir the caller named: remove only what the fleet put there.
        for h in self.hosts:
            shutil.rmtree(self._hostdir(h.index), ignore_errors=True)
        for name in (
            _STATE_FILE,
            "client_key",
            "client_key.pub",
            "known_hosts",
            "authorized_keys",
            "inventory.yml",
        ):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / name).unlink()
        with contextlib.suppress(OSError):
            self.workdir.rmdir()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop_host(self, k: int) -> None:
        """Stop host ``k``: new connections to it are refused until :meth:`start_host`.

        Kills its sshd and every process still in its mount namespace (open sessions,
        services a test started there), so the namespace and its mounts go away.
        """
        self._host(k)
        pid = self._pids.pop(k, None)
        proc = self._procs.pop(k, None)
        if pid is None:
            return
        ns = _mnt_ns(pid)
        _kill(pid)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(pid, signal.SIGKILL)
                proc.wait(timeout=10)
        else:
            _wait_gone(pid, 10)
        if ns is not None:
            self._kill_ns(ns, keep=None)
        self._save_state()

    def start_host(self, k: int) -> None:
        """Start host ``k`` again (no-op when it runs) and wait until it accepts connections."""
        self._host(k)
        if not self.is_running(k):
            self._start([k])
            self._save_state()

    def is_running(self, k: int) -> bool:
        """Whether host ``k``'s sshd process is alive."""
        pid = self._pids.get(k)
        if pid is None:
            return False
        proc = self._procs.get(k)
        if proc is not None:
            return proc.poll() is None
        return _alive(pid)

    def pid(self, k: int) -> int:
        """The pid of host ``k``'s sshd (also the pid that holds its mount namespace)."""
        self._host(k)
        if not self.is_running(k):
            raise FleetError(f"host{k}: not running")
        return self._pids[k]

    def processes(self, k: int) -> list[int]:
        """Pids of every process in host ``k``'s mount namespace (its sshd included)."""
        ns = _mnt_ns(self.pid(k))
        return [] if ns is None else _pids_in_ns(ns)

    def reset(self) -> None:
        """Bring every host back to a clean state between tests.

        Starts stopped hosts, kills processes left in each host's namespace (services a test
        started, stray sessions) and empties the per-host directories.
        """
        for h in self.hosts:
            if self.is_running(h.index):
                ns = _mnt_ns(self._pids[h.index])
                if ns is not None:
                    self._kill_ns(ns, keep=self._pids[h.index])
        for h in self.hosts:
            self._fill_host(h.index, fresh=True)
        stopped = [h.index for h in self.hosts if not self.is_running(h.index)]
        if stopped:
            self._start(stopped)
            self._save_state()

    # ------------------------------------------------------------------ helpers for tests

    def host(self, k: int) -> FleetHost:
        """The :class:`FleetHost` for index ``k`` (1-based)."""
        return self._host(k)

    def path(self, k: int, inside: str) -> Path:
        """Where ``inside`` (a path under a private dir, e.g. ``/srv/app``) lives in the work dir.

        Lets a test read what a host wrote without entering it.
        """
        self._host(k)
        p = Path(inside)
        if any(_is_under(p, s) for s in self._shared_in_tmp()):
            return p  # the machine's own path, bind-mounted into the host's /tmp
        # Longest mount point first: /var/log/supervisor before a hypothetical /var.
        for sub, mnt in sorted(self._mounts(), key=lambda m: -len(m[1])):
            if _is_under(p, Path(mnt)):
                return self._hostdir(k) / sub / p.relative_to(mnt)
        where = ", ".join(m for _, m in self._mounts())
        raise FleetError(f"{inside}: not under a per-host directory ({where})")

    def ssh(
        self,
        k: int,
        cmd: str,
        *,
        check: bool = False,
        timeout: float = 60.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run shell command ``cmd`` inside host ``k``'s mount namespace (via nsenter, not SSH).

        ``input`` is fed to its stdin; ``check=True`` raises :class:`FleetError` on non-zero exit.
        """
        pid = self.pid(k)
        res = subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "--", "/bin/sh", "-c", cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise FleetError(f"host{k}: {cmd!r} exited {res.returncode}: {res.stderr.strip()}")
        return res

    def ssh_command(self, k: int) -> list[str]:
        """The argv prefix of an OpenSSH client that logs in to host ``k`` as root."""
        h = self._host(k)
        return [
            "ssh",
            "-i",
            str(self.key_file),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-p",
            str(h.port),
            f"root@{h.address}",
        ]

    def inventory(
        self,
        group: str = "web",
        extra_vars: Mapping[str, Any] | None = None,
        hosts: Sequence[int] | None = None,
        groups: Mapping[str, Sequence[int]] | None = None,
    ) -> dict[str, Any]:
        """The inventory as a dict (see :meth:`inventory_yaml`)."""
        chosen = list(hosts) if hosts is not None else [h.index for h in self.hosts]
        layout = dict(groups) if groups is not None else {group: chosen}
        children: dict[str, Any] = {}
        for gname, members in layout.items():
            children[gname] = {"hosts": {self._host(k).name: self._host_vars(k) for k in members}}
        top: dict[str, Any] = {"children": children}
        if extra_vars:
            top["vars"] = dict(extra_vars)
        return {"all": top}

    def inventory_yaml(
        self,
        path: str | Path,
        group: str = "web",
        extra_vars: Mapping[str, Any] | None = None,
        hosts: Sequence[int] | None = None,
        groups: Mapping[str, Sequence[int]] | None = None,
    ) -> Path:
        """Write an Ansible-style YAML inventory of the fleet to ``path`` and return the path.

        All hosts (or the indexes in ``hosts``) go in ``group``; ``groups`` maps several
        group names to host indexes instead. ``extra_vars`` become ``all: vars:``.
        """
        data = self.inventory(group, extra_vars, hosts, groups)
        out = Path(path)
        _write_atomic(out, yaml.safe_dump(data, sort_keys=False))
        return out

    # ------------------------------------------------------------------ internals

    def _host(self, k: int) -> FleetHost:
        if not 1 <= k <= self.n:
            raise FleetError(f"no host{k} in a fleet of {self.n}")
        return self.hosts[k - 1]

    def _hostdir(self, k: int) -> Path:
        return self.workdir / f"host{k}"

    def _host_vars(self, k: int) -> dict[str, Any]:
        h = self._host(k)
        return {
            "ansible_host": h.address,
            "ansible_port": h.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key_file),
            "cdlib_known_hosts_file": str(self.known_hosts),
        }

    def _prepare(self) -> None:
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for mnt in PRIVATE_DIRS.values():
            Path(mnt).mkdir(parents=True, exist_ok=True)
        if not self.key_file.exists():
            _run(
                [
                    SSH_KEYGEN,
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "cdlib-fleet-client",
                    "-f",
                    str(self.key_file),
                ]
            )
        _write_atomic(self.authorized_keys, self.key_file.with_suffix(".pub").read_text())
        keygens = []
        for h in self.hosts:
            d = self._hostdir(h.index)
            self._fill_host(h.index, fresh=not d.exists())
            key = d / "ssh_host_ed25519_key"
            if not key.exists():
                # Started together: keygen is quick but 100 of them in a row add up.
                keygens.append(
                    subprocess.Popen(
                        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", h.name, "-f", str(key)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
            _write_atomic(d / "sshd_config", self._sshd_config(h))
        for p in keygens:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                raise FleetError(f"ssh-keygen failed: {err.decode(errors='replace').strip()}")
        lines = []
        for h in self.hosts:
            pub = (self._hostdir(h.index) / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{h.address} {pub[0]} {pub[1]}\n")
        _write_atomic(self.known_hosts, "".join(lines))

    def _shared_in_tmp(self) -> list[Path]:
        """The shared paths a private /tmp would hide (so each host gets a bind mount)."""
        if not self.private_tmp:
            return []
        return [p for p in self.shared if _is_under(p, Path("/tmp")) and p != Path("/tmp")]

    def _shared_mounts(self, k: int) -> list[str]:
        """Shell commands, run in host k's namespace before /tmp is mounted, that bind each
        shared path read-only onto its place in the host's /tmp dir (carried by ``--rbind``)."""
        out = []
        for p in self._shared_in_tmp():
            if not p.exists():
                continue
            at = shlex.quote(str(self._hostdir(k) / "tmp" / p.relative_to("/tmp")))
            make = f"mkdir -p {at}" if p.is_dir() else f"mkdir -p $(dirname {at}) && touch {at}"
            src = shlex.quote(str(p))
            out += [make, f"mount --bind {src} {at}", f"mount -o remount,bind,ro {at}"]
        return out

    def _mounts(self) -> list[tuple[str, str]]:
        """(dir name in the host dir, mount point) of every per-host directory."""
        out = list(PRIVATE_DIRS.items())
        out += [
            (sub, mnt) for sub, mnt in {**SEEDED_DIRS, **RUNTIME_DIRS}.items() if Path(mnt).is_dir()
        ]
        out.append(_ROOT_HOME)
        if self.private_tmp:
            out.append(("tmp", "/tmp"))
        return out

    def _fill_host(self, k: int, fresh: bool) -> None:
        """Create host k's directories; ``fresh`` empties them and re-seeds the config copies."""
        d = self._hostdir(k)
        for sub, mnt in self._mounts():
            target = d / sub
            target.mkdir(parents=True, exist_ok=True)
            if fresh:
                # Keep /run/sshd itself: the running sshd needs it for every new login. Keep
                # the mount points of the shared paths in /tmp: removing one here would
                # detach the host's bind mount of it.
                keep = {"sshd"} if mnt == "/run" else set()
                if mnt == "/tmp":
                    keep = {p.relative_to("/tmp").parts[0] for p in self._shared_in_tmp()}
                _empty_dir(target, keep=keep)
                if mnt in SEEDED_DIRS.values():
                    shutil.copytree(mnt, target, symlinks=True, dirs_exist_ok=True)
        home = d / _ROOT_HOME[0]
        home.chmod(0o700)
        for name, seed in _ROOT_SEED.items():
            if not (home / name).exists() and Path(seed).is_file():
                shutil.copyfile(seed, home / name)
        for sub in _RUN_SUBDIRS:
            if Path("/run").is_dir():
                (d / "run" / sub).mkdir(mode=0o755, exist_ok=True)
        if self.private_tmp:
            (d / "tmp").chmod(0o1777)

    def _sshd_config(self, h: FleetHost) -> str:
        d = self._hostdir(h.index)
        return "\n".join(
            [
                _MARKER,
                f"ListenAddress {h.address}:{h.port}",
                f"HostKey {d / 'ssh_host_ed25519_key'}",
                f"PidFile {d / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "PrintMotd no",
                "PermitUserEnvironment no",
                "AcceptEnv LANG LC_*",
                # Parallel runs open many sessions at once; the defaults (10:30:100) drop some.
                "MaxStartups 200:30:400",
                "MaxSessions 100",
                "LogLevel ERROR",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )

    def _start(self, indexes: Sequence[int]) -> None:
        for k in indexes:
            self._spawn(k)
        self._wait_ready(indexes)

    def _spawn(self, k: int) -> None:
        h = self._host(k)
        d = self._hostdir(k)
        busy = _listening(h.address, h.port)
        if busy:
            raise FleetError(
                f"{h.name}: {h.address}:{h.port} is already in use (a stale fleet on subnet "
                f"{self.subnet}? `python -m tests.fleet down --subnet {self.subnet}` stops it)"
            )
        # /tmp recursively, so the shared paths bound inside the host's tmp dir come along.
        mounts = [
            f"mount --{'rbind' if mnt == '/tmp' else 'bind'} {d / sub} {mnt}"
            for sub, mnt in self._mounts()
        ]
        mounts = [*self._shared_mounts(k), *mounts]
        # unshare execs sh, sh execs sshd: the pid we get is sshd's own, no wrapper left.
        script = " && ".join([*mounts, f'exec {SSHD} -D -e -f "$1"'])
        log = open(d / "sshd.log", "ab")  # noqa: SIM115 -- handed to the child, closed below
        try:
            proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/sh",
                    "-c",
                    script,
                    "fleet-host",
                    str(d / "sshd_config"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        self._procs[k] = proc
        self._pids[k] = proc.pid

    def _wait_ready(self, indexes: Sequence[int]) -> None:
        pending = set(indexes)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        for _ in range(100_000):
            for k in sorted(pending):
                proc = self._procs[k]
                if proc.poll() is not None:
                    self._pids.pop(k, None)
                    self._procs.pop(k, None)
                    raise FleetError(
                        f"host{k}: sshd exited with {proc.returncode} before listening on "
                        f"{self._host(k).address}:22; its log:\n{self._log_tail(k)}"
                    )
                if _listening(self._host(k).address, self._host(k).port):
                    pending.discard(k)
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"host{k}" for k in sorted(pending))
                logs = "\n".join(f"--- host{k}:\n{self._log_tail(k)}" for k in sorted(pending)[:3])
                raise FleetError(f"{names}: not accepting on port 22 after {self.timeout}s\n{logs}")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        raise FleetError("fleet readiness loop exhausted")

    def _log_tail(self, k: int) -> str:
        try:
            return (self._hostdir(k) / "sshd.log").read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return "(no log)"

    def _kill_ns(self, ns: str, keep: int | None) -> None:
        victims = [p for p in _pids_in_ns(ns) if p != keep]
        for p in victims:
            _kill(p)
        for p in victims:
            if not _wait_gone(p, 5):
                _kill(p, signal.SIGKILL)
                _wait_gone(p, 5)

    def _reclaim_stale(self) -> None:
        """Stop fleets left on this subnet by a test run that died without tearing down.

        Only fleets whose recorded owner process is gone are touched; a live fleet (or one
        started by the CLI) is left alone and its address clash is reported by _spawn.
        """
        subnets = sorted({h.address.rsplit(".", 1)[0] for h in self.hosts})
        for pid, cfg in (found for net in subnets for found in _stale_sshd_pids(net)):
            wd = cfg.parent.parent
            if wd == self.workdir:
                continue
            try:
                state = json.loads((wd / _STATE_FILE).read_text())
            except (OSError, ValueError):
                continue
            owner = state.get("owner")
            if owner is None or _alive(int(owner)):
                continue
            print(
                f"fleet: stopping stale fleet in {wd} (owner pid {owner} is gone)", file=sys.stderr
            )
            stale = Fleet.attach(wd)
            stale._own_workdir = wd.name.startswith("cdlib-fleet-")
            stale.stop()
            _kill(pid)
            _wait_gone(pid, 10)

    def _save_state(self) -> None:
        state = {
            "n": self.n,
            "subnet": self.subnet,
            "pids": {str(k): v for k, v in self._pids.items()},
            "owner": self.owner,
        }
        with contextlib.suppress(FileNotFoundError):
            _write_atomic(self.workdir / _STATE_FILE, json.dumps(state))

    @classmethod
    def attach(cls, workdir: str | Path) -> Fleet:
        """A handle on a fleet started earlier (e.g. by ``python -m tests.fleet up``)."""
        wd = Path(workdir)
        try:
            state = json.loads((wd / _STATE_FILE).read_text())
        except FileNotFoundError:
            raise FleetError(f"{wd}: no fleet state ({_STATE_FILE}) here") from None
        fleet = cls(int(state["n"]), state["subnet"], wd, start=False)
        fleet.owner = state.get("owner")
        for k, pid in state["pids"].items():
            if _alive(int(pid)):
                fleet._pids[int(k)] = int(pid)
        return fleet


# ---------------------------------------------------------------------- module helpers


def _mkdtemp() -> str:
    root = Path("/var/tmp")
    return tempfile.mkdtemp(prefix="cdlib-fleet-", dir=root if root.is_dir() else None)


def host_address(subnet: str, k: int) -> str:
    """Host ``k``'s address: ``{subnet}.{10+k}`` for the first 245, then on in the next /24s."""
    a, b, c = subnet.split(".")
    spill, at = divmod(k - 1, PER_SUBNET)
    return f"{a}.{b}.{int(c) + spill}.{11 + at}"


def _check_subnet(subnet: str) -> None:
    parts = subnet.split(".")
    ok = len(parts) == 3 and all(p.isdigit() and 0 <= int(p) <= 255 for p in parts)
    if not ok or parts[0] != "127":
        raise FleetError(f"fleet subnet must look like 127.X.Y (loopback only), got {subnet!r}")


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """Absolute, symlink-free ``paths`` without duplicates or paths inside another of them."""
    resolved = sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts))
    out: list[Path] = []
    for p in resolved:
        if not any(_is_under(p, q) for q in out):
            out.append(p)
    return out


def _is_under(p: Path, root: Path) -> bool:
    try:
        p.relative_to(root)
    except ValueError:
        return False
    return True


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _run(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise FleetError(f"{argv[0]} failed ({res.returncode}): {res.stderr.strip()}")


def _listening(addr: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((addr, port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if not _alive(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return not _alive(pid)


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _pids_in_ns(ns: str) -> list[int]:
    me = _mnt_ns(os.getpid())
    if ns == me:
        return []  # never the namespace we run in
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _mnt_ns(int(entry.name)) == ns:
            out.append(int(entry.name))
    return out


def _empty_dir(d: Path, keep: set[str] | None = None) -> None:
    if not d.is_dir():
        return
    for child in d.iterdir():
        if keep and child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()


def _stale_sshd_pids(subnet: str) -> list[tuple[int, Path]]:
    """(pid, config path) of fleet sshd listeners (found by their config's marker) on ``subnet``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        # sshd rewrites its title ("sshd: /usr/sbin/sshd -D -e -f CFG [listener] ..."), so
        # look for the config path anywhere in it.
        m = re.search(rb"\s-f\s+(\S+/sshd_config)\b", cmdline)
        if not m or (b"[listener]" not in cmdline and not cmdline.startswith(SSHD.encode())):
            continue
        path = Path(m.group(1).decode())
        try:
            cfg = path.read_text()
        except OSError:
            continue
        if cfg.startswith(_MARKER) and f"ListenAddress {subnet}." in cfg:
            found.append((int(entry.name), path))
    return found


# ---------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.fleet up N [--subnet S] [--dir D]`` / ``down [--dir D | --subnet S]``."""
    ap = argparse.ArgumentParser(prog="python -m tests.fleet", description="SSH test fleet")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start N hosts and write an inventory")
    up.add_argument("n", type=int)
    up.add_argument("--subnet", default=os.environ.get("CDLIB_FLEET_SUBNET", DEFAULT_SUBNET))
    up.add_argument("--dir", default="/var/tmp/cdlib-fleet")
    up.add_argument("--group", default="web")
    down = sub.add_parser("down", help="stop a fleet started with up")
    down.add_argument("--dir", default="/var/tmp/cdlib-fleet")
    down.add_argument("--subnet", default=None, help="also stop stray fleet sshds on this subnet")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            wd = Path(args.dir)
            if (wd / _STATE_FILE).exists():
                old = Fleet.attach(wd)
                if any(old.is_running(h.index) for h in old.hosts):
                    print(f"{wd}: a fleet is already up here; run down first", file=sys.stderr)
                    return 2
            fleet = Fleet(args.n, args.subnet, wd, detached=True)
            inv = fleet.inventory_yaml(wd / "inventory.yml", group=args.group)
            print(inv)
            return 0
        stopped = 0
        wd = Path(args.dir)
        if (wd / _STATE_FILE).exists():
            fleet = Fleet.attach(wd)
            stopped += sum(1 for h in fleet.hosts if fleet.is_running(h.index))
            fleet.stop()
        if args.subnet:
            for pid, _ in _stale_sshd_pids(args.subnet):
                _kill(pid)
                stopped += 1
        print(f"stopped {stopped} host(s)")
        return 0
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
