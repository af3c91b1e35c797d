"""Shell scripts that change an app's release layout; each runs as one remote command."""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cdlib.connections.shell import atomic_symlink_command, q

#: Exit code of the install script when the pre-switch check failed (release marked bad).
CHECK_FAILED_EXIT = 86


def config_tar(files: Mapping[str, bytes], mode: int = 0o640) -> bytes:
    """An uncompressed tar of config files (relative paths), sent on stdin."""
    import io
    import tarfile  # only when installing: keeps ``import cdlib`` quick

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(files[name]))
    return raw.getvalue()


def log_append(root: str, record: Mapping[str, Any]) -> str:
    """Append one JSON line to the release log (a single O_APPEND write, under the lock)."""
    line = json.dumps(dict(record), sort_keys=True, separators=(",", ":"))
    # coreutils printf names a write error (ENOSPC); dash's builtin says "I/O error".
    return f"env printf '%s\\n' {q(line)} >> {q(root + '/.cdlib/releases.jsonl')}"


def shared_links(
    root: str, dest: str, shared_dirs: Sequence[str], shared_files: Sequence[str]
) -> str:
    """Create missing shared dirs/files and link them into the release directory.

    ``dest`` is a shell expression for the release directory (``"$tmp"``). What the build
    shipped at a linked path is replaced by the link.
    """
    cmds = []
    for d in shared_dirs:
        src = f"{root}/shared/{d}"
        cmds.append(f"mkdir -p -- {q(src)}")
        cmds.append(_link(src, dest, d))
    for f in shared_files:
        src = f"{root}/shared/{f}"
        cmds.append(f"mkdir -p -- {q(posixpath.dirname(src))}")
        cmds.append(f"{{ [ -e {q(src)} ] || : > {q(src)}; }}")
        cmds.append(_link(src, dest, f))
    return " && ".join(cmds) if cmds else "true"


def no_symlink_on_way(dest: str, rel: str) -> str:
    """Refuse (exit 1) when a directory on the way to ``dest/rel`` is a symlink.

    ``dest`` is a shell expression for the release directory. Writing ``rel`` through a
    symlinked parent would land wherever that link points; the final component needs no
    check, as writes rename over it (replacing a symlink there, never following it).
    """
    parts = rel.split("/")[:-1]
    cmds = []
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i])
        path = f"{dest}/{q(p)}"
        msg = f"refusing to write {rel} in the release: {p} is a symlink to"
        cmds.append(
            f"if [ -L {path} ]; then printf '%s %s\\n' {q(msg)} "
            f'"$(readlink -- {path})" >&2; exit 1; fi'
        )
    return "\n".join(cmds) or "true"


#: Run by ``find -exec``: $1 is the release dir (physical path), then symlinks under it.
_ESCAPE_CHECK = (
    'b=$1; shift; for l do t=$(readlink -- "$l"); p=$(realpath -m -- "$l"); '
    'case $t in /*) p=/;; esac; case $p in "$b"|"$b"/*) ;; *) '
    "printf 'build member %s is a symlink to %s, outside the release\\n' "
    '"${l#"$b"/}" "$t" >&2; exit 1;; esac; done'
)


def no_escaping_links(dest: str) -> str:
    """Refuse (exit 1) when a symlink under ``dest`` is absolute or resolves outside it.

    ``realpath -m`` follows chains of links as the kernel would; the message names the
    member and its target.
    """
    return (
        f"b=$(cd {dest} && pwd -P) && "
        f'find "$b" -type l -exec sh -c {q(_ESCAPE_CHECK)} sh "$b" {{}} +'
    )


def _link(target: str, dest: str, rel: str) -> str:
    path = f"{dest}/{q(rel)}"
    parent = posixpath.dirname(rel)
    mk = f"mkdir -p -- {dest}/{q(parent)} && " if parent else ""
    # Only a wrong entry is replaced: an existing right link stays as it is.
    return (
        f'{{ [ "$(readlink -- {path} 2>/dev/null)" = {q(target)} ] || '
        f"{{ {mk}rm -rf -- {path} && ln -s -- {q(target)} {path}; }}; }}"
    )


def install_script(
    *,
    root: str,
    version: str,
    sha256: str,
    upload: bool,
    config_size: int,
    config_files: Sequence[str],
    shared_dirs: Sequence[str],
    shared_files: Sequence[str],
    owner: str | None,
    group: str | None,
    check_cmd: str | None,
    switch: bool,
    prune: Sequence[str],
    records: Mapping[str, Mapping[str, Any]],
    strip_components: int = 0,
) -> str:
    """The whole install as one sh script, run under the deploy lock.

    Its stdin is the config tar (``config_size`` bytes), followed by the build tarball when
    ``upload``: no separate file transfer, and it works the same through sudo.
    With ``upload`` the build is unpacked into a temp dir next to the release and renamed
    to ``releases/<V>`` once complete, so a half-unpacked release never looks installed.
    Without it the release exists and only its config files are replaced (each renamed
    over the old one). Then the optional check, the atomic switch of ``current``, pruning
    and log records (``records`` keyed by ``install``/``config``/``activate``/``prune``/``bad``).
    ``strip_components`` leading components of each build member are dropped when it is
    unpacked (checked beforehand by :func:`cdlib.install.build.check_build` with the same
    number; the unpacked tree is checked again here).

    First it removes the temp dirs (a partial upload, a half-unpacked release) of a run
    that died mid-install without its cleanup trap (host killed, power lost): the script
    runs under the deploy lock, so no other run can be using them.
    """
    rel = f"{root}/releases/{version}"
    st = f"{root}/.cdlib"
    lines = [
        "set -eu",
        f"r={q(root)}; rel={q(rel)}; umask 022",
        f"mkdir -p -- {q(root + '/releases')} {q(root + '/shared')} {q(st + '/bad')}",
        # The mktemp names below (6 random characters); a pattern that matches nothing
        # stays as it is and rm -f ignores it. Leftovers it cannot remove (another user's)
        # do not stop the install.
        f"rm -rf -- {q(root + '/releases')}/.*.cdlib-?????? {q(st)}/.config.?????? || true",
        f'c=$(mktemp -d {q(st + "/.config.XXXXXX")}); tmp=""',
        'trap \'rm -rf -- "$c"; [ -z "$tmp" ] || rm -rf -- "$tmp"\' EXIT',
        # GNU head -c reads no further than asked, so the build stays on stdin.
        f'head -c {config_size} > "$c/.config.tar"',
        'tar -xf "$c/.config.tar" -C "$c" --no-same-owner && rm -f -- "$c/.config.tar"',
    ]
    if upload:
        lines += [
            'up="$c/.build.tar.gz"; cat > "$up"',
            "got=$(sha256sum -- \"$up\" | cut -d' ' -f1)",
            f'[ "$got" = {q(sha256)} ] || {{ echo "build checksum mismatch after upload: '
            f'$got != {sha256}" >&2; exit 1; }}',
            f"tmp=$(mktemp -d {q(root + '/releases/.' + version + '.cdlib-XXXXXX')})",
            'tar -xzf "$up" -C "$tmp" --no-same-owner'
            + (f" --strip-components={int(strip_components)}" if strip_components else ""),
            'rm -f -- "$up"',
            no_escaping_links('"$tmp"'),
        ]
        dest = '"$tmp"'
    else:
        # An installed release replaced by a link would take the config writes with it.
        lines.append(
            "if [ -L \"$rel\" ]; then printf 'refusing to write into %s: it is a symlink to %s\\n' "
            '"$rel" "$(readlink -- "$rel")" >&2; exit 1; fi'
        )
        dest = '"$rel"'
    # Every path written is checked before the first write: a refusal leaves nothing half-done.
    paths = [*config_files, *shared_dirs, *shared_files]
    lines += [no_symlink_on_way(dest, p) for p in paths if "/" in p]
    if upload:
        # A REVISION shipped in the build (even a symlink) is replaced, never written through.
        lines += [
            'rv=$(mktemp "$tmp/.REVISION.XXXXXX")',
            f"printf 'version=%s\\nbuild_sha256=%s\\n' {q(version)} {q(sha256)} > \"$rv\"",
            'chmod 644 "$rv" && mv -T -f -- "$rv" "$tmp/REVISION"',
        ]
    lines.append(shared_links(root, dest, shared_dirs, shared_files))
    for f in config_files:
        d = posixpath.dirname(f)
        mk = f"mkdir -p -- {dest}/{q(d)} && " if d else ""
        # -T: a symlink (or a link to a directory) at the path is replaced, not followed.
        lines.append(f'{mk}mv -T -f -- "$c"/{q(f)} {dest}/{q(f)}')
    if owner or group:
        spec = f"{owner or ''}:{group or ''}" if owner else f":{group}"
        lines.append(f"chown -R {q(spec)} -- {dest} {q(root + '/shared')}")
    if upload:
        lines += ['chmod 755 "$tmp"', 'mv -T -- "$tmp" "$rel"', 'tmp=""']
        lines.append(log_append(root, records["install"]))
    elif config_files:
        lines.append(log_append(root, records["config"]))
    if check_cmd:
        bad = f"{st}/bad/{version}"
        lines.append(
            f'if ! ( cd "$rel" && {check_cmd} ) > "$c/check.out" 2>&1; then '
            f": > {q(bad)}; {log_append(root, records['bad'])}; "
            f'tail -c 2000 "$c/check.out" >&2; exit {CHECK_FAILED_EXIT}; fi'
        )
    if switch:
        lines.append(atomic_symlink_command(root + "/current", rel))
        lines.append(log_append(root, records["activate"]))
    for v in prune:
        lines.append(f"rm -rf -- {q(root + '/releases/' + v)} && rm -f -- {q(st + '/bad/' + v)}")
    if prune:
        lines.append(log_append(root, records["prune"]))
    return "\n".join(lines)


def switch_script(
    root: str, version: str, records: Sequence[Mapping[str, Any]], mark_bad: str | None = None
) -> str:
    """Point ``current`` at ``releases/<version>`` atomically and append ``records``."""
    lines = ["set -eu"]
    if mark_bad:
        lines.append(
            f"mkdir -p -- {q(root + '/.cdlib/bad')} && : > {q(root + '/.cdlib/bad/' + mark_bad)}"
        )
    lines.append(atomic_symlink_command(root + "/current", f"{root}/releases/{version}"))
    lines += [log_append(root, r) for r in records]
    return "\n".join(lines)


def mark_script(root: str, version: str, bad: bool, record: Mapping[str, Any]) -> str:
    """Set or clear the bad mark of ``version`` and log it."""
    path = f"{root}/.cdlib/bad/{version}"
    change = (
        f"mkdir -p -- {q(root + '/.cdlib/bad')} && : > {q(path)}" if bad else f"rm -f -- {q(path)}"
    )
    return f"set -eu\n{change}\n{log_append(root, record)}"
