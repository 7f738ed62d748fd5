"""One real-or-colorized test, from the command's keys: its folder and answer store, prepared once
(models resolved and loaded, photos chosen, pairs written), and its results published.

A test is stored under `<runs_dir>/humantest/<name>/` (name: `name=`, else the study's). Its
request (study, models, photos, pair-making protocol) is stored with it: the same command serves
the same pairs and link again, and a different request under the same name is refused in one line,
as a study with other settings is, so answers to different pairs never mix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from experiments.common.errors import UsageError
from experiments.humantest.protocol import Protocol
from experiments.humantest.store import AnswerStore

# What makes the pairs or their meaning: a change is another test. The server's address and
# `max_participants` are not part of it.
REQUEST_KEYS = ("study", "models", "photos", "practice", "catch", "time_limit", "size")


@dataclass
class HumanTest:
    folder: Path
    store: AnswerStore
    protocol: Protocol
    tracking_uri: str | None
    study: str | None
    models: list[tuple[str, str]]

    @property
    def image_folder(self) -> Path:
        return self.folder / "images"

    @property
    def token(self) -> str:
        return self.store.token()

    def describe(self) -> str:
        pairs = self.store.pairs()
        counts = pairs["kind"].value_counts().to_dict()
        models = ", ".join(f"{label} ({uri})" for label, uri in self.models)
        return (
            f"real-or-colorized test {self.folder.name}: {counts.get('test', 0)} test pairs "
            f"({len(set(pairs[pairs['kind'] == 'test']['photo']))} photos x {len(self.models)} "
            f"models: {models}), {counts.get('practice', 0)} practice and "
            f"{counts.get('catch', 0)} catch pairs; answers in {self.store.path}"
        )

    def publish(self) -> list[str]:
        """Compute the results from the store and write them to MLflow; the console's lines."""
        from experiments.humantest.results import compute, pairs_picture

        results = compute(self.store, [label for label, _ in self.models])
        lines = results.lines()
        if self.tracking_uri is None:
            return lines
        from experiments.humantest.mlflow_results import HumanTestTracking

        tracking = HumanTestTracking(self.tracking_uri)
        study_run = tracking.study_run_id(self.study) if self.study else None
        with tempfile.TemporaryDirectory() as scratch:
            picture = pairs_picture(self.store, self.image_folder, Path(scratch) / "pairs.png")
            tracking.publish(
                self.models, results.models, results.photos, results.answers,
                results.summary, study_run, picture,
            )  # fmt: skip
        where = "the models' runs" + (" and the study's run" if study_run else "")
        return [*lines, f"results written to {where} in MLflow ({self.tracking_uri})"]


def _tracking_uri(values: dict[str, str]) -> str | None:
    from experiments.report.stored_study import resolve_tracking_uri

    if values.get("tracking_uri"):
        return resolve_tracking_uri("", values["tracking_uri"])
    runs_dir = values.get("runs_dir", "mlruns")
    if not (Path(runs_dir).expanduser() / "mlflow.db").is_file():
        if values.get("study") or any(
            uri.startswith(("models:/", "runs:/")) for uri in values.get("models", "").split(",")
        ):
            return resolve_tracking_uri(runs_dir, None)  # says what is missing
        return None
    return resolve_tracking_uri(runs_dir, None)


def _make_folder(values: dict[str, str], study: str | None) -> Path:
    name = values.get("name") or study or "photos"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name[0] == ".":
        raise UsageError(f"name={name} is not allowed; use letters, digits, -, _ and .")
    folder = Path(values.get("runs_dir", "mlruns")).expanduser() / "humantest" / name
    try:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        probe = folder / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write the test into {folder}: {error.strerror}") from None
    return folder


def open_test(values: dict[str, str], protocol: Protocol) -> HumanTest:
    """The test the keys name, prepared if it is new.

    Raises:
        UsageError: a key out of place, a study or model that cannot be had, no photos, an
            unwritable folder, or a stored test of the same name made with another request.
    """
    study = values.get("study") or None
    if not study and not values.get("models"):
        raise UsageError("say which models to test: study=NAME or models=URI,...")
    tracking_uri = _tracking_uri(values)
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # for the model URIs' resolver
    name = values.get("name") or study or "photos"
    existed = (Path(values.get("runs_dir", "mlruns")).expanduser() / "humantest" / name).exists()
    folder = _make_folder(values, study)
    try:
        return _open(folder, values, protocol, study, tracking_uri)
    except UsageError:
        if not existed:  # a new test that could not be made leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _open(folder: Path, values: dict[str, str], protocol: Protocol, study, tracking_uri):
    try:
        store = AnswerStore(folder / "answers.db")
    except Exception as error:  # not a database, unreadable
        raise UsageError(
            f"the test's store {folder / 'answers.db'} cannot be used: {error}"
        ) from None
    models = _models(values, study, tracking_uri)
    request = {
        "study": study,
        "models": [uri for _, uri in models],
        "photos": values.get("photos") or "the study's test photos",
        **{key: getattr(protocol, key) for key in REQUEST_KEYS if hasattr(protocol, key)},
    }
    if store.is_prepared():
        stored = store.meta("request", {})
        changed = [
            f"{k} {stored.get(k)} -> {request[k]}" for k in request if stored.get(k) != request[k]
        ]
        if changed:
            raise UsageError(
                f"the test {folder.name} was prepared with other settings ({'; '.join(changed)}); "
                "run it again as it was, or give this one its own name= "
            )
    else:
        _prepare(store, folder, models, values, study, tracking_uri, protocol)
        store.set_meta(request=request, study=study, models=models, protocol=protocol.as_dict())
    store.token()
    return HumanTest(folder, store, protocol, tracking_uri, study, models)


def _models(values: dict[str, str], study: str | None, tracking_uri: str | None) -> list:
    if values.get("models"):
        uris = [uri.strip() for uri in values["models"].split(",") if uri.strip()]
        labels = [_label(uri) for uri in uris]
        if len(set(labels)) != len(labels):
            raise UsageError(f"models={values['models']} names one model twice")
        return list(zip(labels, uris, strict=True))
    if tracking_uri is None:
        raise UsageError(
            f"study {study!r}: no MLflow store found; pass runs_dir= or tracking_uri="
        )
    from experiments.humantest.mlflow_results import HumanTestTracking

    return HumanTestTracking(tracking_uri).study_models(study)


def _label(uri: str) -> str:
    """A short name for a model URI: its alias, name/version or file stem."""
    if "@" in uri:
        return uri.rsplit("@", 1)[1]
    if uri.startswith(("models:/", "runs:/")):
        return uri.split(":/", 1)[1].strip("/").replace("/", "-")
    return Path(uri).stem


def _prepare(store, folder, models, values, study, tracking_uri, protocol) -> None:
    from colorize import images
    from colorize.backend import BackendUnavailable, import_keras_quietly

    try:
        import_keras_quietly()  # before anything imports Keras: no native log lines
    except BackendUnavailable as error:
        raise UsageError(str(error)) from None
    from colorize.predict import ModelNotFound, colorize_rgb, load_model
    from experiments.humantest.prepare import TestModel, practice_pool, prepare_pairs

    shutil.rmtree(folder / "images", ignore_errors=True)  # what a cut-short preparation left
    (folder / "images").mkdir()
    photos = _photos(values, study, tracking_uri)
    loaded = []
    for label, uri in models:
        try:
            model, settings = load_model(uri)
        except (ModelNotFound, UsageError) as error:
            raise UsageError(f"model {uri} cannot be loaded: {error}") from None
        loaded.append(
            TestModel(
                label, uri, lambda rgb, m=model, s=settings: colorize_rgb(m, rgb, s["l_scaling"])
            )
        )
    pool = practice_pool({images.array_sha256(rgb) for _, rgb in photos})

    from tqdm.auto import tqdm

    with tqdm(desc="preparing pairs", unit="pair", leave=False, disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        written, pairs = prepare_pairs(folder / "images", loaded, photos, pool, protocol, progress)
    store.add_pairs(written, pairs)
    store.set_meta(photos=[name for name, _ in photos])


def _photos(values, study, tracking_uri):
    from experiments.humantest.photos import folder_photos, study_test_photos

    if values.get("photos"):
        return folder_photos(values["photos"])
    if not study or tracking_uri is None:
        raise UsageError(
            "say which photos to show: photos=DIR (or study=NAME for its test photos)"
        )
    from experiments.humantest.mlflow_results import HumanTestTracking

    tracking = HumanTestTracking(tracking_uri)
    run_id = tracking.study_run_id(study)
    if run_id is None:
        raise UsageError(f"study {study!r} has no study run in {tracking_uri}")
    return study_test_photos(tracking.study_config(run_id).get("data", {}))
