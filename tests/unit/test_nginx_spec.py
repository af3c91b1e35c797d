"""What an nginx router spec refuses to keep: it is stored in every release's history."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdlib.traffic.nginx import NginxSpec


def test_nginx_spec_keeps_secrets_out_of_the_history(tmp_path: Path) -> None:
    from cdlib.secret import Secret
    from cdlib.traffic import RouterInputError

    for bad in (
        {"ansible_password": "x"},
        {"cdlib_api_token": "x"},
        {"ansible_ssh_private_key": "x"},
        {"ansible_user": Secret("root")},
    ):
        with pytest.raises(RouterInputError, match="cannot be stored in the release history"):
            NginxSpec(workdir=str(tmp_path), host_vars={"ansible_connection": "ssh", **bad})
    assert NginxSpec(workdir=str(tmp_path), host_vars={"ansible_host": "lb1"}).host_vars
