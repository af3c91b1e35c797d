"""The benchmark deployment for pyinfra 3 (same steps as deploy_cdlib.py).

Variables come from the inventory bench/run writes (``host.data``).
"""

from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

d = host.data
root = d.app_root
release = f"{root}/releases/{d.version}"
tarball = f"{root}/shared/app-{d.version}.tar.gz"

files.directory(name="Ensure releases", path=f"{root}/releases", mode="755")
files.directory(name="Ensure shared", path=f"{root}/shared", mode="755")
files.put(name="Upload the build", src=d.tarball, dest=tarball, mode="644")
server.shell(
    name="Unpack the release",
    commands=[
        f'd={release}; test -d "$d" || {{ t=$d.unpack; rm -rf "$t" && mkdir "$t" && '
        f'tar -xzf {tarball} -C "$t" && mv -T "$t" "$d"; }}'
    ],
)
files.template(
    name="Render the config",
    src=d.template,
    dest=f"{root}/shared/app.conf",
    mode="644",
    host_name=d.host_name,
    version=d.version,
    app_port=d.app_port,
    app_color=d.app_color,
    app_workers=d.app_workers,
    app_root=root,
    app_peers=d.app_peers,
)
files.link(name="Point current at the release", path=f"{root}/current", target=release)
files.put(
    name="Write the version file",
    src=StringIO(f"{d.version}\n"),
    dest=f"{root}/shared/VERSION",
    mode="644",
)
server.shell(
    name="Check the release",
    commands=[
        f'test "$({root}/current/bin/check)" = {d.version} && '
        f"grep -qx 'version = {d.version}' {root}/shared/app.conf"
    ],
)
