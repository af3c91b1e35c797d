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


@pytest.mark.parametrize("n", [0, 981])
def test_size_bounds(n: int) -> None:
    with pytest.raises(FleetError, match=r"1\.\.980"):
        Fleet(n, start=False)


def test_a_fleet_past_245_hosts_goes_on_in_the_next_subnet() -> None:
    f = Fleet(300, subnet="127.0.8", start=False)
    assert [h.address for h in f.hosts[:1] + f.hosts[244:246] + f.hosts[-1:]] == [
        "127.0.8.11",
        "127.0.8.255",
        "127.0.9.11",
        "127.0.9.65",
    ]
    assert len({h.address for h in f.hosts}) == 300
    with pytest.raises(FleetError, match="do not fit"):
        Fleet(246, subnet="127.0.255", start=False)
