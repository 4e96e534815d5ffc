"""Build the generator named by ``Config.llm``.

==========================  ====================================================
``extractive``              sentences from the top chunks, no LLM (the default)
``smollm2``                 the bundled SmolLM2-135M-Instruct GGUF (a demo model)
``gguf:PATH``               any local GGUF file, run by llama.cpp (``xllamacpp``)
``openai:BASE_URL``         an OpenAI-compatible server, e.g. ``http://host:8000/v1``
``echo[:SECONDS]``          a deterministic fake for tests: cites the hits it was given
                            (SECONDS: a pause before each token, to test streaming)
==========================  ====================================================

Construction is cheap and loads nothing; models load on first use or ``load()``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..config_checks import LLM_FORMS
from ..embed.base import Embedder
from ..errors import ConfigError
from .base import GenerationSettings, Generator, LLMBackend
from .extractive import ExtractiveGenerator
from .llm import LLMAnswerer


def create_generator(
    config: Config,
    embedder: Callable[[], Embedder],
    model_name: Callable[[], str],
) -> Generator:
    """The :class:`~.base.Generator` that ``config.llm`` names."""
    spec = config.llm
    if spec == "extractive":
        return ExtractiveGenerator(embedder, model_name)
    if spec == "echo" or spec.startswith("echo:"):
        from .echo import EchoGenerator

        return EchoGenerator(delay_s=float(spec.partition(":")[2] or 0))
    return LLMAnswerer(create_backend(config))


def generation_slots(config: Config) -> int | None:
    """How many answers the generator of ``config.llm`` can write at once: a local GGUF
    model has ``llm_parallel`` slots (more requests would queue inside llama.cpp, without
    a bound); None when there is no such limit (extractive, a remote server)."""
    kind = config.llm.partition(":")[0]
    return config.llm_parallel if config.llm == "smollm2" or kind == "gguf" else None


def create_backend(config: Config) -> LLMBackend:
    """The LLM backend of ``config.llm`` (``smollm2``, ``gguf:PATH``, ``openai:URL``)."""
    spec = config.llm
    kind, _, arg = spec.partition(":")
    if spec == "smollm2" or kind == "gguf":
        from .local import LocalGGUFGenerator

        return LocalGGUFGenerator(
            Path(arg) if kind == "gguf" else None,
            cache_dir=config.cache_dir,
            n_ctx=config.llm_ctx,
            threads=config.effective_llm_threads,
            gpu_layers=config.llm_gpu_layers,
            parallel=config.llm_parallel,
            settings=GenerationSettings.from_config(config),
            label="smollm2" if spec == "smollm2" else None,
        )
    if kind == "openai":
        from .openai import OpenAIGenerator

        return OpenAIGenerator(
            arg,
            model=config.llm_model,
            api_key=config.llm_api_key,
            timeout=config.llm_timeout,
            retries=config.llm_retries,
            settings=GenerationSettings.from_config(config),
        )
    raise ConfigError(f"llm must be one of {', '.join(LLM_FORMS)}; got {spec!r}")
