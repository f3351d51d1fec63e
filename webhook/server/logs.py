"""Structured logs: one JSON object per line on stderr, for `kubectl logs | jq`.

Every record has ``ts`` (RFC 3339, UTC, milliseconds), ``level``, ``logger`` and ``msg``;
the ``extra={...}`` fields of the call are merged in. One line per admission::

    {"ts":"2025-01-01T12:00:00.123Z","level":"info","logger":"tenantguard.admission",
     "msg":"admission","event":"admission","endpoint":"validate","uid":"...","operation":"CREATE",
     "namespace":"shop","kind":"Pod","object":"web-1","tenant":"customer-a","decision":"denied",
     "rules":["cluster-baseline/podSecurity"],"warnings":0,"patch_ops":0,"dry_run":false,
     "generation":"5f0c...","latency_ms":0.41}

Allowed and denied admissions log at ``info`` (a denial is the policy working), the
ones whose evaluation raised at ``error``; ``--log-level warning`` keeps only problems.

Request bodies never reach the logs. aiohttp logs what it cannot parse or finish (a
malformed request line, a client gone mid-body) with a traceback whose exception text
may quote the bytes received; :class:`HttpErrorFilter` rewrites those records into one
``warning`` line with the client address and the error's kind (``event: http_error``),
dropping the traceback and the exception text.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()

# LogRecord's own attributes: everything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _ts(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:  # one strftime per second, not per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self._ts(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key[0] != "_":
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=_default).decode()

    def line(self, logger: str, level: str, msg: str, fields: dict[str, Any], created: float) -> bytes:
        """The same JSON object as :meth:`format` makes of a record with these fields, as bytes."""
        out: dict[str, Any] = {"ts": self._ts(created, (created - int(created)) * 1000), "level": level,
                               "logger": logger, "msg": msg}
        out.update(fields)
        return orjson.dumps(out, default=_default, option=orjson.OPT_APPEND_NEWLINE)


class FastLine:
    """One ``info`` line per admission, written without LogRecord machinery: the same JSON fields as
    ``logger.info(msg, extra=fields)`` would give, and the logger's level still decides. Falls back to the
    logger when it has no JSON handler of ours (tests capturing records, a host application's logging)."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger

    def _handler(self) -> logging.StreamHandler[TextIO] | None:
        """Our JSON handler when it is the only one a record of this logger would reach (``configure``
        made it so); None otherwise (then the record goes the usual way)."""
        found: list[logging.Handler] = []
        logger: logging.Logger | None = self.logger
        while logger is not None:
            if logger.filters:
                return None
            found.extend(logger.handlers)
            logger = logger.parent if logger.propagate else None
        if len(found) != 1:
            return None
        handler = found[0]
        if isinstance(handler, logging.StreamHandler) and isinstance(handler.formatter, JsonFormatter) and \
                all(isinstance(f, HttpErrorFilter) for f in handler.filters):
            return handler
        return None

    def info(self, msg: str, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        handler = self._handler()
        if handler is None:
            self.logger.info(msg, extra=fields)
            return
        formatter = handler.formatter
        assert isinstance(formatter, JsonFormatter)
        data = formatter.line(self.logger.name, "info", msg, fields, time.time())
        stream = handler.stream
        with handler.lock or _NO_LOCK:
            buffer = getattr(stream, "buffer", None)
            if buffer is not None:
                buffer.write(data)
            else:
                stream.write(data.decode())
            stream.flush()


class HttpErrorFilter(logging.Filter):
    """aiohttp's error records, without what the client sent: the kind of error and the client address."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiohttp"):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "http error: request refused or cut short"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.event = "http_error"
        record.error = type(exc).__name__ if exc is not None else "unknown"
        status = getattr(exc, "code", None)
        if isinstance(status, int):
            record.status = status
        if isinstance(remote, str):
            record.remote = remote
        return True


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr) for the ``tenantguard`` loggers; aiohttp's own errors too."""
    # thread/process names are not logged: spare computing them on every line (documented switches)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(HttpErrorFilter())
    for name in ("tenantguard", "aiohttp"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger("tenantguard").setLevel(level.upper())
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    logging.getLogger("aiohttp.access").disabled = True  # one line per admission is ours
