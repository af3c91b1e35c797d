"""The AWS example playbooks (blue/green and canary) against moto server, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cdlib.traffic.elbv2 import ElbV2Router
from tests.integration.traffic.traffic_helpers import Aws, instance_blue_green

REPO = Path(__file__).resolve().parents[3]


def test_bluegreen_and_canary_aws_examples(aws: Aws, endpoint: str, tmp_path: Path) -> None:
    handles, _ids, inv = instance_blue_green(aws, tmp_path, "ex")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CDLIB_AWS_LISTENER_ARN": handles.listener_arn,
        "CDLIB_AWS_TARGET_GROUPS": json.dumps(handles.target_groups),
        "CDLIB_STATE_DIR": str(tmp_path / "state"),
        "CDLIB_PAUSE": "0.2",
        "CDLIB_ON_INCONCLUSIVE": "continue",
    }
    router = ElbV2Router(
        aws.elbv2, target_groups=handles.target_groups, listener_arn=handles.listener_arn
    )

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cdlib", *args],
            cwd=REPO,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
        )

    checked = cli(
        "run", "playbooks/bluegreen_aws.py", "-i", str(inv), "--check", CDLIB_VERSION="2.0.0"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "would switch all traffic to green" in checked.stdout
    assert router.state().live == "blue"

    real = cli("run", "playbooks/bluegreen_aws.py", "-i", str(inv), CDLIB_VERSION="2.0.0")
    assert real.returncode == 0, real.stdout + real.stderr
    assert router.state().live == "green" and router.tagged_release("green") == "2.0.0"

    canary = cli("run", "playbooks/canary_aws.py", "-i", str(inv), CDLIB_VERSION="3.0.0")
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert "traffic 5% -> blue" in canary.stdout and "inconclusive" in canary.stdout
    assert router.state().live == "blue" and router.tagged_release("blue") == "3.0.0"
