"""Log output of `serve`: one JSON object per line (LOG_FORMAT=json, the default) or plain text.

JSON lines carry `ts` (ISO 8601 UTC, milliseconds), `level`, `logger`, then either the fields of
a structured record (the access log's `extra={"fields": {...}}`) or `message`, plus the current
request's `request_id` when the line was logged while answering a request.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

# The X-Request-ID of the request being answered (set by the access-log middleware).
request_id_var: ContextVar[str | None] = ContextVar("authserver_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1
        self._second_text = ""
        self._millisecond = -1
        self._millisecond_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry = self._head(record.name, record.levelname, record.created, record.msecs)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
            request_id = request_id_var.get()
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return _dumps(entry)

    def timestamp(self, created: float) -> str:
        """The `ts` of a line written at `created` (`time.time()`), as `format` writes it for a
        record created then: ISO 8601 UTC with milliseconds. The text is kept for the rest of
        its millisecond (at 20,000 requests a second, the next 20 access lines)."""
        second = int(created)
        millisecond = second * 1000 + int((created - second) * 1000)  # `_msecs`, inlined
        if millisecond != self._millisecond:
            self._millisecond = millisecond
            self._millisecond_text = f"{self._timestamp(created)}.{millisecond % 1000:03d}Z"
        return self._millisecond_text

    def _head(self, name: str, levelname: str, created: float, msecs: float) -> dict[str, Any]:
        return {
            "ts": f"{self._timestamp(created)}.{int(msecs):03d}Z",
            "level": levelname.lower(),
            "logger": name,
        }

    def _timestamp(self, created: float) -> str:
        """The date and time to the second; one access line after another shares it."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return self._second_text


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with `logging.Formatter`'s default `asctime` (local time, milliseconds after a
    comma); the date and time to the second are formatted once per second."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created, record.msecs)

    def access_line(self, name: str, created: float, msg: str, args: tuple[Any, ...]) -> str:
        """What `format` returns for an INFO record of logger `name` created at `created` (time
        .time()) with `msg % args` (and no exception), without the record."""
        return f"{self._asctime(created, _msecs(created))} INFO {name}: {msg % args}"

    def _asctime(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        if not self.default_msec_format:
            return self._second_text
        return self.default_msec_format % (self._second_text, msecs)


def _msecs(created: float) -> int:
    """The milliseconds of `time.time()`'s `created`, as `logging.LogRecord` takes them."""
    return int((created - int(created)) * 1000)


def _dumps(entry: dict[str, Any]) -> str:
    return json.dumps(entry, separators=(",", ":"), default=str)


def logging_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: access lines on stdout,
    everything else (uvicorn's and ours) on stderr, INFO and up."""
    formatter = "JsonFormatter" if log_format == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": f"authserver.observability.logs.{formatter}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "authserver": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "authserver.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        },
    }
