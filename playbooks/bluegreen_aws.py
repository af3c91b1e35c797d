"""Blue/green release behind an AWS application load balancer (ELBv2).

    export CDLIB_AWS_LISTENER_ARN=arn:aws:elasticloadbalancing:...:listener/app/web/...
    export CDLIB_AWS_TARGET_GROUPS='{"blue": "arn:...:targetgroup/web-blue/...",
                                     "green": "arn:...:targetgroup/web-green/..."}'
    export CDLIB_BUILD=dist/sampleapp-2.0.0.tar.gz        # optional: install it first
    cdlib run playbooks/bluegreen_aws.py -i my.aws_ec2.yml -e version=2.0.0 -e env=production \
        --meta commit=$GIT_SHA

An example for an AWS account (``my.aws_ec2.yml`` is your EC2 inventory); the tests run it
against moto in tests/integration/traffic/test_aws_playbooks.py.

Hosts come from an EC2 inventory with groups ``blue`` and ``green`` (for example
``keyed_groups`` on a ``Color`` tag) and the ``instance_id`` host var; targets are
registered by instance id on port 8080. With ``CDLIB_BUILD`` each new group gets the
release installed over SSH (``tasks.install`` and a supervisord program) before traffic
moves (its sha256 is recorded with the release); without it the hosts are taken as
already deployed. The version comes from ``-e version=...`` (``$CDLIB_VERSION`` is the
fallback), the environment from ``-e env=...``; ``-e promote_from=staging`` makes the
release stop unless the same build was released to staging first.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from aws_common import APP, BUILD, ENVIRONMENT, PROMOTE_FROM, VERSION, deploy, router

from cdlib.release import BlueGreen

BlueGreen(
    app=APP,
    version=VERSION,
    environment=ENVIRONMENT,
    require_released_in=PROMOTE_FROM,
    router=router(),
    deploy=deploy if BUILD else None,
    port=8080,
    target_var="instance_id",
    health_timeout=300,
)
