"""The many-small-steps benchmark deployment for pyinfra 3 (same steps as
deploy_steps_cdlib.py). Variables come from the inventory bench/run writes."""

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

d = host.data
steps = f"{d.app_root}/steps"
components = [f"c{k:02d}" for k in range(1, 11)]
template = str(Path(d.template).with_name("step.conf.j2"))

for c in components:
    files.directory(name=f"Ensure {c}", path=f"{steps}/{c}", mode="755")
for i, c in enumerate(components):
    files.template(
        name=f"Render {c}.conf",
        src=template,
        dest=f"{steps}/{c}/{c}.conf",
        mode="644",
        component=c,
        index=i,
        host_name=d.host_name,
        version=d.version,
        app_port=d.app_port,
        app_color=d.app_color,
    )
for c in components[:6]:
    files.line(name=f"Edit {c}/env", path=f"{steps}/{c}/env", line=f"APP_VERSION={d.version}")
files.put(
    name="Write the version file",
    src=StringIO(f"{d.version}\n"),
    dest=f"{steps}/VERSION",
    mode="644",
)
files.link(name="Point current at c01", path=f"{steps}/current", target=f"{steps}/c01")
server.shell(
    name="Check the steps",
    commands=[f"grep -qx 'version = {d.version}' {steps}/current/c01.conf"],
)
