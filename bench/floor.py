"""The floor: one plain ``ssh`` per host, all hosts at once, each running one shell script.

``python3 bench/floor.py SPEC.json`` where the spec (written by bench/run.py) names the
deployment, the tarball, the shared variables and, per host, its ``ssh`` argv and variables.
The script does the deployment's steps in sh (same checks, same files); for the ``app``
deployment the tarball goes on the ssh's stdin and is only stored when its sha256 differs.
Standard library only, so start-up costs what a plain Python costs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from typing import Any


def render_config(v: dict[str, Any]) -> str:
    """Same text as templates/app.conf.j2 (checked by bench/run.py on every host)."""
    lines = [
        "# Managed by the deployment benchmark; per-host values come from the inventory.",
        "[app]",
        f"host = {v['host_name']}",
        f"version = {v['version']}",
        f"listen = 127.0.0.1:{v['app_port']}",
        f"color = {v['app_color']}",
        f"workers = {v['app_workers']}",
        "",
        "[paths]",
        f"release = {v['app_root']}/releases/{v['version']}",
        f"shared = {v['app_root']}/shared",
    ]
    lines += [f"peer = {p}" for p in v["app_peers"]]
    return "\n".join(lines) + "\n"


def host_script(v: dict[str, Any], sha: str) -> str:
    """The deployment as one POSIX sh script for one host."""
    r, ver = shlex.quote(v["app_root"]), shlex.quote(v["version"])
    conf = render_config(v)
    return f"""set -e
R={r}; V={ver}; T="$R/shared/app-$V.tar.gz"; D="$R/releases/$V"
mkdir -p -m 755 "$R/releases" "$R/shared"
if [ "$(sha256sum "$T" 2>/dev/null | cut -d' ' -f1)" != {sha} ]; then
  cat > "$T.tmp" && chmod 644 "$T.tmp" && mv -f "$T.tmp" "$T"
fi
exec 0</dev/null
if [ ! -d "$D" ]; then
  rm -rf "$D.unpack" && mkdir "$D.unpack" && tar -xzf "$T" -C "$D.unpack" && mv -T "$D.unpack" "$D"
fi
cat > "$R/shared/.app.conf.tmp" <<'CDLIB_BENCH_EOF'
{conf}CDLIB_BENCH_EOF
if cmp -s "$R/shared/.app.conf.tmp" "$R/shared/app.conf"; then rm -f "$R/shared/.app.conf.tmp"
else chmod 644 "$R/shared/.app.conf.tmp" && mv -f "$R/shared/.app.conf.tmp" "$R/shared/app.conf"; fi
if [ "$(readlink "$R/current")" != "$D" ]; then
  ln -sfn "$D" "$R/.current.tmp" && mv -T -f "$R/.current.tmp" "$R/current"
fi
if [ "$(cat "$R/shared/VERSION" 2>/dev/null)" != "$V" ]; then
  printf '%s\\n' "$V" > "$R/shared/.VERSION.tmp"
  mv -f "$R/shared/.VERSION.tmp" "$R/shared/VERSION"
fi
test "$("$R/current/bin/check")" = "$V"
grep -qx "version = $V" "$R/shared/app.conf"
"""


#: The many-small-steps deployment's components (as in deploy_steps_cdlib.py).
COMPONENTS = [f"c{k:02d}" for k in range(1, 11)]


def render_step(v: dict[str, Any], component: str, index: int) -> str:
    """Same text as templates/step.conf.j2."""
    return (
        "# Managed by the many-small-steps benchmark.\n"
        "[component]\n"
        f"name = {component}\n"
        f"host = {v['host_name']}\n"
        f"version = {v['version']}\n"
        f"port = {v['app_port'] + index}\n"
        f"color = {v['app_color']}\n"
    )


def steps_script(v: dict[str, Any]) -> str:
    """The many-small-steps deployment as one POSIX sh script for one host."""
    s = shlex.quote(v["app_root"] + "/steps")
    ver = shlex.quote(v["version"])
    out = [f"set -e\nS={s}; V={ver}"]
    out.append("mkdir -p -m 755 " + " ".join(f'"$S/{c}"' for c in COMPONENTS))
    for i, c in enumerate(COMPONENTS):
        tmp, dest = f'"$S/{c}/.{c}.conf.tmp"', f'"$S/{c}/{c}.conf"'
        out.append(
            f"cat > {tmp} <<'CDLIB_BENCH_EOF'\n{render_step(v, c, i)}CDLIB_BENCH_EOF\n"
            f"if cmp -s {tmp} {dest}; then rm -f {tmp}\n"
            f"else chmod 644 {tmp} && mv -f {tmp} {dest}; fi"
        )
    for c in COMPONENTS[:6]:
        tmp, dest = f'"$S/{c}/.env.tmp"', f'"$S/{c}/env"'
        out.append(
            f'grep -qx "APP_VERSION=$V" {dest} 2>/dev/null || '
            f'{{ printf "APP_VERSION=%s\\n" "$V" > {tmp} && mv -f {tmp} {dest}; }}'
        )
    out.append(
        'if [ "$(cat "$S/VERSION" 2>/dev/null)" != "$V" ]; then\n'
        '  printf \'%s\\n\' "$V" > "$S/.VERSION.tmp" && mv -f "$S/.VERSION.tmp" "$S/VERSION"\nfi'
    )
    out.append(
        'if [ "$(readlink "$S/current")" != "$S/c01" ]; then\n'
        '  ln -sfn "$S/c01" "$S/.current.tmp" && mv -T -f "$S/.current.tmp" "$S/current"\nfi'
    )
    out.append('grep -qx "version = $V" "$S/current/c01.conf"')
    return "\n".join(out) + "\n"


def main(spec_path: str) -> int:
    """Run the deployment on every host of the spec at once; non-zero when any host failed."""
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    with open(spec["tarball"], "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    procs = []
    for h in spec["hosts"]:
        v = {**spec["vars"], **h["vars"]}
        stdin = open(spec["tarball"], "rb")  # noqa: SIM115 -- one per ssh, closed below
        steps = spec.get("deployment") == "steps"
        if steps:
            stdin.close()
            stdin = open(os.devnull, "rb")  # noqa: SIM115 -- closed below
        p = subprocess.Popen(
            [*h["ssh"], steps_script(v) if steps else host_script(v, sha)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        procs.append((h["name"], p, stdin))
    failed = 0
    for name, p, stdin in procs:
        _, err = p.communicate(timeout=300)
        stdin.close()
        if p.returncode != 0:
            failed += 1
            print(f"{name}: exit {p.returncode}: {err.decode(errors='replace').strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
