"""Checks of the settings that need more than a range: the generator's (``llm`` and its
limits) and the trace exporter's endpoint, apart from the fields they check so that
``config.py`` holds the settings themselves. :class:`~snaprag.config.Config` runs them when
it is made; a bad value is a :class:`~snaprag.errors.ConfigError` that says what to write.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config

#: the forms ``llm`` takes (see ``generate/factory.py``)
LLM_FORMS = ("extractive", "smollm2", "gguf:PATH", "openai:BASE_URL", "echo[:SECONDS]")


def check_otel(config: Config) -> None:
    """``otel_endpoint``: empty, or the http(s) URL of an OTLP/HTTP collector (stripped)."""
    from urllib.parse import urlsplit

    endpoint = config.otel_endpoint.strip()
    object.__setattr__(config, "otel_endpoint", endpoint)
    if not endpoint:
        return
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            "otel_endpoint must be an http:// or https:// URL of an OTLP/HTTP collector, "
            f"e.g. http://127.0.0.1:4318, or empty for no traces; got {endpoint!r}"
        )


def check_llm(config: Config) -> None:
    """The generator's settings: the form of ``llm`` and its limits (``llm`` stripped)."""
    llm = config.llm.strip()
    object.__setattr__(config, "llm", llm)
    kind, _, arg = llm.partition(":")
    named = llm in ("extractive", "smollm2", "echo")
    if kind == "echo" and arg:
        try:
            delay = float(arg)
        except ValueError:
            delay = -1.0
        if not (math.isfinite(delay) and 0 <= delay <= 10):
            raise ConfigError(f"llm echo:SECONDS takes a pause per token in [0, 10]; got {arg!r}")
        named = True
    if not named and not (kind in ("gguf", "openai") and arg):
        raise ConfigError(f"llm must be one of {', '.join(LLM_FORMS)}; got {llm!r}")
    if kind == "openai" and not arg.startswith(("http://", "https://")):
        raise ConfigError(
            f"llm openai:BASE_URL needs an http:// or https:// URL, e.g. "
            f"openai:http://127.0.0.1:8080/v1; got {arg!r}"
        )
    positive("llm_ctx", config.llm_ctx, minimum=128)
    positive("llm_max_tokens", config.llm_max_tokens)
    positive("llm_parallel", config.llm_parallel)
    positive("context_tokens", config.context_tokens, minimum=32)
    if config.llm_max_tokens >= config.llm_ctx:
        raise ConfigError(
            f"llm_max_tokens ({config.llm_max_tokens}) must be below llm_ctx ({config.llm_ctx}): "
            "the prompt needs room in the context too"
        )
    if config.llm_threads < 0:
        raise ConfigError(f"llm_threads must be >= 0 (0 = automatic), got {config.llm_threads}")
    if config.llm_gpu_layers < -1:
        raise ConfigError(f"llm_gpu_layers must be >= -1 (-1 = all), got {config.llm_gpu_layers}")
    if config.llm_retries < 0:
        raise ConfigError(f"llm_retries must be >= 0, got {config.llm_retries}")
    if not (math.isfinite(config.llm_timeout) and config.llm_timeout > 0):
        raise ConfigError(f"llm_timeout must be > 0 seconds, got {config.llm_timeout}")
    if not (math.isfinite(config.llm_temperature) and 0 <= config.llm_temperature <= 2):
        raise ConfigError(f"llm_temperature must be in [0, 2], got {config.llm_temperature}")


def choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def positive(name: str, value: int, minimum: int = 1) -> None:
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
