"""Shared settings of the AWS examples: the router spec and the deploy plays.

Imported by ``bluegreen_aws.py`` and ``canary_aws.py``; it defines no plays itself.
"""

import json
import os

from cdlib import Play, tasks
from cdlib.release import DeployTarget, ElbV2Spec

BUILD = os.environ.get("CDLIB_BUILD")
#: Rendered per run: ``-e version=2.0.0``, else ``$CDLIB_VERSION``; with neither the run
#: stops (exit 4) before anything is touched.
VERSION = "{{ version if version is defined else lookup('env', 'CDLIB_VERSION') }}"
#: ``-e env=production`` (or ``env`` in the inventory's vars) names the environment.
ENVIRONMENT = "{{ env | default('') }}"
#: ``-e promote_from=staging``: only a build released to staging first (same sha256).
PROMOTE_FROM = "{{ promote_from | default('') }}"
APP = os.environ.get("CDLIB_APP", "sampleapp")


def router() -> ElbV2Spec:
    """The listener and target groups from the environment."""
    return ElbV2Spec(
        listener_arn=os.environ.get("CDLIB_AWS_LISTENER_ARN", ""),
        target_groups=json.loads(os.environ.get("CDLIB_AWS_TARGET_GROUPS", "{}")),
        region=os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION")),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    )


def deploy(target: DeployTarget) -> Play:
    """Install the build on the new group's instances and (re)start it."""
    play = Play(f"install {target.version} on {target.group}", hosts=target.hosts, become=True)
    play.task(
        tasks.install(
            target.app, target.version, str(BUILD), check_cmd="test -x bin/start", notify="restart"
        )
    )
    play.task(
        tasks.service(
            target.app,
            command=f"/srv/{target.app}/current/bin/start",
            backend="supervisord",
            state="started",
        )
    )
    play.handler("restart", tasks.service(target.app, backend="supervisord", state="restarted"))
    return play
