"""Blue/green release of the sample app on this machine, behind a real local HAProxy.

    CDLIB_DEMO_VERSION=1.1.0 cdlib run playbooks/bluegreen_local.py \
        -i inventories/bluegreen-local.yml

The first run makes the version live on one group; each next run deploys the new
version to the idle group, checks it directly, switches all traffic in one step, then
checks through HAProxy (switching back on failure). ``cdlib rollback sampleapp`` switches
back in one step; ``cdlib status sampleapp`` and ``cdlib history sampleapp`` tell the story.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from sampleapp_local import deploy

from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import BlueGreen, LocalHAProxySpec

LB = os.environ.get("CDLIB_DEMO_LB", "127.0.0.1:8480")
WORKDIR = os.environ.get("CDLIB_DEMO_DIR", "/var/tmp/cdlib-demo/haproxy")
FAIL = os.environ.get("CDLIB_DEMO_FAIL_MODE", "")

retry = Retry(attempts=20, timeout=15.0)

BlueGreen(
    app="sampleapp",
    version=os.environ.get("CDLIB_DEMO_VERSION", "1.0.0"),
    router=LocalHAProxySpec(workdir=WORKDIR, bind=LB),
    deploy=lambda target: deploy(target, fail_mode=FAIL),
    port_var="app_port",
    preview_checks=Suite(
        "preview",
        (
            HttpCheck(
                url="http://{{ address }}:{{ app_port }}/health",
                json_equals={"$.version": "{{ release_version }}"},
                retry=retry,
            ),
        ),
    ),
    post_checks=Suite(
        "through the load balancer",
        (
            HttpCheck(
                url=f"http://{LB}/version", body_contains="{{ release_version }}", retry=retry
            ),
        ),
    ),
)
