"""The AWS ELBv2 router: target groups behind one listener (or one listener rule).

A switch or a weight change is one ``ModifyListener`` (or ``ModifyRule``) call
that rewrites the forward action; other actions (authentication ...) are kept.
Every change is read back until the read shows it, because the ELBv2 API is
eventually consistent; throttling is retried with exponential backoff.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cdlib.traffic.aws_api import (
    call,
    check_arn,
    cloudwatch_client,
    elbv2_client,
    error_code,
    until,
)
from cdlib.traffic.base import (
    DEFAULT_PREVIEW_HEADER,
    HealthReport,
    PreviewRoute,
    Router,
    RouterInputError,
    RouterMetrics,
    RouterState,
    StickySpec,
    Target,
    TargetGroupMetrics,
    TargetHealth,
    TrafficError,
    check_group_name,
    check_http_name,
    check_weights,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_elbv2.type_defs import TargetDescriptionTypeDef

#: Weight a group gets from :meth:`ElbV2Router.switch`.
FULL_WEIGHT = 100
#: Tag keys written by :meth:`ElbV2Router.tag_release`.
RELEASE_TAG = "cdlib:release"
RELEASED_AT_TAG = "cdlib:released-at"


class ElbV2Router(Router):
    """A :class:`Router` over an ELBv2 listener's (or rule's) forward action.

    ``target_groups`` maps group names to target group ARNs. With ``rule_arn``
    the router drives that listener rule instead of the listener's default
    action. ``cloudwatch`` (optional) enables :meth:`metrics`.
    """

    max_weight = 999

    def __init__(
        self,
        client: ElasticLoadBalancingv2Client,
        *,
        target_groups: Mapping[str, str],
        listener_arn: str,
        rule_arn: str | None = None,
        cloudwatch: CloudWatchClient | None = None,
        read_back_timeout: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not target_groups:
            raise RouterInputError("ELBv2 router: target_groups is empty")
        self._tgs: dict[str, str] = {}
        for group, arn in target_groups.items():
            check_group_name(group)
            self._tgs[group] = check_arn("targetgroup", arn, f"target group {group}")
        if len(set(self._tgs.values())) != len(self._tgs):
            raise RouterInputError("ELBv2 router: two groups share one target group ARN")
        if len(self._tgs) > 5:
            raise RouterInputError("ELBv2 router: a forward action takes at most 5 target groups")
        self._by_arn = {arn: g for g, arn in self._tgs.items()}
        self.client = client
        self.listener_arn = check_arn("listener", listener_arn, "listener_arn")
        self.rule_arn = check_arn("listener-rule", rule_arn, "rule_arn") if rule_arn else None
        self.cloudwatch = cloudwatch
        self.read_back_timeout = read_back_timeout
        self._clock = clock

    @property
    def groups(self) -> tuple[str, ...]:
        """The groups this router manages."""
        return tuple(self._tgs)

    def _known(self, group: str) -> str:
        if group not in self._tgs:
            raise RouterInputError(
                f"unknown group {group!r} (this router has: {', '.join(self._tgs)})"
            )
        return self._tgs[group]

    # -- the forward action ------------------------------------------------------
    def _actions(self) -> list[dict[str, Any]]:
        if self.rule_arn:
            rules = call(self.client.describe_rules, RuleArns=[self.rule_arn])["Rules"]
            if not rules:
                raise TrafficError(f"rule {self.rule_arn} not found")
            return [dict(a) for a in rules[0].get("Actions", [])]
        listeners = call(self.client.describe_listeners, ListenerArns=[self.listener_arn])
        if not listeners["Listeners"]:
            raise TrafficError(f"listener {self.listener_arn} not found")
        return [dict(a) for a in listeners["Listeners"][0].get("DefaultActions", [])]

    def _read(self) -> RouterState:
        actions = self._actions()
        forward = [a for a in actions if a.get("Type") == "forward"]
        where = self.rule_arn or self.listener_arn
        if not forward:
            raise TrafficError(f"{where}: has no forward action to drive")
        action = forward[0]
        weights = dict.fromkeys(self._tgs, 0)
        sticky = False
        config = action.get("ForwardConfig")
        if config and config.get("TargetGroups"):
            pairs = [(t["TargetGroupArn"], int(t.get("Weight", 1))) for t in config["TargetGroups"]]
            sticky = bool(config.get("TargetGroupStickinessConfig", {}).get("Enabled", False))
        else:
            # A plain forward to one target group: all of the traffic.
            pairs = [(str(action["TargetGroupArn"]), FULL_WEIGHT)]
        for arn, weight in pairs:
            if arn not in self._by_arn:
                raise TrafficError(f"{where}: forwards to {arn}, which this router does not manage")
            weights[self._by_arn[arn]] = weight
        return RouterState.from_weights(weights, sticky=sticky)

    def state(self) -> RouterState:
        """Read the forward action back: weights per group, live group, stickiness."""
        return self._read()

    def _write(self, weights: Mapping[str, int], sticky: bool, sticky_seconds: int) -> None:
        actions = self._actions()
        index = next((i for i, a in enumerate(actions) if a.get("Type") == "forward"), None)
        if index is None:
            raise TrafficError(f"{self.rule_arn or self.listener_arn}: has no forward action")
        forward: dict[str, Any] = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": self._tgs[g], "Weight": w} for g, w in weights.items()
                ],
                "TargetGroupStickinessConfig": (
                    {"Enabled": True, "DurationSeconds": sticky_seconds}
                    if sticky
                    else {"Enabled": False}
                ),
            },
        }
        if "Order" in actions[index]:
            forward["Order"] = actions[index]["Order"]
        new_actions = [*actions[:index], forward, *actions[index + 1 :]]
        for action in new_actions:
            oidc = action.get("AuthenticateOidcConfig")
            if oidc is not None and "ClientSecret" not in oidc:
                # AWS never returns the secret; keep the stored one.
                action["AuthenticateOidcConfig"] = {**oidc, "UseExistingClientSecret": True}
        # The read side returns both TargetGroupArn and ForwardConfig; write one form.
        if self.rule_arn:
            call(self.client.modify_rule, RuleArn=self.rule_arn, Actions=new_actions)
        else:
            call(
                self.client.modify_listener,
                ListenerArn=self.listener_arn,
                DefaultActions=new_actions,
            )

    def switch(self, to_group: str) -> RouterState:
        """All traffic to ``to_group`` in one call (stickiness off, so nobody stays behind)."""
        self._known(to_group)
        return self.set_weights({to_group: FULL_WEIGHT})

    def set_weights(
        self, weights: Mapping[str, int], *, sticky: bool = False, sticky_seconds: int = 3600
    ) -> RouterState:
        """Weighted forward (weights 0..999) in one call, then read back until it shows."""
        wanted = check_weights(weights, self._tgs, maximum=self.max_weight)
        if sticky and not 1 <= sticky_seconds <= 604800:
            raise RouterInputError(f"sticky_seconds {sticky_seconds} is not in 1..604800")
        ordered = {g: wanted[g] for g in self._tgs}
        current = self._read()
        if dict(current.weights) == ordered and current.sticky == sticky:
            return current
        self._write(ordered, sticky, sticky_seconds)
        until(
            lambda: (s := self._read()).weights == ordered and s.sticky == sticky,
            timeout=self.read_back_timeout,
            what=f"{self.rule_arn or self.listener_arn}: weights {ordered}",
        )
        return self._read()

    # -- sticky splits and preview rules ----------------------------------------------
    def sticky_problem(self, sticky: StickySpec) -> str | None:
        """None: target-group stickiness holds any sticky canary (its own cookie)."""
        return None

    def set_sticky_weights(self, weights: Mapping[str, int], sticky: StickySpec) -> RouterState:
        """Weighted forward with target-group stickiness for ``sticky.seconds``.

        The load balancer keeps a client on the target group it first got with its own
        cookie (``AWSALBTG``); ``sticky.cookie``/``header`` are not used here. A
        :meth:`switch` turns stickiness off, so every client goes to the one group.
        """
        return self.set_weights(weights, sticky=True, sticky_seconds=sticky.seconds)

    def _preview_rules(self) -> list[tuple[str, str, str]]:
        """(rule ARN, group, header) of the listener's preview rules: one ``http-header``
        condition whose value is the group's name, forwarding to that group only."""
        rules = call(self.client.describe_rules, ListenerArn=self.listener_arn)["Rules"]
        out = []
        for rule in rules:
            conds = rule.get("Conditions", [])
            if rule.get("IsDefault") or len(conds) != 1 or conds[0].get("Field") != "http-header":
                continue
            config = conds[0].get("HttpHeaderConfig", {})
            values = list(config.get("Values", []))
            arns = {
                str(t["TargetGroupArn"])
                for a in rule.get("Actions", [])
                if a.get("Type") == "forward"
                for t in a.get("ForwardConfig", {}).get("TargetGroups", [])
                or [{"TargetGroupArn": a.get("TargetGroupArn", "")}]
            }
            if len(values) != 1 or len(arns) != 1:
                continue
            group = self._by_arn.get(arns.pop())
            if group is not None and values[0] == group:
                out.append((str(rule["RuleArn"]), group, str(config.get("HttpHeaderName", ""))))
        return out

    def open_preview(self, group: str, *, header: str = DEFAULT_PREVIEW_HEADER) -> PreviewRoute:
        """A listener rule at the lowest free priority (the first one ELBv2 evaluates among
        free numbers) forwarding requests with ``header: <group>`` to ``group``.

        An earlier preview rule of this router is replaced; read back before returning.
        """
        arn = self._known(group)
        check_http_name("preview header", header)
        self.close_preview()
        rules = call(self.client.describe_rules, ListenerArn=self.listener_arn)["Rules"]
        used = {int(r["Priority"]) for r in rules if str(r.get("Priority", "")).isdigit()}
        priority = next(p for p in range(1, 50001) if p not in used)
        call(
            self.client.create_rule,
            ListenerArn=self.listener_arn,
            Priority=priority,
            Conditions=[
                {
                    "Field": "http-header",
                    "HttpHeaderConfig": {"HttpHeaderName": header, "Values": [group]},
                }
            ],
            Actions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": arn, "Weight": 1}]},
                }
            ],
        )
        want = PreviewRoute(group, header)
        until(
            lambda: self.preview_route() == want,
            timeout=self.read_back_timeout,
            what=f"{self.listener_arn}: preview rule {header}: {group}",
        )
        return want

    def close_preview(self) -> bool:
        """Delete this router's preview rules; True when there was one. Read back."""
        found = self._preview_rules()
        for rule_arn, _group, _header in found:
            try:
                call(self.client.delete_rule, RuleArn=rule_arn)
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        if found:
            until(
                lambda: not self._preview_rules(),
                timeout=self.read_back_timeout,
                what=f"{self.listener_arn}: preview rule removed",
            )
        return bool(found)

    def preview_route(self) -> PreviewRoute | None:
        """The preview rule on the listener now, or ``None``."""
        found = self._preview_rules()
        return PreviewRoute(found[0][1], found[0][2]) if found else None

    # -- targets -------------------------------------------------------------------
    def _describe_health(self, group: str) -> list[dict[str, Any]]:
        arn = self._known(group)
        out = call(self.client.describe_target_health, TargetGroupArn=arn)
        return [dict(d) for d in out["TargetHealthDescriptions"]]

    def targets(self, group: str) -> tuple[Target, ...]:
        """Targets registered in ``group`` (draining ones included)."""
        return tuple(sorted(_target(d) for d in self._describe_health(group)))

    def register(self, group: str, targets: Iterable[Target]) -> None:
        """Register the targets that are missing; read back until all are listed."""
        arn = self._known(group)
        wanted = set(targets)
        missing = sorted(wanted - set(self.targets(group)))
        if not missing:
            return
        call(
            self.client.register_targets,
            TargetGroupArn=arn,
            Targets=[{"Id": t.host, "Port": t.port} for t in missing],
        )
        until(
            lambda: wanted <= set(self.targets(group)),
            timeout=self.read_back_timeout,
            what=f"{group}: register {', '.join(map(str, missing))}",
        )

    def deregister(self, group: str, targets: Iterable[Target], *, timeout: float = 300.0) -> None:
        """Deregister (ELBv2 drains them for the deregistration delay) and wait until gone.

        Targets that are not registered are skipped, not an error.
        """
        self.drain(group, targets, timeout=timeout)

    def drain(self, group: str, targets: Iterable[Target], *, timeout: float = 300.0) -> None:
        """ELBv2 drains by deregistering: new requests stop, open ones finish; bounded wait."""
        arn = self._known(group)
        present = sorted(set(self.targets(group)) & set(targets))
        if not present:
            return
        spec: list[TargetDescriptionTypeDef] = [{"Id": t.host, "Port": t.port} for t in present]
        call(self.client.deregister_targets, TargetGroupArn=arn, Targets=spec)
        waiter = self.client.get_waiter("target_deregistered")
        delay = 2 if timeout >= 10 else 1
        try:
            waiter.wait(
                TargetGroupArn=arn,
                Targets=spec,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))},
            )
        except Exception as exc:
            if type(exc).__name__ != "WaiterError":
                raise
            from cdlib.traffic.base import DrainTimeoutError

            raise DrainTimeoutError(
                f"{group}: targets {', '.join(map(str, present))} still draining after {timeout}s"
            ) from exc

    def health(self, group: str) -> HealthReport:
        """One reading of the health of ``group``'s targets, with AWS's reasons."""
        report = []
        for d in self._describe_health(group):
            th = d.get("TargetHealth", {})
            state = str(th.get("State", "unknown"))
            reason = " ".join(x for x in (th.get("Reason", ""), th.get("Description", "")) if x)
            report.append(TargetHealth(_target(d), state == "healthy", state, reason))
        return HealthReport(group, tuple(sorted(report, key=lambda h: h.target)))

    def wait_healthy(
        self, group: str, *, timeout: float = 300.0, interval: float = 5.0
    ) -> HealthReport:
        """Wait with the ``target_in_service`` waiter, bounded by ``timeout``.

        Returns the final report; on timeout ``timed_out`` is set and
        ``describe()`` lists each unhealthy target with AWS's reason.
        """
        arn = self._known(group)
        first = self.health(group)
        if first.healthy or not first.targets:
            return first
        delay = max(1, round(interval))
        waiter = self.client.get_waiter("target_in_service")
        try:
            waiter.wait(
                TargetGroupArn=arn,
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))},
            )
        except Exception as exc:
            if type(exc).__name__ != "WaiterError":
                raise
            last = self.health(group)
            return HealthReport(group, last.targets, timed_out=True)
        return self.health(group)

    # -- release tags ----------------------------------------------------------------
    def tag_release(self, group: str, version: str) -> None:
        """Tag the group's target group with the release and the time it went there."""
        arn = self._known(group)
        if not version or len(version) > 256:
            raise RouterInputError(f"release version {version!r} is empty or over 256 chars")
        when = self._clock().isoformat(timespec="seconds")
        call(
            self.client.add_tags,
            ResourceArns=[arn],
            Tags=[{"Key": RELEASE_TAG, "Value": version}, {"Key": RELEASED_AT_TAG, "Value": when}],
        )
        until(
            lambda: self.tagged_release(group) == version,
            timeout=self.read_back_timeout,
            what=f"{group}: tag {RELEASE_TAG}={version}",
        )

    def tagged_release(self, group: str) -> str | None:
        """The release tag on the group's target group."""
        arn = self._known(group)
        descs = call(self.client.describe_tags, ResourceArns=[arn])["TagDescriptions"]
        for desc in descs:
            for tag in desc.get("Tags", []):
                if tag["Key"] == RELEASE_TAG:
                    return str(tag.get("Value"))
        return None

    # -- metrics ------------------------------------------------------------------------
    def metrics_source(self) -> RouterMetrics | None:
        """CloudWatch sums over the whole minutes covering the window (:meth:`metrics`);
        ``None`` without a cloudwatch client."""
        if self.cloudwatch is None:
            return None
        return RouterMetrics(
            "windowed",
            lambda window: self.metrics(minutes=max(1, math.ceil(window / 60))),
            "CloudWatch AWS/ApplicationELB",
        )

    def metrics(self, *, minutes: int = 5) -> dict[str, TargetGroupMetrics]:
        """Per-group ALB metrics from CloudWatch over the last ``minutes``.

        ``RequestCount`` and ``HTTPCode_Target_5XX_Count`` are summed,
        ``TargetResponseTime`` averaged (seconds in CloudWatch, ms here).
        """
        if self.cloudwatch is None:
            raise RouterInputError("ELBv2 router: metrics() needs a cloudwatch client")
        if not 1 <= minutes <= 1440:
            raise RouterInputError(f"metrics: minutes {minutes} is not in 1..1440")
        lb_dim = "/".join(self.listener_arn.split(":listener/", 1)[1].split("/")[:3])
        end = self._clock()
        start = end - timedelta(minutes=minutes)
        out: dict[str, TargetGroupMetrics] = {}
        for group, arn in self._tgs.items():
            dims = [
                {"Name": "LoadBalancer", "Value": lb_dim},
                {"Name": "TargetGroup", "Value": "targetgroup/" + arn.split(":targetgroup/", 1)[1]},
            ]

            def stat(metric: str, statistic: str, dims: list[dict[str, str]] = dims) -> float:
                assert self.cloudwatch is not None
                points = call(
                    self.cloudwatch.get_metric_statistics,
                    Namespace="AWS/ApplicationELB",
                    MetricName=metric,
                    Dimensions=dims,
                    StartTime=start,
                    EndTime=end,
                    Period=minutes * 60,
                    Statistics=[statistic],
                )["Datapoints"]
                values = [
                    p.get("Sum", 0.0) if statistic == "Sum" else p.get("Average", 0.0)
                    for p in points
                ]
                if statistic == "Sum":
                    return sum(values)
                return sum(values) / len(values) if values else math.nan

            rt = stat("TargetResponseTime", "Average")
            out[group] = TargetGroupMetrics(
                group=group,
                requests=int(stat("RequestCount", "Sum")),
                errors_5xx=int(stat("HTTPCode_Target_5XX_Count", "Sum")),
                response_time_ms=None if math.isnan(rt) else rt * 1000.0,
            )
        return out


def _target(description: Mapping[str, Any]) -> Target:
    return Target(str(description["Target"]["Id"]), int(description["Target"]["Port"]))


def is_not_found(exc: BaseException) -> bool:
    """True for the ELBv2 "does not exist" error codes."""
    return error_code(exc).endswith("NotFound")


__all__ = [
    "FULL_WEIGHT",
    "RELEASED_AT_TAG",
    "RELEASE_TAG",
    "ElbV2Router",
    "cloudwatch_client",
    "elbv2_client",
    "is_not_found",
]
