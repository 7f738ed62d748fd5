"""Can people tell? A real-or-colorized test with people, served as a web page.

    python -m experiments.humantest study=losses              # prepare once, print the link, serve
    python -m experiments.humantest study=losses --share      # on the network, token in the link
    python -m experiments.humantest study=losses --results    # the results so far, into MLflow
    python -m experiments.humantest --help

The models are the study's champion and the best of each group it compares (`models=` takes any
model URIs instead); the photos are the test photos of the data the study trained on
(`photos=DIR` takes a folder). The pairs are prepared once into `<runs_dir>/humantest/<name>/`,
with every answer; rerunning the same command serves the same test, and the same link, again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading

from experiments.common.errors import USAGE_EXIT, UsageError
from experiments.humantest.protocol import Protocol
from experiments.settings.overrides import parse

FLAGS = ("--share", "--results", "--help")
KEYS = (
    "study", "models", "photos", "name", "runs_dir", "tracking_uri", "host", "port",
    *Protocol.LIMITS,
)  # fmt: skip
DEFAULT_PORT = 8765
log = logging.getLogger("experiments.humantest")


def help_text() -> str:
    defaults = Protocol()
    return "\n".join(
        [
            "usage: python -m experiments.humantest study=NAME [key=value ...] [--share] "
            "[--results]",
            "",
            "Shows people pairs (an original photo and its colorization from the original's L,",
            "side by side, the original on a random side) and asks which is the original; the",
            "fool rate of each model, with its exact 95 % interval, goes to MLflow and the report.",
            "",
            "  --share     listen on every address (default 127.0.0.1 only); the link carries a",
            "              random token, and requests without it are refused",
            "  --results   print the results so far and write them to MLflow; serve nothing",
            "  --help      this text",
            "",
            "keys:",
            "  study=NAME          the study whose models are tested: its champion and the best of",
            "                      each group it compares (models:/NAME@champion, @<key>-<value>)",
            "  models=URI,...      other models instead (models:/..., runs:/..., a .keras file)",
            "  photos=DIR          the photos to judge (default: the study's test photos: the 7",
            "                      landscape test photos, or the validation scenes of its data)",
            "  name=NAME           the test's name (default: the study's); a new name, a new test",
            "  runs_dir=mlruns     where the study's stores are; the test goes to",
            "                      <runs_dir>/humantest/<name>/",
            "  tracking_uri=URL    the MLflow store (default sqlite:///<runs_dir>/mlflow.db)",
            f"  host=127.0.0.1      the address to listen on; port={DEFAULT_PORT} (0: any free)",
            f"  practice={defaults.practice}          practice pairs with feedback first (not counted)",
            f"  catch={defaults.catch}             catch pairs (original against gray): a participant",
            "                      who misses one is reported apart",
            "  time_limit=0        seconds each pair is shown (0: until the answer)",
            f"  size={defaults.size}            the side in pixels both photos of a pair are cut to",
            f"  max_participants={defaults.max_participants}  sessions the server starts at most",
            "",
            "examples:",
            "  python -m experiments.humantest study=losses",
            "  python -m experiments.humantest study=losses data.source=... time_limit=1 --share",
            "  python -m experiments.humantest models=models:/optimizers@champion photos=my_photos",
        ]
    )


def protocol_of(values: dict[str, str]) -> Protocol:
    """The protocol, each key checked against its bounds."""
    chosen = {}
    for key, (low, high) in Protocol.LIMITS.items():
        if key not in values:
            continue
        kind = type(low)
        try:
            value = kind(values[key])
        except ValueError:
            raise UsageError(f"{key}={values[key]} is not a {kind.__name__}") from None
        if not low <= value <= high:
            raise UsageError(f"{key}={values[key]} is out of range; allowed: {low} to {high}")
        chosen[key] = value
    return Protocol(**chosen)


def main(argv: list[str] | None = None) -> int:
    from experiments.common.command import command_args

    args = command_args(argv, help_text)
    if args is None:
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    flags = {arg for arg in args if arg in FLAGS}
    try:
        values = parse([a for a in args if a not in FLAGS], KEYS, flags=FLAGS)
        from experiments.humantest.session import open_test

        test = open_test(values, protocol_of(values))
        if "--results" in flags:
            print("\n".join(test.publish()))
            return 0
        listener = _listen(values, "--share" in flags)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    return serve(test, listener, "--share" in flags)


def _listen(values: dict[str, str], share: bool) -> socket.socket:
    host = values.get("host") or ("0.0.0.0" if share else "127.0.0.1")
    if not share and host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(f"host={host} serves the test on the network: add --share")
    try:
        port = int(values.get("port", DEFAULT_PORT))
    except ValueError:
        raise UsageError(f"port={values['port']} is not a number") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port={port} is out of range; allowed: 0 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    listener.listen(128)
    return listener


def shared_addresses() -> list[str]:
    """This machine's IPv4 addresses on its networks (loopback aside), as others would type
    them; the host name where it has none."""
    import psutil

    found = [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]
    return found or [socket.gethostname()]


def serve(test, listener: socket.socket, share: bool) -> int:
    import uvicorn

    from experiments.humantest.server import make_app

    host, port = listener.getsockname()[:2]
    if host not in ("0.0.0.0", "::"):
        shown = [host]
    else:
        shown = shared_addresses() if share else ["127.0.0.1"]
    publishing = threading.Lock()
    wanted = threading.Event()

    def publisher() -> None:  # one publication at a time; sessions ending meanwhile share one
        while True:
            wanted.wait()
            wanted.clear()
            with publishing:
                try:
                    test.publish()
                except Exception as error:  # the answers are stored; MLflow can wait
                    log.warning("results not written to MLflow yet: %s", error)

    threading.Thread(target=publisher, daemon=True).start()

    def publish_quietly() -> None:  # after each finished session
        wanted.set()

    app = make_app(test.store, test.image_folder, test.protocol, on_finished=publish_quietly)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    print(test.describe())
    for address in shown:
        where = f"[{address}]" if ":" in address else address
        print(
            f"open this link (share it with the participants): "
            f"http://{where}:{port}/?t={test.token}"
        )
    print("answers are stored as they are given; Ctrl-C stops the server", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop serving, then publish
        server.run(sockets=[listener])
    with publishing:
        try:
            lines = test.publish()
        except Exception as error:
            print(f"error: results not written to MLflow: {error}", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... --help | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
