"""Where a study's records live: the default stores of a runs folder, the Optuna storages a study
accepts, and a check that a local SQLite store is whole before anything reads or writes it.

Optuna storages: an RDB URL (`sqlite:///...`, `postgresql+psycopg2://...`, `mysql://...`), whose
heartbeats let another host's dead worker be detected, or `journal:PATH` (an Optuna journal
file), which has no heartbeats: a trial left running by a worker on another host cannot be judged
there, and the study says so instead of guessing.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from experiments.common.errors import UsageError

JOURNAL_PREFIX = "journal:"
SQLITE_HEADER = b"SQLite format 3\x00"


def default_tracking_uri(runs_dir: str | Path) -> str:
    """The MLflow store of a runs folder."""
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / 'mlflow.db'}"


def default_storage(runs_dir: str | Path) -> str:
    """The Optuna storage of a runs folder."""
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / 'optuna.db'}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///...` URL, or None for any other kind of URL."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


def journal_path(url: str) -> Path | None:
    """The file behind a `journal:PATH` storage, or None for any other kind of URL."""
    if not url.startswith(JOURNAL_PREFIX):
        return None
    return Path(url[len(JOURNAL_PREFIX) :].removeprefix("//")).expanduser()


def check_sqlite(url: str, what: str) -> None:
    """Refuse a local SQLite store that is not a whole SQLite database (garbage written into it,
    a truncated copy): one line naming the file, before any library reads it.

    Raises:
        UsageError: the file exists but is damaged or not a SQLite database.
    """
    path = sqlite_path(url)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    advice = "move it aside to start afresh, or restore it from a backup"
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise UsageError(f"{what} {path} is not a SQLite database (damaged?); {advice}")
    try:
        verdict = _quick_check(path, "ro")
    except sqlite3.OperationalError as error:
        if "readonly" not in str(error):
            raise UsageError(f"{what} {path} is damaged ({error}); {advice}") from None
        # A writer killed mid-transaction left a hot journal, which a read-only connection
        # cannot roll back: SQLite's own recovery, done by the next writer, is not damage.
        try:
            verdict = _quick_check(path, "rw")
        except sqlite3.DatabaseError as again:
            raise UsageError(f"{what} {path} is damaged ({again}); {advice}") from None
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{what} {path} is damaged ({error}); {advice}") from None
    if verdict != "ok":
        raise UsageError(f"{what} {path} is damaged ({verdict.splitlines()[0]}); {advice}")


def _quick_check(path: Path, mode: str) -> str:
    """SQLite's `quick_check` of the database at `path`, opened in `mode` ("ro" or "rw")."""
    connection = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=60)
    try:
        return connection.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        connection.close()


def open_optuna_storage(url: str, heartbeat: int | None = None, retry=None):
    """The Optuna storage behind `url`, with heartbeats where the storage has them.

    Raises:
        UsageError: the URL cannot be opened (bad URL, unreachable server, missing driver, a
            damaged file).
    """
    import optuna

    journal = journal_path(url)
    try:
        if journal is not None:
            from optuna.storages.journal import JournalFileBackend

            journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        check_sqlite(url, "Optuna storage")
        engine_kwargs = {}
        if url.startswith("sqlite"):
            # Several workers share one SQLite file: wait for its lock instead of failing at once.
            engine_kwargs = {"connect_args": {"timeout": 60}}
        options = {}
        if heartbeat:
            options = {
                "heartbeat_interval": heartbeat,
                "grace_period": 3 * heartbeat,
                "heartbeat_stale_trial_callback": retry,
            }
        from experiments.stores.heartbeats import LivenessStorage

        return LivenessStorage(url, engine_kwargs=engine_kwargs, **options)
    except UsageError:
        raise
    except Exception as error:  # bad URL, unreachable server, missing driver, damaged journal
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"storage {url} cannot be opened: {first[:300]}") from None


def has_heartbeats(storage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(storage)


CONNECT_TIMEOUT = 5  # seconds a server is given to answer before it is said unreachable
CONNECT_TIMEOUT_ARGS = {  # how each database driver is told
    "postgresql": {"connect_timeout": CONNECT_TIMEOUT},
    "mysql": {"connect_timeout": CONNECT_TIMEOUT},
}


def check_reachable(url: str, what: str) -> None:
    """Refuse a store on a server that does not answer (an MLflow server's health page, or a
    database server) at once: MLflow would retry for minutes first. Local files pass.

    Raises:
        UsageError: `what` (e.g. "tracking_uri") at `url` is unreachable, names a database
            driver that is not installed, or refuses the login.
    """
    from experiments.common.redact import mask_secrets, masked_url

    def refuse(error: BaseException) -> UsageError:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        cause = re.search(r"\[Errno -?\d+\][^\"')]*", first)  # under layers of wrapping
        shown = cause.group(0).strip() if cause else first
        return UsageError(f"{what} {masked_url(url)} is unreachable: {mask_secrets(shown)[:300]}")

    if url.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(url.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT)
            response.raise_for_status()
        except requests.RequestException as error:
            raise refuse(error) from None
        return
    if "://" not in url or url.startswith(("sqlite:", "file:")):
        return
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:  # not a database URL: MLflow judges it
        return
    arguments = CONNECT_TIMEOUT_ARGS.get(parsed.get_backend_name(), {})
    engine = None
    try:
        engine = sqlalchemy.create_engine(parsed, connect_args=arguments)
        with engine.connect():
            pass
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise UsageError(
            f"{what} {masked_url(url)} needs a database driver that is not installed: {error}"
        ) from None
    except Exception as error:  # no server, a login refused: several types
        raise refuse(getattr(error, "orig", None) or error) from None
    finally:
        if engine is not None:
            engine.dispose()
