"""AWS plumbing shared by the ELBv2 router and AWS provisioning: lazy boto3, retries, ARNs.

boto3 is imported only here and only when a client is built, so using cdlib
without AWS never pays for importing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from cdlib.traffic.base import RouterInputError, TrafficError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

T = TypeVar("T")

#: Error codes AWS uses when it asks the caller to slow down.
_THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
    }
)

_ARN_RE = {
    kind: re.compile(
        rf"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{{12}}:{kind}/[A-Za-z0-9/._-]+$"
    )
    for kind in ("targetgroup", "listener", "listener-rule", "loadbalancer")
}


class AwsError(TrafficError):
    """An AWS call failed for a reason other than throttling."""


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for other exceptions)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_throttle(exc: BaseException) -> bool:
    """True when ``exc`` is AWS asking us to slow down."""
    return error_code(exc) in _THROTTLE_CODES


def call(fn: Callable[..., T], /, *, attempts: int = 8, **kwargs: Any) -> T:
    """Call a boto3 method, backing off exponentially (with jitter) while throttled."""
    retrying = Retrying(
        retry=retry_if_exception(is_throttle),
        wait=wait_exponential(multiplier=0.2, max=10.0) + wait_random(0, 0.2),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )
    return retrying(fn, **kwargs)


def until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Re-run ``check`` with backoff until it is True (AWS reads are eventually consistent)."""
    retrying = Retrying(
        retry=lambda state: state.outcome is not None and state.outcome.result() is False,
        wait=wait_exponential(multiplier=0.1, max=2.0) + wait_random(0, 0.1),
        stop=stop_after_delay(timeout),
        retry_error_callback=lambda _state: False,
    )
    if not retrying(check):
        from cdlib.traffic.base import ReadBackError

        raise ReadBackError(f"{what}: not visible after {timeout}s of reading back")


def check_arn(kind: str, arn: str, where: str) -> str:
    """Validate an ELBv2 ARN of ``kind``; moto accepts anything, AWS would not."""
    if not isinstance(arn, str) or not _ARN_RE[kind].match(arn):
        raise RouterInputError(f"{where}: {arn!r} is not an ELBv2 {kind} ARN")
    return arn


def elbv2_client(
    *, region: str | None = None, endpoint_url: str | None = None, **session_kwargs: Any
) -> ElasticLoadBalancingv2Client:
    """Build an ELBv2 client (boto3 imported here, lazily)."""
    import boto3

    session = boto3.session.Session(region_name=region, **session_kwargs)
    return session.client("elbv2", endpoint_url=endpoint_url)


def cloudwatch_client(
    *, region: str | None = None, endpoint_url: str | None = None, **session_kwargs: Any
) -> CloudWatchClient:
    """Build a CloudWatch client (boto3 imported here, lazily)."""
    import boto3

    session = boto3.session.Session(region_name=region, **session_kwargs)
    return session.client("cloudwatch", endpoint_url=endpoint_url)


#: Tag on every AWS resource cdlib creates (load balancers, target groups, compute).
MANAGED_TAG = "cdlib:managed"


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``tags`` as AWS's ``[{"Key": ..., "Value": ...}]``, sorted by key."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


__all__ = [
    "MANAGED_TAG",
    "AwsError",
    "call",
    "check_arn",
    "cloudwatch_client",
    "elbv2_client",
    "error_code",
    "is_throttle",
    "tag_list",
    "until",
]
