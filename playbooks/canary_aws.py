"""Canary release behind an AWS application load balancer, judged by CloudWatch.

Same settings as ``bluegreen_aws.py`` (``-e version=...``, else ``$CDLIB_VERSION``).
Traffic moves 5 % -> 25 % -> 50 % -> 100 % with a pause at each step; the analysis reads
the canary target group's ``RequestCount``, ``HTTPCode_Target_5XX_Count`` and
``TargetResponseTime`` from CloudWatch. No data (too little traffic) is inconclusive: the
release waits for ``cdlib promote sampleapp`` (or ``cdlib abort sampleapp``), unless
``CDLIB_ON_INCONCLUSIVE`` says ``continue`` or ``fail``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from aws_common import APP, BUILD, ENVIRONMENT, PROMOTE_FROM, VERSION, deploy, router

from cdlib.release import Canary, CanaryStep, Thresholds

PAUSE = float(os.environ.get("CDLIB_PAUSE", "120"))

Canary(
    app=APP,
    version=VERSION,
    environment=ENVIRONMENT,
    require_released_in=PROMOTE_FROM,
    router=router(),
    deploy=deploy if BUILD else None,
    port=8080,
    target_var="instance_id",
    health_timeout=300,
    steps=[
        CanaryStep(5, pause=PAUSE),
        CanaryStep(25, pause=PAUSE),
        CanaryStep(50, pause=PAUSE),
        100,
    ],
    thresholds=Thresholds(max_error_rate=0.01, max_response_time_ms=500, min_requests=100),
    on_inconclusive=os.environ.get("CDLIB_ON_INCONCLUSIVE", "pause"),  # type: ignore[arg-type]
)
