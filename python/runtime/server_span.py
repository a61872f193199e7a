"""Each call's SERVER span: an OpenTelemetry API `Span` that the runtime records itself, handed
to the SDK's span processor as the SDK's `ReadableSpan` when it ends.

Why not the SDK's `Tracer.start_span`: its span validates each start attribute under a lock,
makes two bounded lists and a lock per span, and copies itself into a ReadableSpan at the end:
about 55 us per call in the serving process (py-spy, docs/observability-cost.md), a sixth of
what a bare server spends on the whole call. The runtime's start attributes are its own and
valid by construction, and most calls never touch their span again, so here a span is a few
fields until something asks for more. Everything else is the SDK's: the sampling decision is
the provider's sampler (OTEL_TRACES_SAMPLER), the ids its id generator's, the limits
(OTEL_SPAN_*_LIMIT) its `SpanLimits`, and export its processor and exporter. What handler code
does with the current span (attributes, events, links, status, exceptions) is kept under the
same limits, validated by the SDK's own `BoundedAttributes` when it happens. Like the SDK's own
span, an ended span is its own `ReadableSpan` (the same fields), so ending copies nothing.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider, _is_valid_link
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

_UNSET = Status(StatusCode.UNSET)
_NO_EVENTS: tuple[Event, ...] = ()
_NO_LINKS: tuple[Link, ...] = ()


class ServerSpans:
    """Starts the SERVER spans of calls, by the provider's sampler and ids, ending into
    `on_end` (the span processor's)."""

    def __init__(
        self,
        provider: TracerProvider,
        scope: InstrumentationScope,
        on_end: Callable[[ReadableSpan], None],
    ) -> None:
        self._sampler = provider.sampler
        self._ids = provider.id_generator
        self.resource: Resource = provider.resource
        self.scope = scope
        self.limits = SpanLimits()
        self.on_end = on_end
        # OTEL_SDK_DISABLED=true: the provider's tracer is a no-op one, and so are these spans.
        tracer = provider.get_tracer(scope.name)
        self._no_op = tracer if isinstance(tracer, trace.NoOpTracer) else None

    def start(
        self, name: str, parent: otel_context.Context | None, attributes: Mapping[str, object]
    ) -> trace.Span:
        """A span for a call, child of the span current in `parent` (the caller's), if any."""
        if self._no_op is not None:
            return self._no_op.start_span(name, parent)
        parent_span = trace.get_current_span(parent).get_span_context()
        if not parent_span.is_valid:
            parent_span = None
        trace_id = parent_span.trace_id if parent_span else self._ids.generate_trace_id()
        sampling = self._sampler.should_sample(parent, trace_id, name, SpanKind.SERVER, attributes)
        flags = TraceFlags.SAMPLED if sampling.decision.is_sampled() else TraceFlags.DEFAULT
        if (
            parent_span.trace_flags.random_trace_id
            if parent_span
            else self._ids.is_trace_id_random()
        ):
            flags |= TraceFlags.RANDOM_TRACE_ID
        context = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=sampling.trace_state,
        )
        if not sampling.decision.is_recording():
            return trace.NonRecordingSpan(context)
        return ServerSpan(self, name, context, parent_span, dict(sampling.attributes or {}))


class ServerSpan(trace.Span, ReadableSpan):
    """A recording SERVER span (the module docstring): ends once, into its factory's `on_end`,
    as the `ReadableSpan` the processor takes (ReadableSpan's fields, set here)."""

    def __init__(
        self,
        spans: ServerSpans,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, object],
    ) -> None:
        self._spans = spans
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = SpanKind.SERVER
        self._resource = spans.resource
        self._instrumentation_scope = spans.scope
        self._instrumentation_info = None
        # The runtime's own attributes as given; the SDK's bounded, validating mapping once
        # anything else sets one.
        self._attributes: dict[str, object] | BoundedAttributes = attributes
        limits = spans.limits
        if limits.max_span_attribute_length is not None or (
            limits.max_span_attributes is not None
            and len(attributes) >= limits.max_span_attributes  # the status code must fit too
        ):
            self._bounded()  # OTEL_SPAN_ATTRIBUTE_*_LIMIT bound the runtime's own, as the SDK's
        self._events: Sequence[Event] = _NO_EVENTS
        self._links: Sequence[Link] = _NO_LINKS
        self._status = _UNSET
        self._start_time = time.time_ns()
        self._end_time: int | None = None

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_call_attribute(self, key: str, value: int) -> None:
        """An attribute of the runtime's own (the status code): valid, so not validated."""
        if self._end_time is None:
            self._attributes[key] = value

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is None:
            self._bounded()[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def _bounded(self) -> BoundedAttributes:
        if not isinstance(self._attributes, BoundedAttributes):
            limits = self._spans.limits
            self._attributes = BoundedAttributes(
                limits.max_span_attributes,
                self._attributes,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        return self._attributes

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            return
        limits = self._spans.limits
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        bounded = self._frozen(limits.max_event_attributes, attributes)
        self._events.append(Event(name, bounded, timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is not None or not _is_valid_link(context, attributes):
            return  # the SDK's test: a link with attributes is kept without a valid context
        limits = self._spans.limits
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList(limits.max_links)
        self._links.append(Link(context, self._frozen(limits.max_link_attributes, attributes)))

    def _frozen(self, most: int | None, attributes: types.Attributes) -> BoundedAttributes:
        """An event's or link's attributes, validated and bounded as the SDK's, then fixed."""
        limit = self._spans.limits.max_attribute_length
        return BoundedAttributes(most, attributes, immutable=True, max_value_len=limit)

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK's: OK is final, UNSET is ignored, a description goes with a code only."""
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if not isinstance(status, Status):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An `exception` event with the semantic conventions' attributes, as the SDK's."""
        kind = type(exception)
        name = kind.__qualname__
        if kind.__module__ and kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        event: dict[str, types.AnyValue] = {
            "exception.type": name,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", {**event, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time or time.time_ns()
        self._spans.on_end(self)
