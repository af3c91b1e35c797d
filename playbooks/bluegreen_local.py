"""Blue/green release of the sample app on this machine, behind a real local HAProxy.

    cdlib run playbooks/bluegreen_local.py -i inventories/bluegreen-local-staging.yml \
        -e version=1.1.0 --meta commit=abc123
    cdlib run playbooks/bluegreen_local.py -i inventories/bluegreen-local.yml \
        -e version=1.1.0 --meta commit=abc123

The version comes from ``-e version=...`` (``CDLIB_DEMO_VERSION`` in the environment is
the fallback; with neither the run stops with exit 4 before touching anything). One
playbook, two environments: each inventory sets ``env`` (recorded with the release,
``cdlib history sampleapp --env staging``), the HAProxy address ``demo_lb`` and
directory ``demo_dir``; with ``promote_from: staging`` (see inventories/bluegreen-local.yml)
production takes only a build released to staging first. The build is the sample app's
``serve-local`` script; its sha256 is recorded with each release.

The first run makes the version live on one group; each next run deploys the new
version to the idle group, checks it directly, switches all traffic in one step, then
checks through HAProxy (switching back on failure). ``cdlib rollback sampleapp`` switches
back in one step; ``cdlib status sampleapp`` and ``cdlib history sampleapp`` tell the story.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from sampleapp_local import SERVE, deploy

from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import BlueGreen, LocalHAProxySpec

# Templates, rendered per run from the inventory's vars and -e (the environment wins here
# so tests can move the demo to free ports).
LB = os.environ.get("CDLIB_DEMO_LB") or "{{ demo_lb | default('127.0.0.1:8480') }}"
WORKDIR = os.environ.get("CDLIB_DEMO_DIR") or (
    "{{ demo_dir | default('/var/tmp/cdlib-demo/haproxy') }}"
)
FAIL = os.environ.get("CDLIB_DEMO_FAIL_MODE", "")

retry = Retry(attempts=20, timeout=15.0)

BlueGreen(
    app="sampleapp",
    version="{{ version if version is defined else lookup('env', 'CDLIB_DEMO_VERSION') }}",
    environment="{{ env | default('') }}",
    require_released_in="{{ promote_from | default('') }}",
    build=str(SERVE),
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
