"""An OpenFeature provider for flags kept in AWS SSM Parameter Store.

``openfeature-provider-flagd`` reads a flag *file* (its file mode) or a flagd
daemon; it cannot read SSM. :class:`SSMFlagProvider` fills that gap on the same
evaluator (flagd's reference ``FlagdCore``): it polls the parameter, validates
each new version with flagd's rules, and keeps the last good flags in force when
a new version is bad, reporting the error as a ``PROVIDER_ERROR`` event.
Applications use it through the standard OpenFeature API::

    from openfeature import api
    api.set_provider(SSMFlagProvider("/myapp/flags"))
    api.get_client().get_boolean_details("new-checkout", False, ctx)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider
from openfeature.provider.metadata import Metadata

from cdlib.flags.document import parse_document
from cdlib.flags.errors import FlagsError
from cdlib.flags.stores import SSMParameterStore
from cdlib.flags.validate import check_document

__all__ = ["SSMFlagProvider"]

_log = logging.getLogger(__name__)


class SSMFlagProvider(AbstractProvider):
    """OpenFeature provider evaluating flagd flags stored in an SSM parameter."""

    def __init__(
        self,
        parameter: str,
        *,
        client: Any = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self._store = SSMParameterStore(
            parameter, client=client, endpoint_url=endpoint_url, region_name=region_name
        )
        self._poll_interval = poll_interval
        self._core = FlagdCore()
        self._version: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_error = False
        #: The message of the last failed load, or None when the flags are current.
        self.last_error: str | None = None

    def get_metadata(self) -> Metadata:
        """The provider's name."""
        return Metadata(name="cdlib-ssm")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Load the parameter once (failing if it is bad), then poll it in the background."""
        try:
            self._load()
        except FlagsError as exc:
            raise ProviderNotReadyError(str(exc)) from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="cdlib-ssm-flags", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self._poll_interval))
            self._thread = None

    def refresh(self) -> bool:
        """Check the parameter now; True when new flags were loaded."""
        try:
            changed = self._load()
        except FlagsError as exc:
            self.last_error = str(exc)
            self._in_error = True
            _log.error("flags from %s not loaded, last good flags stay: %s", self._store.name, exc)
            self.emit_provider_error(
                ProviderEventDetails(message=str(exc), error_code=ErrorCode.PARSE_ERROR)
            )
            return False
        if self._in_error:
            self._in_error = False
            self.emit_provider_ready(ProviderEventDetails(message="flags loaded again"))
        return changed

    # -- resolution: straight to flagd's evaluator ----------------------------
    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """Evaluate a boolean flag."""
        return self._core.resolve_boolean_value(flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """Evaluate a string flag."""
        return self._core.resolve_string_value(flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """Evaluate an integer flag."""
        return self._core.resolve_integer_value(flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """Evaluate a float flag."""
        return self._core.resolve_float_value(flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        """Evaluate an object flag."""
        return self._core.resolve_object_value(flag_key, default_value, evaluation_context)

    # -- internals ---------------------------------------------------------------
    def _load(self) -> bool:
        """Fetch the parameter; load it when its version is new. Raises FlagsError."""
        try:
            response = self._store.client.get_parameter(
                Name=self._store.parameter, WithDecryption=True
            )
        except Exception as exc:
            raise FlagsError(f"{self._store.name}: cannot read parameter: {exc}") from exc
        version = int(response["Parameter"].get("Version", 0))
        if version == self._version:
            return False
        doc = parse_document(response["Parameter"]["Value"], f"{self._store.name}@{version}")
        check_document(doc)
        changed = self._core.set_flags_and_get_changed_keys(json.dumps(doc.data))
        self._version = version
        self.last_error = None
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=changed))
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self._poll_interval):
            self.refresh()
