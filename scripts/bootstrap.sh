#!/usr/bin/env bash
# Sourced by scripts/test and scripts/demo: installs missing Debian packages (as root) and
# creates/updates .venv with cdlib and its test extras. Idempotent and quick when done.
APT_PACKAGES=(openssh-server openssh-client haproxy nginx-light curl supervisor systemd python3-venv sudo chromium chromium-driver)

log() { printf '==> %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing apt packages (need root to install): ${missing[*]}" >&2
        exit 1
    fi
    log "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # No package may start a system-wide service here (nginx's postinst would start the
    # default site on port 80): the tests run their own daemons on loopback only.
    policy=/usr/sbin/policy-rc.d own_policy=
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    [[ -n $own_policy ]] && rm -f "$policy"
    # Should a system nginx have started all the same, stop it (graceful quit).
    if [[ -f /run/nginx.pid ]] && command -v nginx >/dev/null; then nginx -s quit || true; fi
fi

# A Python >= 3.11 for the venv: the first suitable one on PATH.
pick_python() {
    local cand
    for cand in python3 python3.13 python3.12 python3.11; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$(pick_python) || { log "no python3 >= 3.11 found" >&2; exit 1; }
    log "creating .venv with $py"
    rm -rf .venv
    "$py" -m venv .venv
fi

# Reinstall only when the dependency list changed (pip takes a while even when satisfied).
stamp=.venv/.cdlib-deps
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]] || ! .venv/bin/python -c 'import cdlib' 2>/dev/null; then
    log "pip install -e '.[test]'"
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" >"$stamp"
fi

