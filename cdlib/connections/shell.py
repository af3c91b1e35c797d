"""Shell snippets shared by tasks and stores: quoting, atomic writes, modes and owners."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def q(text: str) -> str:
    """Quote for POSIX sh."""
    return shlex.quote(text)


def env_from_stdin(env: Mapping[str, str]) -> tuple[str, bytes]:
    """A shell prefix exporting ``env`` read from stdin, and the bytes to send first.

    Values travel as data, never in the command line (other users of the host can read
    every process's argv in ``/proc/*/cmdline``): one line per variable, in order, with
    backslash and newline escaped for ``printf %b``. The prefix reads them with the
    ``read`` builtin, which takes no byte past each newline from a pipe, so the command
    reads its own stdin after them unchanged. Names must be shell identifiers; a value
    cannot hold a NUL byte (no environment can).
    """
    reads: list[str] = []
    data = bytearray()
    for name, value in env.items():
        if not _ENV_NAME_RE.match(name):
            raise ValueError(f"environment variable name {name!r} is not a shell identifier")
        if "\0" in value:
            raise ValueError(f"environment variable {name}: the value holds a NUL byte")
        raw = value.encode("utf-8", "surrogateescape")
        data += raw.replace(b"\\", b"\\0134").replace(b"\n", b"\\012") + b"\n"
        # printf is a builtin: the value never reaches an argv. The trailing x keeps the
        # value's own trailing newlines from the command substitution.
        reads.append(
            f"IFS= read -r _cdlib_v && _cdlib_v=$(printf '%bx' \"$_cdlib_v\") && "
            f"{name}=${{_cdlib_v%x}} && export {name}"
        )
    prefix = "{ " + " && ".join(reads) + "; } || exit 125; unset _cdlib_v; " if reads else ""
    return prefix, bytes(data)


def attrs_command(path: str, mode: str | None, owner: str | None, group: str | None) -> str:
    """chmod/chown a path; empty when nothing is asked."""
    cmds = []
    if owner or group:
        spec = f"{owner or ''}:{group or ''}" if owner else f":{group}"
        cmds.append(f"chown -h {q(spec)} -- {q(path)}")
    if mode:
        cmds.append(f"chmod {q(mode)} -- {q(path)}")
    return " && ".join(cmds)


def atomic_write_command(
    path: str,
    mode: str | None,
    owner: str | None,
    group: str | None,
    *,
    size: int | None = None,
) -> str:
    """Write stdin to ``path`` atomically: temp file in the same directory, then rename.

    The temp file is created 0600 (``mktemp``) before any byte is written, and mode and
    owner are set on it before the rename, so the file never appears with the wrong
    permissions. With ``size``, exactly that many bytes are read (more files may follow
    on the same stdin) and a shorter input (the sender died midway) installs nothing.
    On any failure the temp file is removed.
    """
    d = posixpath.dirname(path) or "."
    base = posixpath.basename(path)
    steps = [
        f"t=$(mktemp {q(d + '/.' + base + '.cdlib-XXXXXX')})",
        "trap 'rm -f \"$t\"' EXIT",
    ]
    if size is None:
        steps.append('cat > "$t"')
    else:
        steps += [
            f'head -c {int(size)} > "$t"',
            f'{{ [ "$(wc -c < "$t")" -eq {int(size)} ] || '
            f'{{ echo "short input for {_display(path)}" >&2; exit 1; }}; }}',
        ]
    return " && ".join(steps) + " && " + _finish_temp(path, mode, owner, group)


def _display(path: str) -> str:
    # For a message inside double quotes: keep it readable, never let it expand.
    return "".join(c if c.isalnum() or c in "/._-" else "?" for c in path)


def install_temp_command(
    tmp: str, path: str, mode: str | None, owner: str | None, group: str | None
) -> str:
    """Rename an uploaded temp file (same directory as ``path``) over ``path`` with attributes.

    Used after a raw upload of a large file; on any failure the temp file is removed.
    """
    return f"t={q(tmp)} && trap 'rm -f \"$t\"' EXIT && " + _finish_temp(path, mode, owner, group)


def _finish_temp(path: str, mode: str | None, owner: str | None, group: str | None) -> str:
    # Keep an existing file's mode when none is asked, as editors and Ansible do; keep its
    # owner too when none is asked (only root can, so a failure there is not an error).
    keep = ""
    if not mode:
        own = "" if owner or group else f'chown --reference={q(path)} "$t" 2>/dev/null || true; '
        keep = (
            f'if [ -f {q(path)} ]; then chmod --reference={q(path)} "$t"; {own}'
            'else chmod "$(printf %o $((0666 & ~$(umask))))" "$t"; fi && '
        )
    attrs = attrs_command("__T__", mode, owner, group).replace(q("__T__"), '"$t"')
    script = keep
    if attrs:
        script += attrs + " && "
    script += f'mv -f -- "$t" {q(path)} && trap - EXIT'
    return script


def atomic_symlink_command(path: str, target: str) -> str:
    """Point symlink ``path`` at ``target`` atomically (link a temp name, rename over)."""
    d = posixpath.dirname(path) or "."
    tmp = posixpath.join(d, "." + posixpath.basename(path) + ".cdlib-link")
    return f"rm -f -- {q(tmp)} && ln -s -- {q(target)} {q(tmp)} && mv -T -f -- {q(tmp)} {q(path)}"
