"""Pure parsers of the host-task facts, from canned command output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cdlib.facts.packages import PackagesFact, parse_packages
from cdlib.facts.pip import canonical_name, parse_dist_info, parse_freeze
from cdlib.facts.system import OsFact, ToolsFact, parse_os_release, parse_tools
from cdlib.facts.users import GroupFact, UserFact, parse_group, parse_user

DEBIAN = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
"""
ROCKY = """NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
"""
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'


def test_os_release_families() -> None:
    d = parse_os_release(DEBIAN)
    assert (d.id, d.version_id, d.family, d.package_manager) == ("debian", "12", "debian", "apt")
    r = parse_os_release(ROCKY)
    assert r.family == "redhat" and r.package_manager == "dnf"
    assert r.id_like == ("rhel", "centos", "fedora")
    assert parse_os_release(UBUNTU).family == "debian"
    alpine = parse_os_release("ID=alpine\nVERSION_ID=3.19\n")
    assert alpine.family == "unknown" and alpine.package_manager is None


def test_os_fact_on_this_machine() -> None:
    f = OsFact()
    out = subprocess.run(["sh", "-c", f.command()], capture_output=True, text=True)
    info = f.parse(out.stdout, out.returncode)
    assert info.id and info.family == parse_os_release(Path("/etc/os-release").read_text()).family


def test_tools() -> None:
    assert parse_tools("unzip=/usr/bin/unzip\npython3=\ntar=/bin/tar\n") == {
        "unzip": "/usr/bin/unzip",
        "tar": "/bin/tar",
    }
    f = ToolsFact("sh", "no-such-tool-xyz")
    out = subprocess.run(["sh", "-c", f.command()], capture_output=True, text=True)
    found = f.parse(out.stdout, 0)
    assert "sh" in found and "no-such-tool-xyz" not in found


def test_user_parse() -> None:
    out = (
        "passwd=web:x:1001:1002:Web:/home/web:/bin/bash\n"
        "group=webgrp:x:1002:\ngroups=webgrp adm sudo\n"
    )
    u = parse_user("web", out, 0)
    assert u.exists and u.uid == 1001 and u.gid == 1002 and u.group == "webgrp"
    assert u.groups == ("adm", "sudo")
    assert (u.home, u.shell) == ("/home/web", "/bin/bash")
    assert not parse_user("web", "", 2).exists


def test_user_and_group_facts_on_this_machine() -> None:
    f = UserFact("root")
    out = subprocess.run(["sh", "-c", f.command()], capture_output=True, text=True)
    u = f.parse(out.stdout, out.returncode)
    assert u.exists and u.uid == 0 and u.group == "root" and u.home == "/root"
    g = GroupFact("root")
    out = subprocess.run(["sh", "-c", g.command()], capture_output=True, text=True)
    assert g.parse(out.stdout, out.returncode).gid == 0
    g = GroupFact("cdlt-no-such-group")
    out = subprocess.run(["sh", "-c", g.command()], capture_output=True, text=True)
    assert not g.parse(out.stdout, out.returncode).exists


def test_group_parse() -> None:
    g = parse_group("dev", "dev:x:1500:alice,bob\n", 0)
    assert g.exists and g.gid == 1500 and g.members == ("alice", "bob")
    assert parse_group("dev", "dev:x:1500:\n", 0).members == ()
    assert not parse_group("dev", "", 2).exists


S = "@@cdlib-pkg "


def test_packages_apt() -> None:
    out = (
        f"{S}os\n{DEBIAN}{S}apt\n"
        "curl\tii \t7.88.1-10+deb12u5\n"
        "sl\trc \t5.02-1+b1\n"
        f"{S}candidates\n"
        "curl:\n  Installed: 7.88.1-10+deb12u5\n  Candidate: 7.88.1-10+deb12u7\n"
        "  Version table:\n     7.88.1-10+deb12u7 500\n"
        "sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n"
        "nosuch:\n  Installed: (none)\n  Candidate: (none)\n"
    )
    st = parse_packages(out)
    assert st.manager == "apt"
    assert st.installed == {"curl": "7.88.1-10+deb12u5"}  # rc: removed, config left
    assert st.candidates == {"curl": "7.88.1-10+deb12u7", "sl": "5.02-1+b1"}


def test_packages_dnf() -> None:
    out = (
        f"{S}os\n{ROCKY}{S}dnf\n"
        "bash\t5.1.8-6.el9_1\n"
        "package nginx is not installed\n"
        "curl\t7.76.1-26.el9\n"
        f"{S}updates\n"
        "\n"
        "bash.x86_64                      5.1.8-9.el9                      baseos\n"
        "Obsoleting Packages\n"
        "foo.x86_64                       2-1                              appstream\n"
    )
    st = parse_packages(out)
    assert st.manager == "dnf"
    assert st.installed == {"bash": "5.1.8-6.el9_1", "curl": "7.76.1-26.el9"}
    assert st.candidates == {"bash": "5.1.8-9.el9", "curl": "7.76.1-26.el9"}


def test_packages_unknown_os_and_fact_on_this_machine() -> None:
    assert parse_packages(f"{S}os\nID=alpine\n").manager is None
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian-like machine (no dpkg-query)")
    f = PackagesFact(("dpkg", "cdlt-no-such-package"))
    out = subprocess.run(["sh", "-c", f.command()], capture_output=True, text=True)
    st = f.parse(out.stdout, out.returncode)
    assert st.manager == "apt" and "dpkg" in st.installed
    assert "cdlt-no-such-package" not in st.installed


def test_freeze() -> None:
    out = (
        "# comment\nFlask==3.0.3\nzope.interface==6.4\n"
        "tiny_pkg @ file:///tmp/tiny_pkg-1.0-py3-none-any.whl\n-e git+https://x/y#egg=z\n"
    )
    assert parse_freeze(out) == {"flask": "3.0.3", "zope-interface": "6.4", "tiny-pkg": ""}
    assert canonical_name("Foo__Bar.baz") == "foo-bar-baz"


def test_dist_info_names() -> None:
    out = (
        "cdlt_tiny-1.0.dist-info\npip-23.0.1.dist-info\nzope.interface-6.4.dist-info\n"
        "legacy_thing-0.3-py3.11.egg-info\nREADME\n"
    )
    assert parse_dist_info(out) == {
        "cdlt-tiny": "1.0",
        "pip": "23.0.1",
        "zope-interface": "6.4",
        "legacy-thing": "0.3",
    }
