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
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
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
        return json.dumps(entry, separators=(",", ":"), default=str)


def logging_config(log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: access lines on stdout,
    everything else (uvicorn's and ours) on stderr, INFO and up."""
    formatter: dict[str, Any] = (
        {"()": "authserver.observability.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
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
