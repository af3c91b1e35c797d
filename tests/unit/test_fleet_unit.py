"""Fleet pieces that need no root: subnet derivation and argument checks."""

from __future__ import annotations

import pytest

from tests.conftest import fleet_subnet
from tests.fleet import Fleet, FleetError


def test_subnet_without_xdist() -> None:
    assert fleet_subnet("", "") == "127.0.0"
    assert fleet_subnet("", "127.0.4") == "127.0.4"


def test_subnet_per_xdist_worker() -> None:
    assert fleet_subnet("gw0", "") == "127.0.10"
    assert fleet_subnet("gw1", "") == "127.0.11"
    assert fleet_subnet("gw1", "127.0.3") == "127.0.131"


@pytest.mark.parametrize("subnet", ["10.0.0", "127.0", "127.0.300", "127.a.1"])
def test_non_loopback_or_malformed_subnet_is_refused(subnet: str) -> None:
    with pytest.raises(FleetError, match=r"127\.X\.Y"):
        Fleet(1, subnet=subnet, start=False)


@pytest.mark.parametrize("n", [0, 246])
def test_size_bounds(n: int) -> None:
    with pytest.raises(FleetError, match=r"1\.\.245"):
        Fleet(n, start=False)
