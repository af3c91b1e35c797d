"""Canary release of the sample app on this machine, behind the local HAProxy.

    cdlib run playbooks/canary_local.py -i inventories/bluegreen-local.yml -e version=1.2.0

The version comes from ``-e version=...`` (``CDLIB_DEMO_VERSION`` is the fallback); the
inventory names the environment and HAProxy as for bluegreen_local.py. Needs a live group
first (run playbooks/bluegreen_local.py once). Traffic moves to the
new version in steps of 10 %, 50 % and 100 %; at each step the analysis compares the
canary group's 5xx rate in HAProxy's stats with the threshold, and a failure sends all
traffic back to the stable group. ``CDLIB_DEMO_FAIL_MODE=errors`` builds a bad release to
watch the automatic rollback.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from sampleapp_local import SERVE, deploy

from cdlib.checks import HttpCheck, Retry
from cdlib.checks.suite import Suite
from cdlib.release import Canary, CanaryStep, LocalHAProxySpec, Thresholds

LB = os.environ.get("CDLIB_DEMO_LB") or "{{ demo_lb | default('127.0.0.1:8480') }}"
WORKDIR = os.environ.get("CDLIB_DEMO_DIR") or (
    "{{ demo_dir | default('/var/tmp/cdlib-demo/haproxy') }}"
)
FAIL = os.environ.get("CDLIB_DEMO_FAIL_MODE", "")
PAUSE = float(os.environ.get("CDLIB_DEMO_PAUSE", "20"))

Canary(
    app="sampleapp",
    version="{{ version if version is defined else lookup('env', 'CDLIB_DEMO_VERSION') }}",
    environment="{{ env | default('') }}",
    require_released_in="{{ promote_from | default('') }}",
    build=str(SERVE),
    router=LocalHAProxySpec(workdir=WORKDIR, bind=LB),
    deploy=lambda target: deploy(target, fail_mode=FAIL),
    preview_checks=Suite(
        "preview",
        (
            HttpCheck(
                url="http://{{ address }}:{{ app_port }}/health",
                json_equals={"$.version": "{{ release_version }}"},
                retry=Retry(attempts=20, timeout=15.0),
            ),
        ),
    ),
    steps=[CanaryStep(10, pause=PAUSE), CanaryStep(50, pause=PAUSE), 100],
    thresholds=Thresholds(max_error_rate=0.01, min_requests=20),
    # With no traffic the analysis is inconclusive: wait for 'cdlib promote sampleapp'.
    on_inconclusive="pause",
)
