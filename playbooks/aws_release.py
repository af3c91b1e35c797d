"""Immutable blue/green release of the environment ``aws_environment.py`` built.

    cdlib run playbooks/aws_release.py -i inventories/aws/staging -e @release.yml

``release.yml`` holds ``version``, ``ami_id`` (the build), ``env``, ``app``,
``instance_type`` and ``vpc_id``: a strategy's options see the inventory's ``all`` vars
and ``-e``, not the ``aws`` group's.

The idle Auto Scaling group (``<env>-web-green`` at first) gets a new launch template
version (the AMI of the build, ``-e ami_id=ami-...``, and the inventory's instance type;
the image holds the app and its boot configuration),
is scaled to the live group's size and waits until its instances serve; the test
listener is pointed at it and must see them healthy; then the production listener
switches at once. After ``CDLIB_BAKE_TIME`` seconds (default 300) without one of the
CloudWatch alarms ``CDLIB_ALARMS`` (comma-separated) in ALARM, the old group is scaled
in to zero. An alarm in ALARM switches back to the old group, still at full size.

The listener and target group ARNs come from the environment, as for the other AWS
examples: ``CDLIB_AWS_LISTENER_ARN``, ``CDLIB_AWS_TEST_LISTENER_ARN``,
``CDLIB_AWS_TARGET_GROUPS`` and ``CDLIB_AWS_AUTO_SCALING_GROUPS`` (JSON objects, group
-> ARN or name). Tested in tests/integration/traffic/test_release_asg.py.
"""

import json
import os
from collections.abc import Mapping
from typing import Any

from cdlib.aws.compute import LaunchTemplateSpec
from cdlib.release import AsgBlueGreen, AutoScalingSpec


def template(v: Mapping[str, Any]) -> LaunchTemplateSpec:
    """The environment's launch template with the build's AMI."""
    name = f"{v['env']}-{v['app']}"
    return LaunchTemplateSpec(
        name,
        v["ami_id"],
        v["instance_type"],
        security_groups=(f"{name}-app",),
        vpc_id=v["vpc_id"],
        tags={"env": v["env"], "app": v["app"]},
    )


AsgBlueGreen(
    app="web",
    version="{{ version }}",
    environment="{{ env }}",
    router=AutoScalingSpec(
        listener_arn=os.environ.get("CDLIB_AWS_LISTENER_ARN", ""),
        test_listener_arn=os.environ.get("CDLIB_AWS_TEST_LISTENER_ARN") or None,
        target_groups=json.loads(os.environ.get("CDLIB_AWS_TARGET_GROUPS", "{}")),
        auto_scaling_groups=json.loads(os.environ.get("CDLIB_AWS_AUTO_SCALING_GROUPS", "{}")),
        region=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION")),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    ),
    launch_template=template,
    alarms=[a for a in os.environ.get("CDLIB_ALARMS", "").split(",") if a],
    bake_time=float(os.environ.get("CDLIB_BAKE_TIME", "300")),
    keep_old="scale_in",
    health_timeout=300,
)
