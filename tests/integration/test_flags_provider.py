"""Applications read cdlib's flag files through OpenFeature's flagd provider (file mode).

No cdlib code in the reader: ``openfeature-provider-flagd`` polls the file that
cdlib writes atomically. A change is picked up; a bad file (written by hand, not
by cdlib) keeps the last good flags in force and is reported as an error event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent

from cdlib.flags import FlagValidationError, LocalFileStore, kill, parse_document, ramp, set_flag
from tests.sample_app import http_get, run_app

FLAGS = {
    "flags": {
        "new-greeting": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "metadata": {"owner": "team-web"},
        }
    }
}


def wait_until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``check`` (bounded in count and time); True once it holds."""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    s = LocalFileStore(tmp_path / "flags.json")
    s.write(parse_document(json.dumps(FLAGS), "initial"))
    return s


@pytest.fixture
def client(store: LocalFileStore) -> Iterator[tuple[Any, list[EventDetails]]]:
    errors: list[EventDetails] = []

    def on_error(details: EventDetails) -> None:
        errors.append(details)

    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(store.path), deadline_ms=100
    )
    api.add_handler(ProviderEvent.PROVIDER_ERROR, on_error)
    api.set_provider_and_wait(provider, "cdlib-flags-test")
    try:
        yield api.get_client("cdlib-flags-test"), errors
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_ERROR, on_error)
        provider.shutdown()
        api.clear_providers()


def test_provider_follows_changes_and_keeps_last_good(
    store: LocalFileStore, client: tuple[Any, list[EventDetails]]
) -> None:
    of, errors = client
    first = of.get_boolean_details("new-greeting", True)
    assert (first.value, first.variant, str(first.reason)) == (False, "off", "STATIC")
    assert first.flag_metadata == {"owner": "team-web"}

    set_flag(store, "new-greeting", default_variant="on")
    assert wait_until(lambda: of.get_boolean_value("new-greeting", False) is True)

    ramp(store, "new-greeting", 50)
    assert wait_until(
        lambda: str(of.get_boolean_details("new-greeting", False).reason) == "DEFAULT"
    )  # no targeting key: the fractional rule cannot bucket, the default variant is served
    seen = {
        of.get_boolean_details("new-greeting", False, EvaluationContext(targeting_key=u)).variant
        for u in ("ann", "bob", "cyd", "dan", "eve", "fay", "gus", "hal")
    }
    assert seen == {"on", "off"}

    kill(store, "new-greeting")
    assert wait_until(lambda: str(of.get_boolean_details("new-greeting", True).reason) == "STATIC")
    killed = of.get_boolean_details("new-greeting", True, EvaluationContext(targeting_key="ann"))
    assert (killed.value, killed.variant) == (False, "off")

    # cdlib refuses a bad file and leaves the good one in place
    bad = '{"flags": {"new-greeting": {"state": "ON", "variants": {"on": true}}}}'
    before = store.path.read_bytes()
    with pytest.raises(FlagValidationError):
        store.write(parse_document(bad, "bad"))
    assert store.path.read_bytes() == before

    # a bad file written by hand: the provider reports it and keeps the last good flags
    store.path.write_text(bad)
    assert wait_until(lambda: bool(errors))
    assert "parse" in (errors[-1].message or "").lower()
    still = of.get_boolean_details("new-greeting", True)
    assert (still.value, still.variant, still.error_code) == (False, "off", None)

    # and recovers with the next good file cdlib writes
    store.write(parse_document(json.dumps(FLAGS), "good"))
    set_flag(store, "new-greeting", default_variant="on")
    assert wait_until(lambda: of.get_boolean_value("new-greeting", False) is True)


def test_sample_app_reads_flag_through_openfeature(store: LocalFileStore) -> None:
    env = {
        "APP_FLAGS_FILE": str(store.path),
        "APP_FLAGS_PROVIDER": "flagd",
        "APP_FLAGS_POLL_MS": "100",
    }
    with run_app(env) as (_, url):
        body = json.loads(http_get(url + "/").body)
        assert body["greeting"] == "Hello"
        assert body["greeting_flag"] == {
            "value": False,
            "variant": "off",
            "reason": "STATIC",
            "errorCode": None,
        }
        set_flag(store, "new-greeting", default_variant="on")
        assert wait_until(
            lambda: (
                json.loads(http_get(url + "/").body)["greeting"] == "Hello from the new greeting!"
            )
        )
        ramp(store, "new-greeting", 50)
        assert wait_until(
            lambda: (
                json.loads(http_get(url + "/?user=ann").body)["greeting_flag"]["reason"]
                == "TARGETING_MATCH"
            )
        )


def test_provider_reads_yaml_written_by_cdlib(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "flags.yaml")
    store.write(parse_document(json.dumps(FLAGS), "initial"))
    assert store.path.read_text().startswith("flags:\n")
    provider = FlagdProvider(
        resolver_type=ResolverType.FILE, offline_flag_source_path=str(store.path), deadline_ms=100
    )
    api.set_provider_and_wait(provider, "cdlib-flags-yaml")
    try:
        of = api.get_client("cdlib-flags-yaml")
        assert of.get_boolean_details("new-greeting", True).variant == "off"
        set_flag(store, "new-greeting", default_variant="on")
        assert wait_until(lambda: of.get_boolean_value("new-greeting", False) is True)
    finally:
        provider.shutdown()
        api.clear_providers()
