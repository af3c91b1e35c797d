"""Probing: observe what a check looks at, from the control machine or from a host.

Every probe returns an observation for the check's ``evaluate`` or a :class:`Failure`
when nothing could be observed (refused, timeout, no interpreter on the host). Host-side
probes make exactly one ``conn.run`` per attempt and rely only on ``sh`` plus either
``python3`` or ``bash`` and coreutils; no curl, nc or ps is assumed.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import shlex
import socket
from typing import Any
from urllib.parse import urlsplit

from cdlib.checks import _httpclient
from cdlib.checks.http import HttpCheck, HttpResponse
from cdlib.checks.report import Failure, FailureKind, excerpt
from cdlib.checks.system import (
    CommandCheck,
    FileCheck,
    FileState,
    ProcessCheck,
    ProcessList,
    ServiceCheck,
    ServiceState,
    TcpCheck,
    TcpResult,
)
from cdlib.connections.base import CommandResult, Connection
from cdlib.connections.local import LocalConnection


class ControlMachine:
    """The machine cdlib runs on, as a place to probe from."""

    name = "control"

    def __repr__(self) -> str:
        return "CONTROL"


#: Probe from the control machine.
CONTROL = ControlMachine()

#: Where a probe runs: the control machine or a host's connection.
Target = Connection | ControlMachine

# Process listings include the probe's own shell, whose command line is this script;
# the marker lets us drop it so a pattern never matches the probe itself.
_PROBE_MARK = "cdlib-probe-self"


def target_name(target: Target) -> str:
    """``control`` or the connection's host name."""
    return target.name if isinstance(target, ControlMachine) else target.host


def _conn(target: Target) -> Connection:
    return LocalConnection() if isinstance(target, ControlMachine) else target


# -- HTTP -----------------------------------------------------------------------------


def _spec(check: HttpCheck, timeout: float) -> dict[str, Any]:
    body = check.body_bytes
    return {
        "url": check.url,
        "method": check.method,
        "headers": check.request_headers(),
        "body": None if body is None else base64.b64encode(body).decode("ascii"),
        "timeout": timeout,
        "verify": check.verify_tls,
        "ca_bundle": check.ca_bundle,
    }


def _from_result(d: dict[str, Any]) -> HttpResponse | Failure:
    if "error" in d:
        return Failure(FailureKind(d["error"]), str(d["message"]))
    return HttpResponse(
        status=int(d["status"]),
        reason=str(d.get("reason", "")),
        headers=tuple((str(k), str(v)) for k, v in d["headers"]),
        body=base64.b64decode(d["body"]),
        elapsed=float(d["elapsed"]),
    )


def probe_http(check: HttpCheck, target: Target, timeout: float) -> HttpResponse | Failure:
    """Send the check's request from ``target`` and return the response or a failure."""
    if isinstance(target, ControlMachine):
        return _from_result(_httpclient.request(_spec(check, timeout)))
    return _from_result_host(check, target, timeout)


def _bootstrap_python() -> str:
    # python3 reads its program from the first stdin line, so the (long) program and
    # any credentials in the request stay out of the host's process list and our logs.
    return (
        "import base64,sys;"
        "exec(compile(base64.b64decode(sys.stdin.buffer.readline()),'cdlib-http','exec'))"
    )


_BASH_HTTP = r"""IFS= read -r _; IFS= read -r _
exec 3<>"/dev/tcp/$1/$2" || exit 7
s=$(date +%s%N)
head -c "$3" >&3
r=$(base64 <&3 | tr -d '\n')
e=$(date +%s%N)
printf 'CDLIB-HTTP-RAW %s %s\n' "$((e - s))" "$r"
"""


def host_http_command(
    check: HttpCheck, timeout: float, prefer: str = "python3"
) -> tuple[str, bytes]:
    """The shell command and stdin that perform ``check``'s request on a host.

    ``python3`` is used when present; else ``bash`` with ``/dev/tcp`` (plain HTTP only).
    ``prefer="bash"`` skips python3 (for tests of the fallback).
    """
    url = urlsplit(check.url)
    program = base64.b64encode(inspect.getsource(_httpclient).encode())
    raw = _raw_request(check)
    stdin = program + b"\n" + json.dumps(_spec(check, timeout)).encode() + b"\n" + raw
    port = url.port or (443 if url.scheme == "https" else 80)
    bash = (
        f"exec timeout {timeout:.3f} bash -c {shlex.quote(_BASH_HTTP)} _ "
        f"{shlex.quote(url.hostname or '')} {port} {len(raw)}"
    )
    if url.scheme == "https":
        bash = "echo 'CDLIB-ERROR https from a host needs python3, which is missing'"
    # -S: no site-packages scan at start; the program needs the standard library only.
    py = f"exec python3 -S -c {shlex.quote(_bootstrap_python())}"
    if prefer == "bash":
        return bash, stdin
    cmd = (
        f"if command -v python3 >/dev/null 2>&1; then {py}; fi; "
        f"if command -v bash >/dev/null 2>&1; then {bash}; fi; "
        "echo 'CDLIB-ERROR neither python3 nor bash on the host'"
    )
    return cmd, stdin


def _raw_request(check: HttpCheck) -> bytes:
    url = urlsplit(check.url)
    path = (url.path or "/") + ("?" + url.query if url.query else "")
    body = check.body_bytes or b""
    host = url.hostname or ""
    if url.port:
        host += f":{url.port}"
    # HTTP/1.0 with Connection: close, so the server ends the body by closing.
    lines = [f"{check.method} {path} HTTP/1.0", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in check.request_headers().items()]
    if body or check.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _from_result_host(check: HttpCheck, conn: Connection, timeout: float) -> HttpResponse | Failure:
    cmd, stdin = host_http_command(check, timeout)
    res = conn.run(cmd, stdin=stdin, sudo=False, timeout=timeout + 5)
    return parse_host_http(res, timeout)


def parse_host_http(res: CommandResult, timeout: float) -> HttpResponse | Failure:
    """Read the result line printed by the host-side request (python3 or bash)."""
    for line in res.stdout.splitlines():
        if line.startswith(_httpclient.MARK):
            return _from_result(json.loads(line[len(_httpclient.MARK) :]))
        if line.startswith("CDLIB-HTTP-RAW "):
            _, ns, b64 = [*line.split(" ", 2), ""][:3]
            return _parse_raw(base64.b64decode(b64), int(ns) / 1e9)
        if line.startswith("CDLIB-ERROR "):
            return Failure(FailureKind.ERROR, line[len("CDLIB-ERROR ") :])
    if res.exit_code == 124:
        return Failure(FailureKind.TIMEOUT, f"no answer within {timeout}s")
    err = res.stderr.strip()
    if re.search(r"refused|No route|unreachable|resolve|Name or service", err, re.I):
        return Failure(FailureKind.CONNECT, excerpt(err, 200))
    return Failure(
        FailureKind.ERROR,
        f"host-side request failed (exit {res.exit_code}): {excerpt(err or res.stdout, 200)}",
    )


def _parse_raw(raw: bytes, elapsed: float) -> HttpResponse | Failure:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    m = re.match(r"HTTP/\d(?:\.\d)? (\d{3}) ?(.*)", lines[0]) if sep else None
    if m is None:
        return Failure(FailureKind.ERROR, f"not an HTTP response: {excerpt(repr(raw[:200]), 200)}")
    headers = tuple(
        (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
    )
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = _dechunk(body)
    return HttpResponse(int(m.group(1)), headers, body, elapsed, m.group(2))


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


# -- TCP ---------------------------------------------------------------------------------

_PY_TCP = """import socket,sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()
    print("CDLIB-TCP open")
except socket.timeout:
    print("CDLIB-TCP timeout")
except OSError as e:
    print("CDLIB-TCP closed", e)
"""


def probe_tcp(check: TcpCheck, target: Target, timeout: float) -> TcpResult:
    """Try to open a TCP connection to ``check.host:check.port`` from ``target``."""
    if isinstance(target, ControlMachine):
        try:
            socket.create_connection((check.host, int(check.port)), timeout).close()
        except TimeoutError:
            return TcpResult(False, f"no answer within {timeout}s", timed_out=True)
        except OSError as exc:
            return TcpResult(False, exc.strerror or str(exc))
        return TcpResult(True)
    args = f"{shlex.quote(check.host)} {shlex.quote(str(check.port))}"
    cmd = (
        "if command -v python3 >/dev/null 2>&1; then "
        f"exec python3 -S -c {shlex.quote(_PY_TCP)} {args} {timeout:.3f}; fi; "
        f"exec timeout {timeout:.3f} bash -c "
        + shlex.quote('exec 3<>"/dev/tcp/$1/$2" && echo "CDLIB-TCP open"')
        + f" _ {args}"
    )
    res = target.run(cmd, sudo=False, timeout=timeout + 5)
    out = res.stdout.strip()
    if out.startswith("CDLIB-TCP open"):
        return TcpResult(True)
    if out.startswith("CDLIB-TCP timeout") or res.exit_code == 124:
        return TcpResult(False, f"no answer within {timeout}s", timed_out=True)
    why = out.removeprefix("CDLIB-TCP closed").strip() or res.stderr.strip()
    return TcpResult(False, excerpt(why, 200))


# -- command, process, service, file ------------------------------------------------------


def probe_command(check: CommandCheck, target: Target, timeout: float) -> CommandResult:
    """Run the check's command on ``target``."""
    return _conn(target).run(check.command, sudo=check.sudo, timeout=timeout)


_PROCESS_SCRIPT = f""": {_PROBE_MARK}
if command -v ps >/dev/null 2>&1; then exec ps -ww -eo pid=,args=; fi
for d in /proc/[0-9]*; do
  c=$(tr '\\0\\n' '  ' < "$d/cmdline" 2>/dev/null) || continue
  [ -n "$c" ] && printf '%s %s\\n' "${{d#/proc/}}" "$c"
done
exit 0
"""


def probe_process(check: ProcessCheck, target: Target, timeout: float) -> ProcessList | Failure:
    """List the target's processes (``ps``, else ``/proc``), minus the probe itself."""
    res = _conn(target).run(_PROCESS_SCRIPT, sudo=False, timeout=timeout)
    if not res.ok:
        return Failure(FailureKind.ERROR, f"cannot list processes: {excerpt(res.stderr, 200)}")
    procs: list[tuple[int, str]] = []
    for line in res.stdout.splitlines():
        pid, _, cmd = line.strip().partition(" ")
        if pid.isdigit() and _PROBE_MARK not in cmd and cmd.strip() != "ps -ww -eo pid=,args=":
            procs.append((int(pid), cmd.strip()))
    return ProcessList(tuple(procs))


def _service_script(name: str) -> str:
    q = shlex.quote(name)
    return (
        "if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then "
        f's=$(systemctl is-active {q} 2>/dev/null); echo "CDLIB-SVC systemd ${{s:-unknown}}"; '
        "elif command -v service >/dev/null 2>&1; then "
        f"if service {q} status >/dev/null 2>&1; then echo 'CDLIB-SVC service active'; "
        "else echo 'CDLIB-SVC service inactive'; fi; "
        "else echo 'CDLIB-SVC none unknown'; fi"
    )


def probe_service(check: ServiceCheck, target: Target, timeout: float) -> ServiceState | Failure:
    """Ask systemd (or the SysV ``service`` command) for the service's state."""
    res = _conn(target).run(_service_script(check.service), sudo=False, timeout=timeout)
    m = re.search(r"^CDLIB-SVC (\S+) (\S+)", res.stdout, re.M)
    if m is None:
        return Failure(FailureKind.ERROR, f"service probe failed: {excerpt(res.stderr, 200)}")
    if m.group(1) == "none":
        return Failure(FailureKind.ERROR, "no service manager (systemd or service) on the target")
    return ServiceState(m.group(2), m.group(1))


def _file_script(check: FileCheck) -> str:
    p = shlex.quote(check.path)
    read = (
        f"[ -r {p} ] || {{ echo 'CDLIB-FILE unreadable'; exit 0; }}; echo 'CDLIB-FILE file'; "
        f"head -c {check.max_bytes + 1} {p} | base64"
        if check.reads_content
        else "echo 'CDLIB-FILE file'"
    )
    return (
        f"if [ -d {p} ]; then echo 'CDLIB-FILE directory'; "
        f"elif [ -f {p} ]; then {read}; "
        f"elif [ -e {p} ]; then echo 'CDLIB-FILE other'; "
        "else echo 'CDLIB-FILE missing'; fi"
    )


def probe_file(check: FileCheck, target: Target, timeout: float) -> FileState | Failure:
    """Look at ``check.path`` on the target: kind and, when needed, the start of the content."""
    res = _conn(target).run(_file_script(check), sudo=check.sudo, timeout=timeout)
    first, _, rest = res.stdout.partition("\n")
    kind = first.removeprefix("CDLIB-FILE ").strip()
    if not first.startswith("CDLIB-FILE ") or not res.ok:
        return Failure(FailureKind.ERROR, f"file probe failed: {excerpt(res.stderr, 200)}")
    if kind == "unreadable":
        return Failure(FailureKind.ERROR, f"{check.path} is not readable (try sudo)")
    if kind == "file" and check.reads_content:
        data = base64.b64decode("".join(rest.split()))
        return FileState(
            "file",
            data[: check.max_bytes].decode("utf-8", "replace"),
            truncated=len(data) > check.max_bytes,
        )
    if kind in ("missing", "file", "directory", "other"):
        return FileState(kind)  # type: ignore[arg-type]
    return Failure(FailureKind.ERROR, f"file probe printed {excerpt(first, 100)!r}")


__all__ = [
    "CONTROL",
    "ControlMachine",
    "Target",
    "host_http_command",
    "parse_host_http",
    "probe_command",
    "probe_file",
    "probe_http",
    "probe_process",
    "probe_service",
    "probe_tcp",
    "target_name",
]
