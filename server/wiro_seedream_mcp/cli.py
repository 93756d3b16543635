"""Command line: ``serve`` (the default, MCP over stdio; ``--http`` for streamable HTTP),
``emulator``, ``demo``, ``doctor``, ``install`` and ``token``.

Only ``serve`` is on the start-up path of a host, so everything else is imported inside
the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__

log = logging.getLogger("wiro_seedream_mcp")


# The HTTP stack logs every request at INFO: in a host's log file that is noise beside the
# server's own line per task event, so its requests show at DEBUG only.
_CHATTY = ("httpx2", "httpcore2", "httpx", "httpcore")


def _setup_logging() -> None:
    """Logs go to stderr: stdout carries JSON-RPC only."""
    level = os.environ.get("WIRO_LOG_LEVEL", "INFO").upper()
    level = level if level in logging.getLevelNamesMapping() else "INFO"
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLevelNamesMapping()[level] > logging.DEBUG:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wiro-seedream-mcp",
        description="MCP server for ByteDance Seedream 3.0 images on Wiro.ai.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve MCP over stdio (the default), or over HTTP with --http")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="--http: address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="--http: port to listen on (default 8000)")
    serve.add_argument("--path", default="/mcp", help="--http: the MCP endpoint's path (default /mcp)")
    serve.add_argument(
        "--stateless",
        action="store_true",
        help="--http: no sessions, so any replica can answer any request of an older client",
    )
    serve.add_argument(
        "--emulator",
        action="store_true",
        help="serve against a built-in Wiro emulator: no key needed, test pictures, nothing paid",
    )
    serve.add_argument(
        "--emulator-speed", type=float, default=1.0, help="the emulator's time factor (default 1)"
    )

    emu = sub.add_parser("emulator", help="run a local Wiro emulator for this model")
    emu.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787)")
    emu.add_argument("--api-key", default=None, help="API key the emulated project accepts")
    emu.add_argument("--api-secret", default=None, help="API secret of the emulated project")
    emu.add_argument("--key-only", action="store_true", help="emulate a key-only project (no signature)")
    emu.add_argument("--speed", type=float, default=1.0, help="time factor: 2 = twice as fast (default 1)")
    emu.add_argument(
        "--dialect",
        choices=("reference", "docs"),
        default="reference",
        help="answer in the reference page's shapes (default) or in those Wiro's docs and SDKs show",
    )
    emu.add_argument("--no-socket", action="store_true", help="refuse the task socket (clients must poll)")
    emu.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="KEY[:SECRET]",
        help="another project on the same emulator, with its own key and tasks (repeatable)",
    )

    demo = sub.add_parser("demo", help="generate one image end to end through a real MCP client session")
    demo.add_argument("--prompt", default=None, help="what to draw (default: the model's example prompt)")
    demo.add_argument("--size", default="1024x1024", help="one of the eight sizes (default 1024x1024)")
    demo.add_argument("--out", default=None, help="folder to save the image in (default: a temp folder)")
    doctor = sub.add_parser("doctor", help="check the configuration and that Wiro accepts the credentials")
    doctor.add_argument(
        "--host",
        default=None,
        help="check the entry installed in this host (claude-desktop, cursor, vscode, claude-code) "
        "with the command, arguments and environment the host starts it with",
    )
    doctor.add_argument("--config", type=Path, default=None, help="--host: the host's file, if elsewhere")
    doctor.add_argument("--workspace", type=Path, default=None, help="--host vscode: the workspace folder")
    token = sub.add_parser("token", help="make a static token for serve --http (WIRO_HTTP_TOKENS)")
    token.add_argument("names", nargs="+", help="who each token is for (e.g. alice)")

    from .install import HOSTS

    inst = sub.add_parser("install", help="add this server to a host's MCP configuration")
    inst.add_argument("host", choices=HOSTS, help="the host to add it to")
    inst.add_argument("--dry-run", action="store_true", help="print what would be written; change nothing")
    inst.add_argument(
        "--config", type=Path, default=None, help="the host's file, when it is not where expected"
    )
    inst.add_argument(
        "--workspace", type=Path, default=None, help="VS Code: the workspace folder (default: this one)"
    )
    inst.add_argument(
        "--emulator",
        action="store_true",
        help="an entry that runs on the built-in Wiro emulator: try the host for free, no key needed",
    )
    save = inst.add_mutually_exclusive_group()
    save.add_argument(
        "--output-dir",
        type=Path,
        default=Path.home() / "Pictures" / "wiro-seedream",
        help="folder the server saves images in (default ~/Pictures/wiro-seedream)",
    )
    save.add_argument("--no-save", action="store_true", help="do not save images (links and previews only)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    if command == "serve":
        http = None
        if getattr(args, "http", False):
            http = {"host": args.host, "port": args.port, "path": args.path, "stateless": args.stateless}
        serve(
            emulated=getattr(args, "emulator", False), speed=getattr(args, "emulator_speed", 1.0), http=http
        )
    elif command == "token":
        from .config import ConfigError
        from .http import describe_token, new_token, token_names

        try:
            names = token_names(args.names)
        except ConfigError as exc:
            sys.exit(f"wiro-seedream-mcp token: {exc}")
        print("\n\n".join(describe_token(name, new_token()) for name in names))
    elif command == "emulator":
        run_emulator(args)
    elif command == "demo":
        from .demo import run_demo

        sys.exit(run_demo(prompt=args.prompt, size=args.size, out=args.out))
    elif command == "doctor":
        from .doctor import run_doctor

        if args.host is not None:
            from .hostcheck import check_host

            sys.exit(check_host(args.host, config=args.config, workspace=args.workspace))
        sys.exit(run_doctor())
    elif command == "install":
        from .install import run_install

        output_dir = None if args.no_save else args.output_dir.expanduser().resolve()
        sys.exit(
            run_install(
                args.host,
                dry_run=args.dry_run,
                config=args.config,
                workspace=args.workspace,
                output_dir=output_dir,
                emulator=args.emulator,
            )
        )


@contextmanager
def long_lived() -> Iterator[None]:
    """Imports that make objects living as long as the process: the MCP SDK defines some two
    thousand pydantic models. The collector stays off while they are made (it would walk them
    again and again, for nothing: about a tenth of the start-up's CPU), and they are then set
    aside from every later collection (``gc.freeze``)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def serve(*, emulated: bool = False, speed: float = 1.0, http: dict[str, Any] | None = None) -> None:
    _setup_logging()
    with long_lived():
        from .app import build_server

        if http is not None:
            import uvicorn  # noqa: F401  (imported here to be counted long-lived)

            http = {**http, "sock": _claim_port(http, emulated=emulated)}

    if not emulated:
        if http is not None:
            _serve_http(None, http)
            return
        build_server().run("stdio")
        return
    import tempfile

    from .config import Settings
    from .emulator import EmulatorServer, Project, WiroEmulator

    project = Project()
    with (
        EmulatorServer(WiroEmulator(project, _timings(speed))) as emulator,
        tempfile.TemporaryDirectory(prefix="wiro-emulated-") as state,
    ):
        log.warning(
            "serving against the built-in Wiro emulator at %s: test pictures, nothing is paid, and "
            "tasks are journaled in a temporary folder",
            emulator.base_url,
        )
        environ = {name: value for name, value in os.environ.items() if not name.startswith("WIRO_API_")}
        environ |= {
            "WIRO_API_KEY": project.api_key,
            "WIRO_API_SECRET": project.api_secret or "",
            "WIRO_API_BASE_URL": emulator.base_url,
            "WIRO_STATE_DIR": state,
        }
        environ.pop("WIRO_SOCKET_URL", None)
        if http is not None:
            _serve_http(environ, http)
            return
        build_server(Settings.from_env(environ)).run("stdio")


def _claim_port(options: dict[str, Any], *, emulated: bool) -> Any:
    """The listening socket for ``serve --http``, made once the settings are known to be servable
    and before anything says it serves: a refused setting or a busy port is then the one line said
    (exit code 2), and nothing listened."""
    import dataclasses

    from pydantic import SecretStr

    from .config import ConfigError, Settings
    from .console import PortInUseError, listening_socket
    from .http import HttpSettings

    try:
        settings = Settings.from_env()
        if emulated:  # the emulator brings a key of its own
            settings = dataclasses.replace(settings, api_key=SecretStr("emulator"))
        HttpSettings.from_env(None, **options).check(settings)
        return listening_socket(options["host"], options["port"], "--port")
    except (ConfigError, PortInUseError) as exc:
        log.error("%s", exc)
        sys.exit(2)


def _serve_http(environ: dict[str, str] | None, options: dict[str, Any]) -> None:
    """``serve --http``: a setting that cannot be served is one line on stderr and exit code 2."""
    from .config import ConfigError, Settings
    from .http import HttpSettings, serve_http

    options = dict(options)
    sock = options.pop("sock")
    try:
        settings = Settings.from_env(environ)
        http = HttpSettings.from_env(environ, **options)
        http.check(settings)
    except ConfigError as exc:
        sock.close()
        log.error("%s", exc)
        sys.exit(2)
    serve_http(settings, http, sock)


def _timings(speed: float) -> Any:
    from .emulator import Timings

    base = Timings()
    speed = speed if speed > 0 else 1.0
    return Timings(
        queue=base.queue / speed,
        prepare=base.prepare / speed,
        generate=base.generate / speed,
        postprocess=base.postprocess / speed,
    )


def run_emulator(args: Any) -> None:
    from .console import PortInUseError, listening_socket
    from .emulator import DEFAULT_KEY, DEFAULT_SECRET, Project, WiroEmulator, serve_forever

    _setup_logging()
    try:
        sock = listening_socket(args.host, args.port, "--port")
    except PortInUseError as exc:
        print(f"wiro-seedream-mcp emulator: {exc}", file=sys.stderr)
        sys.exit(2)
    key = args.api_key or DEFAULT_KEY
    secret = None if args.key_only else (args.api_secret or DEFAULT_SECRET)
    others = [Project(api_key=k, api_secret=s or None) for k, _, s in (a.partition(":") for a in args.also)]
    emulator = WiroEmulator(
        Project(api_key=key, api_secret=secret),
        _timings(args.speed),
        socket=not args.no_socket,
        others=others,
        dialect=args.dialect,
    )
    url = f"http://{args.host}:{args.port}/v1"
    lines = [
        f"Wiro emulator for Seedream 3.0 on {url}",
        "Point the server at it with:",
        f"  export WIRO_API_BASE_URL={url}",
        f"  export WIRO_API_KEY={key}",
        _secret_line(secret),
        "A prompt containing [emulator:fail] fails; one containing [emulator:error] ends task_error.",
    ]
    print("\n".join(lines), file=sys.stderr)
    serve_forever(emulator, args.host, args.port, sock)


def _secret_line(secret: str | None) -> str:
    from .emulator import DEFAULT_SECRET

    if secret is None:
        return "  unset WIRO_API_SECRET   # key-only project"
    shown = secret if secret == DEFAULT_SECRET else "<the secret given with --api-secret>"
    return f"  export WIRO_API_SECRET={shown}"
