"""``aigc serve``: the OpenAI-compatible API, prompt and run APIs, playground and report viewer on one local server.

Settings, later wins: defaults, the ``serve:`` section of aigc.yaml (host, port, api_key, store, prompts_dirs,
suites_dir, max_body_bytes, max_tokens_limit, max_queue), ``AIGC_SERVE_API_KEY``, then flags.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aigc_app.cli.output import console, err_console

if TYPE_CHECKING:
    from aigc_app.server import ServeSettings

__all__ = ["serve_cmd"]

KEY_ENV = "AIGC_SERVE_API_KEY"


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1; others need an API key].")
@click.option("--port", type=int, default=None, help="Port [default: 8000; 0 picks a free one].")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), default=None, help="aigc.yaml [default: ./aigc.yaml]."
)
@click.option(
    "--api-key",
    default=None,
    help=f"Require this key (Bearer) on every route but /health; ${KEY_ENV} keeps it out of `ps`.",
)
@click.option("--store", type=click.Path(path_type=Path), default=None, help="Results store for the viewer.")
@click.option(
    "--prompts-dir", "prompts_dirs", type=click.Path(path_type=Path), multiple=True, help="Extra prompt library."
)
@click.option("--max-queue", type=int, default=None, help="Requests queued per local model before 429 [256].")
def serve_cmd(
    host: str | None,
    port: int | None,
    config_path: Path | None,
    api_key: str | None,
    store: Path | None,
    prompts_dirs: tuple[Path, ...],
    max_queue: int | None,
) -> None:
    """Serve the configured models (OpenAI's API, aigc:router included), prompts, runs and the playground."""
    import os

    flags = {"host": host, "port": port, "api_key": api_key, "store": store, "max_queue": max_queue}
    if prompts_dirs:
        flags["prompts_dirs"] = prompts_dirs
    env = {"api_key": os.environ.get(KEY_ENV) or None}
    settings = build_settings(config_path, env, flags)
    _run(settings)


def build_settings(config_path: Path | None, env: dict[str, Any], flags: dict[str, Any]) -> ServeSettings:
    """Defaults, the config file's ``serve:`` section, environment, flags; a bad value is a ConfigError naming
    the key (never the value: it may be the key)."""
    from pydantic import ValidationError

    from aigc_app.server import ServeSettings
    from aigc_app.server.security import check_bind
    from aigc_app.settings import DEFAULT_CONFIG_FILE, ConfigError

    file = config_path or Path(DEFAULT_CONFIG_FILE)
    section = _serve_section(file) if config_path or file.exists() else {}
    merged = {**section, **{k: v for k, v in env.items() if v}, **{k: v for k, v in flags.items() if v is not None}}
    merged["config"] = file if config_path or file.exists() else None
    try:
        settings = ServeSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, file, env, flags)) from None
    key = settings.api_key.get_secret_value() if settings.api_key else None
    check_bind(settings.host, key)
    for folder in settings.prompts_dirs:
        if not folder.is_dir():
            where = "--prompts-dir" if flags.get("prompts_dirs") else f"{file}: serve.prompts_dirs"
            raise ConfigError(f"{where}: {folder} is not a folder (a prompt library holds <task>/<name>/ folders)")
    return settings


def _problems(exc: Any, file: Path, env: dict[str, Any], flags: dict[str, Any]) -> str:
    """Each bad setting named where it came from: ``--max-queue``, ``$AIGC_SERVE_API_KEY`` or ``FILE: serve.key``."""
    out = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else ""
        if flags.get(key) is not None:
            where = "--" + key.replace("_", "-").removesuffix("s")  # prompts_dirs: --prompts-dir
        elif env.get(key):
            where = f"${KEY_ENV}"
        else:
            where = f"{file}: serve.{'.'.join(map(str, error['loc']))}"
        out.append(f"{where}: {error['msg']}")
    return "; ".join(out)


def _serve_section(file: Path) -> dict[str, Any]:
    import yaml

    from aigc_app.settings import ConfigError

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read it ({type(exc).__name__})") from None
    section = data.get("serve") if isinstance(data, dict) else None
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{file}: 'serve:' must be a mapping (host, port, api_key, ...)")
    if "config" in section:
        raise ConfigError(f"{file}: serve.config is not a key here (this file is the config)")
    return section


def _run(settings: ServeSettings) -> None:
    import uvicorn

    from aigc_app.server import create_app

    sock = listen_socket(settings.host, settings.port)  # a port in use fails now, before minutes of loading
    port = sock.getsockname()[1]
    app = create_app(settings)
    services = app.state.services
    _ = services.models_config  # a bad models section fails now, as one line
    hub = services.hub
    ids = hub.ids()
    out = err_console()
    for model_id in ids:
        out.print(f"  model [bold]{model_id}[/]")
    loaded = hub.warm()
    if loaded:
        out.print(f"  loaded {', '.join(loaded)}")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    auth = "API key required (Authorization: Bearer ...)" if settings.api_key else "no API key (loopback only)"
    console().print(f"aigc serve on http://{host}:{port}  (OpenAI base_url http://{host}:{port}/v1; {auth})")
    console().file.flush()
    # No access log: a request line can carry ?key=... (the one-time sign-in exchange).
    config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=2048)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops (uvicorn re-raises the signal)
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn logged why; its own exit code for a failed start


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port); an address in use or not of this machine is a ConfigError
    saying what to change."""
    from aigc_app.settings import ConfigError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise ConfigError(f"--host {host}: not an address or a name this machine resolves") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"{host}:{port} is in use: pass another --port (0 picks a free one), or stop the server that holds it"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}): pass --host with an address of this machine"
        ) from None
    return sock
