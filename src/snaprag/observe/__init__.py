"""Observability: the telemetry seam (null by default) that exporters plug into.

``otel.OtelTelemetry`` (OpenTelemetry traces, the ``otel`` extra) is imported from its
module, so that importing snaprag never imports OpenTelemetry.
"""

from .base import Telemetry
from .telemetry import CompositeTelemetry, NullTelemetry, RecordingTelemetry

__all__ = ["CompositeTelemetry", "NullTelemetry", "RecordingTelemetry", "Telemetry"]
