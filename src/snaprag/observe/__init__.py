"""Observability: the telemetry seam (null by default) that exporters plug into."""

from .base import Telemetry
from .telemetry import NullTelemetry, RecordingTelemetry

__all__ = ["NullTelemetry", "RecordingTelemetry", "Telemetry"]
