"""``llmapp serve``: the OpenAI-compatible HTTP API (:mod:`llmapp.api`)."""

from __future__ import annotations

import argparse
import ipaddress
import os

from llmapp import config
from llmapp.cli.common import provider_args, settings_from
from llmapp.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the CLI's subparsers."""
    serve = sub.add_parser("serve", help="an OpenAI-compatible chat completions API")
    serve.add_argument("--host", default=config.API_HOST,
                       help=f"address to listen on (default {config.API_HOST}; anything but "
                            "loopback needs LLMAPP_API_KEY)")
    serve.add_argument("--port", type=int, default=config.API_PORT)
    serve.add_argument("--workers", type=int, default=1,
                       help="processes, each with its own copy of the model (default 1)")
    serve.add_argument("--log-level", default="info",
                       choices=("critical", "error", "warning", "info", "debug"))
    provider_args(serve)
    serve.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    """``llmapp serve``: run uvicorn until interrupted. Refuses (exit 2) to
    listen beyond loopback without ``LLMAPP_API_KEY``."""
    import uvicorn

    settings = settings_from(args)
    if not is_loopback(args.host) and settings.api_key is None:
        raise ConfigError(f"Refusing to listen on {args.host} without an API key: set "
                          "LLMAPP_API_KEY (clients then send Authorization: Bearer <key>), or "
                          "listen on 127.0.0.1.")
    if args.workers < 1:
        raise ConfigError("--workers must be 1 or more.")
    # The command line's choices reach every worker process through the environment.
    for name in ("LLMAPP_PROVIDER", "OPENAI_COMPATIBLE_BASE_URL"):
        if settings.source(name) == "command line":
            value = getattr(settings, "provider" if name == "LLMAPP_PROVIDER"
                            else "compatible_base_url")
            os.environ[name] = value
    if args.model:
        from llmapp.providers import get_provider

        os.environ[get_provider(settings.provider_choice()[0]).model_setting] = args.model
    uvicorn.run("llmapp.api.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level,
                log_config=log_config(args.log_level), timeout_graceful_shutdown=10)
    return 0


def log_config(level: str) -> dict:
    """uvicorn's logging configuration, plus llmapp's own loggers at ``level``
    on the same stderr handler: a 500's traceback (logged at ERROR by
    :func:`llmapp.api.service.api_error`) shows at the default ``info``.
    uvicorn applies it in every worker process too."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config_ = copy.deepcopy(LOGGING_CONFIG)
    config_["loggers"]["llmapp"] = {"handlers": ["default"], "level": level.upper(),
                                    "propagate": False}
    return config_
