"""Observability: the telemetry seam (null by default) that exporters plug into."""

from .telemetry import NullTelemetry, RecordingTelemetry, Telemetry

__all__ = ["NullTelemetry", "RecordingTelemetry", "Telemetry"]
