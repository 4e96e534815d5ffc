"""Any OpenAI-compatible chat server: vLLM, llama.cpp's server, Ollama, OpenAI itself.

Standard library HTTP only (``urllib``): ``POST {base_url}/chat/completions`` with
``stream: true`` and the answer read as server-sent events (``data: {...}`` lines ending
with ``data: [DONE]``). A server that ignores ``stream`` and answers with one JSON object
works too.

Failures before the first token (connection refused, timeout, HTTP 429 and 5xx, a
connection closed before the reply) are retried ``retries`` times with exponential backoff
and jitter, honouring ``Retry-After``. After the first token nothing is retried (the text
would repeat); a stream that stalls longer than ``timeout`` or closes before its end is an
error saying how many tokens had arrived.

The prompt is measured with the server's own tokenizer where it offers one (``/tokenize``
of llama.cpp and vLLM, next to ``/v1``); otherwise with a byte-based estimate that errs on
the long side (3 UTF-8 bytes per token), and the fingerprint says so.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import GenerationError
from .base import Delta, Finish, GenerationSettings, Message, fingerprint
from .prompts import PROMPT_VERSION

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_UNREACHABLE = ("connection_refused", "connection_failed", "timeout", "stream_dropped")


def approx_tokens(text: str) -> int:
    """An upper-side estimate when the server has no tokenizer endpoint: ASCII runs at
    about 3 bytes per token, and every other byte counted as a token (the worst case of
    byte-level BPE on scripts it has few merges for, such as Hangul)."""
    raw = text.encode("utf-8")
    ascii_bytes = sum(1 for b in raw if b < 128)
    return math.ceil(ascii_bytes / 3) + (len(raw) - ascii_bytes)


class _Retryable(Exception):
    def __init__(self, error: GenerationError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        settings: GenerationSettings | None = None,
        backoff: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._model = model
        # read when used, so a key exported later (or rotated) is picked up
        self._api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.settings = settings or GenerationSettings()
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.requests = 0
        #: "server" when /tokenize works, "estimate" otherwise (None: not probed yet)
        self.tokenizer: str | None = None
        self._n_ctx: int | None = None
        self._lock = threading.Lock()
        self._loaded = False
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        handlers: list[Any] = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)

    # ------------------------------------------------------------------ identity
    @property
    def api_key(self) -> str | None:
        return self._api_key or os.environ.get("OPENAI_API_KEY") or None

    @property
    def model(self) -> str:
        if self._model is None:
            self._model = self._first_model()
        return self._model

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def fingerprint(self) -> str:
        """Configured values only, so cached answers stay reachable while the server is
        down; a server without a configured model is asked for its model name once."""
        model = self._model if self._model is not None else self.model
        return fingerprint(
            "openai",
            {"url": self.base_url, "model": model},
            {
                "prompt": PROMPT_VERSION,
                "temperature": self.settings.temperature,
                "max_tokens": self.settings.max_tokens,
                "context_tokens": self.settings.context_tokens,
            },
        )

    @property
    def prompt_limit(self) -> int | None:
        self.load()
        return None if self._n_ctx is None else self._n_ctx - self.settings.max_tokens

    # ------------------------------------------------------------------ set-up
    def load(self) -> None:
        """Resolve the model name and find the server's tokenizer and context size."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            model = self.model
            root = self._root()
            tokenizer = "estimate"
            try:
                reply = self._with_retries(
                    lambda: self._json("POST", root + "/tokenize", _tokenize_body(model, "probe"))
                )
                if isinstance(reply, dict) and isinstance(reply.get("tokens"), list):
                    tokenizer = "server"
                    if isinstance(reply.get("max_model_len"), int):  # vLLM
                        self._n_ctx = reply["max_model_len"]
            except GenerationError as exc:
                if exc.code in _UNREACHABLE:
                    raise  # try again on the next request, the server may come back
            self.tokenizer = tokenizer
            if self._n_ctx is None:
                with contextlib.suppress(GenerationError, KeyError, AttributeError):
                    props = self._json("GET", root + "/props", None)
                    n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
                    if isinstance(n_ctx, int) and n_ctx > 0:  # llama.cpp
                        self._n_ctx = n_ctx
            self._loaded = True

    def _root(self) -> str:
        """The server root: the base URL without its trailing ``/v1``."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def _first_model(self) -> str:
        reply = self._with_retries(lambda: self._json("GET", self.base_url + "/models", None))
        try:
            return str(reply["data"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GenerationError(
                f"{self.base_url}/models lists no model; name one with --llm-model",
                "bad_response",
            ) from exc

    # ------------------------------------------------------------------ tokens
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.load()
        if self.tokenizer != "server":
            return [approx_tokens(t) for t in texts]
        root, model = self._root(), self.model
        counts = []
        for text in texts:
            reply = self._json("POST", root + "/tokenize", _tokenize_body(model, text))
            counts.append(len(reply["tokens"]))
        return counts

    def count_prompt(self, messages: list[Message]) -> int:
        # chat templates add a few tokens per message (role markers); 8 is generous for
        # ChatML, Llama 3 and Qwen templates
        contents = self.count_tokens([m["content"] for m in messages])
        return sum(contents) + 8 * len(messages)

    # ------------------------------------------------------------------ generation
    def stream(self, messages: list[Message]) -> Iterator[Delta | Finish]:
        """Stream one chat completion (see the module notes on retries and errors)."""
        with self._lock:
            self.requests += 1
        body = self._body(messages, stream=True)
        attempt = 0
        while True:
            sent = 0
            try:
                for item in self._stream_once(body):
                    if isinstance(item, Delta):
                        sent += 1
                    yield item
                return
            except _Retryable as exc:
                if sent or attempt >= self.retries:
                    raise self._final(exc.error, attempt, sent) from exc
                time.sleep(self._delay(attempt, exc.retry_after))
                attempt += 1

    def complete(self, messages: list[Message]) -> tuple[str, Finish]:
        """One chat completion without streaming: its text and how it finished."""
        with self._lock:
            self.requests += 1
        body = self._body(messages, stream=False)
        reply = self._with_retries(lambda: self._json("POST", self._chat_url(), body))
        return _parse_completion(reply)

    def close(self) -> None:
        """Nothing held open between requests."""

    # ------------------------------------------------------------------ internals
    def _chat_url(self) -> str:
        return self.base_url + "/chat/completions"

    def _body(self, messages: list[Message], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _headers(self, stream: bool = False) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _open(self, method: str, url: str, body: Any, stream: bool = False) -> Any:
        """Send a request; map every failure to GenerationError or _Retryable."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=self._headers(stream))
        try:
            return self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from exc
        except urllib.error.URLError as exc:
            raise self._network_error(exc.reason) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from exc

    def _json(self, method: str, url: str, body: Any) -> Any:
        try:
            with self._open(method, url, body) as resp:
                raw = resp.read()
        except _Retryable as exc:
            raise exc.error from exc
        except (OSError, http.client.HTTPException) as exc:
            retryable = self._network_error(exc)  # headers came, the body did not
            raise retryable.error from retryable
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise GenerationError(
                f"{url} answered with something that is not JSON: {raw[:120]!r}", "bad_response"
            ) from exc

    def _with_retries(self, call: Any) -> Any:
        attempt = 0
        while True:
            try:
                return call()
            except GenerationError as exc:
                cause = exc.__cause__
                if not isinstance(cause, _Retryable) or attempt >= self.retries:
                    raise self._final(exc, attempt, 0) from exc
                time.sleep(self._delay(attempt, cause.retry_after))
                attempt += 1

    def _stream_once(self, body: dict[str, Any]) -> Iterator[Delta | Finish]:
        resp = self._open("POST", self._chat_url(), body, stream=True)
        with resp:
            if "text/event-stream" not in (resp.headers.get("Content-Type") or ""):
                text, finish = _parse_completion(self._read_json(resp))
                if text:
                    yield Delta(text)
                yield finish
                return
            reason: str | None = None
            usage: dict[str, Any] = {}
            timings: dict[str, Any] = {}
            got_any = False
            last_data = time.monotonic()
            while True:
                if time.monotonic() - last_data > self.timeout:  # only pings for too long
                    raise _Retryable(self._timeout_error(got_any))
                try:
                    raw = resp.readline()
                except TimeoutError as exc:
                    raise _Retryable(self._timeout_error(got_any)) from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retryable(self._dropped(str(exc))) from exc
                if not raw:  # the connection closed
                    if reason is not None:
                        break  # finished, only [DONE] missing: some servers skip it
                    raise _Retryable(self._dropped("the connection closed"))
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, comments (": ping"), event: names
                last_data = time.monotonic()
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError as exc:
                    raise GenerationError(
                        f"unreadable event from {self.base_url}: {payload[:120]!r}",
                        "bad_response",
                    ) from exc
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise _server_error(chunk["error"], self.base_url)
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        got_any = True
                        yield Delta(piece)
                    reason = choice.get("finish_reason") or reason
                usage = chunk.get("usage") or usage
                timings = chunk.get("timings") or timings
            yield Finish(
                reason,
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                dict(timings),
            )

    def _read_json(self, resp: Any) -> Any:
        try:
            return json.loads(resp.read())
        except TimeoutError as exc:
            raise _Retryable(self._timeout_error(False)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(self._dropped(str(exc))) from exc
        except ValueError as exc:
            raise GenerationError(
                f"{self.base_url} sent a reply that is not JSON", "bad_response"
            ) from exc

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        base = min(self.backoff * 2**attempt, self.backoff_max)
        return base * (1 + 0.25 * random.random())

    # ------------------------------------------------------------------ errors
    def _http_error(self, exc: urllib.error.HTTPError) -> Exception:
        try:
            detail = exc.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):  # an error body cut short
            detail = ""
        message = detail
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            parsed = json.loads(detail)
            err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
        message = " ".join(message.split())[:300] or exc.reason
        status = exc.code
        if status in (401, 403):
            return GenerationError(
                f"{self.base_url} refused the request (HTTP {status}: {message}); set the API "
                "key with --llm-key, SNAPRAG_LLM_API_KEY or OPENAI_API_KEY",
                "server_error",
            )
        if status in (400, 413, 422) and _is_context_message(message):
            return GenerationError(
                f"the prompt does not fit the model's context ({message}); lower "
                "--context-tokens or --max-tokens",
                "context_overflow",
            )
        error = GenerationError(
            f"{self.base_url} answered HTTP {status}: {message}", "server_error"
        )
        if status in _RETRY_STATUS:
            retry_after = None
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                retry_after = float(exc.headers.get("Retry-After", ""))
            return _Retryable(error, retry_after)
        return error

    def _network_error(self, reason: Any) -> _Retryable:
        if isinstance(reason, ConnectionRefusedError):
            error = GenerationError(
                f"cannot connect to the LLM server at {self.base_url}: connection refused; "
                "is it running?",
                "connection_refused",
            )
        elif isinstance(reason, TimeoutError):
            error = self._timeout_error(False)
        elif isinstance(reason, ConnectionError | http.client.RemoteDisconnected):
            error = self._dropped(str(reason) or type(reason).__name__)
        else:
            error = GenerationError(
                f"cannot reach the LLM server at {self.base_url}: {reason}", "connection_failed"
            )
        return _Retryable(error)

    def _timeout_error(self, streaming: bool) -> GenerationError:
        what = "stopped sending" if streaming else "did not answer"
        return GenerationError(
            f"the LLM server at {self.base_url} {what} for {self.timeout:g} s; check the "
            "server or raise --llm-timeout",
            "timeout",
        )

    def _dropped(self, why: str) -> GenerationError:
        return GenerationError(
            f"the LLM server at {self.base_url} dropped the connection before the answer was "
            f"finished ({why})",
            "stream_dropped",
        )

    def _final(self, error: GenerationError, attempt: int, sent: int) -> GenerationError:
        """The error to show: with how often it was tried, or how far the stream got."""
        if sent:
            message = f"{error} after {sent} streamed pieces of the answer"
        elif attempt:
            message = f"{error} (tried {attempt + 1} times)"
        else:
            return error
        return GenerationError(message, error.code)


def _tokenize_body(model: str, text: str) -> dict[str, Any]:
    # llama.cpp reads "content", vLLM "prompt" (and "model"); both ignore the others
    return {
        "content": text,
        "prompt": text,
        "model": model,
        "add_special": False,
        "add_special_tokens": False,
    }


def _parse_completion(reply: Any) -> tuple[str, Finish]:
    try:
        if isinstance(reply, dict) and reply.get("error"):
            raise _server_error(reply["error"], "the server")
        choice = reply["choices"][0]
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        usage = reply.get("usage") or {}
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GenerationError(
            f"the server's reply has no completion: {str(reply)[:200]}", "bad_response"
        ) from exc
    finish = Finish(
        choice.get("finish_reason"),
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        dict(reply.get("timings") or {}),
    )
    return str(text), finish


def _server_error(err: Any, where: str) -> GenerationError:
    message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
    if _is_context_message(message):
        return GenerationError(
            f"the prompt does not fit the model's context ({message}); lower "
            "--context-tokens or --max-tokens",
            "context_overflow",
        )
    return GenerationError(f"{where} reported an error: {message}", "server_error")


def _is_context_message(message: str) -> bool:
    """An error text about the prompt's length (not Go's "context deadline exceeded" or a
    cancelled request context)."""
    m = message.lower()
    if "deadline" in m or "cancel" in m:
        return False
    about_size = "token" in m or any(
        f"context {w}" in m for w in ("length", "window", "size", "limit")
    )
    return about_size and any(w in m for w in ("exceed", "too long", "maximum", "length"))
