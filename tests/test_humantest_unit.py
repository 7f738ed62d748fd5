"""The real-or-colorized test's parts, each alone: the protocol's plans, the answer store's
refusals and concurrency, the statistics against worked examples, and the prepared images."""

from __future__ import annotations

import random
import threading
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from experiments.humantest import verdicts as v
from experiments.humantest.prepare import gray_of, prepare_pairs, square_crop
from experiments.humantest.protocol import CATCH, PRACTICE, TEST, Protocol, plan_session
from experiments.humantest.store import AnswerStore, Refused

pytestmark = pytest.mark.fast


def _store(tmp_path, models=("a", "b"), photos=("p1", "p2", "p3"), practice=2, catch=2):
    store = AnswerStore(tmp_path / "answers.db")
    pairs, images = [], {}
    for kind, count in ((PRACTICE, practice), (CATCH, catch)):
        for index in range(count):
            pairs.append({"id": f"{kind}{index}", "kind": kind, "model": "a", "photo": f"x{index}",
                          "original_image": f"{kind}{index}o", "other_image": f"{kind}{index}c"})  # fmt: skip
    for model in models:
        for photo in photos:
            pairs.append({"id": f"{model}-{photo}", "kind": TEST, "model": model, "photo": photo,
                          "original_image": f"{model}{photo}o", "other_image": f"{model}{photo}c"})  # fmt: skip
    for pair in pairs:
        images[pair["original_image"]] = "o.png"
        images[pair["other_image"]] = "c.png"
    store.add_pairs(images, pairs)
    return store


def test_a_plan_has_practice_first_then_each_photo_once_per_model_and_catch_pairs_mixed_in():
    tests = [(f"{m}-{p}", m, p) for m in "ab" for p in ("p1", "p2", "p3")]
    orders, sides = set(), Counter()
    for seed in range(40):
        plan = plan_session(tests, ["pr0", "pr1"], ["c0", "c1"], random.Random(seed))
        assert [s.kind for s in plan[:2]] == [PRACTICE, PRACTICE]
        assert sorted(s.pair_id for s in plan[2:] if s.kind == TEST) == sorted(t[0] for t in tests)
        assert sorted(s.pair_id for s in plan if s.kind == CATCH) == ["c0", "c1"]
        assert [s.position for s in plan] == list(range(len(plan)))
        orders.add(tuple(s.pair_id for s in plan[2:]))
        sides.update(s.original_side for s in plan)
    assert len(orders) == 40  # an order of each participant's own
    assert 0.4 < sides["left"] / sum(sides.values()) < 0.6  # the original's side at random


def test_the_store_refuses_an_answer_twice_unshown_unplanned_or_after_the_end(tmp_path):
    store = _store(tmp_path)
    participant, total = store.start("normal", "", limit=10)
    assert total == 2 + 6 + 2
    with pytest.raises(Refused, match="not shown"):
        store.answer(participant, 0, "left", 500)
    with pytest.raises(Refused, match="no such pair"):
        store.answer(participant, total, "left", 500)
    with pytest.raises(Refused, match="unknown participant"):
        store.answer("0" * 32, 0, "left", 500)
    step = store.next_step(participant)
    assert step.position == 0 and step.practice
    first = store.answer(participant, 0, "left", 500)
    assert first["practice"] and first["correct"] == (first["original_side"] == "left")
    with pytest.raises(Refused, match="answered already"):
        store.answer(participant, 0, "right", 500)
    while (step := store.next_step(participant)) is not None:
        result = store.answer(participant, step.position, "right", 400)
        assert (result["correct"] is None) == (not step.practice)  # feedback on practice only
    assert result["done"]
    with pytest.raises(Refused, match="ended"):
        store.answer(participant, total - 1, "left", 500)
    answers = store.answers()
    assert len(answers) == total and answers["position"].is_unique
    assert set(answers.loc[answers["position"] == 0, "answer"]) == {"left"}  # the first kept
    with pytest.raises(Refused, match="at most 1"):
        store.start("normal", "", limit=1)


def test_concurrent_answers_are_all_stored_once(tmp_path):
    store = _store(tmp_path)
    people = [store.start("normal", "none", limit=100)[0] for _ in range(12)]
    errors = []

    def answer_all(participant):
        try:
            while (step := store.next_step(participant)) is not None:
                store.answer(participant, step.position, "left", 300)
                with pytest.raises(Refused):  # a double click arriving late
                    store.answer(participant, step.position, "right", 300)
        except Exception as error:  # pragma: no cover - the assertion below shows it
            errors.append(error)

    threads = [threading.Thread(target=answer_all, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    answers = store.answers()
    assert len(answers) == 12 * 10
    assert (answers.groupby("participant")["position"].nunique() == 10).all()
    assert store.participants()["finished"].notna().all()


def test_the_fool_rate_interval_and_test_match_worked_examples():
    # 0 of 40 fooled: the exact upper bound solves (1 - p)^40 = 0.025; p-value 2 * 0.5^40
    none = v.FoolRate(0, 40)
    assert none.interval()[0] == 0.0
    assert none.interval()[1] == pytest.approx(1 - 0.025 ** (1 / 40), abs=1e-9)
    assert none.p_value() == pytest.approx(2 * 0.5**40, rel=1e-9)
    assert none.verdict() == "reproduced"
    # 5 of 10: Clopper-Pearson 0.187086 to 0.812914 (tables of the beta quantiles)
    half = v.FoolRate(5, 10)
    assert half.interval() == pytest.approx((0.187086, 0.812914), abs=1e-6)
    assert half.verdict() == "inconclusive"
    assert v.FoolRate(230, 400).verdict() == "not reproduced"  # 57.5 %: people cannot tell
    assert v.FoolRate(1, 18).verdict() == "reproduced"  # the paper's own numbers
    assert v.FoolRate(0, 0).verdict() == "inconclusive"


def test_newcombe_and_fisher_match_published_examples():
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 - 48/80,
    # method 10 (hybrid score): 0.0524 to 0.3339
    estimate, low, high = v.newcombe_interval(v.FoolRate(56, 70), v.FoolRate(48, 80))
    assert estimate == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # Fisher's exact test of [[0, 10], [10, 0]]: the two extreme tables of 184,756, p = 2/184756
    import pandas as pd

    rows = [
        {"participant": f"p{i}", "kind": TEST, "model": model, "photo": "x",
         "picked_original": picked}
        for i, (model, picked) in enumerate([("a", 1)] * 10 + [("b", 0)] * 10)
    ]  # fmt: skip
    (comparison,) = v.compare_models(pd.DataFrame(rows), ["a", "b"])
    assert comparison.p_value == pytest.approx(2 / 184756, rel=1e-6)
    assert comparison.verdict() == "b fools people more often than a"


def test_holm_keeps_a_single_false_verdict_rare_over_three_models():
    """Three models that fool people alike, 60 answers each, compared in 3 pairs: any false
    verdict in at most 5 % of 1,000 simulated tests (Holm's adjustment keeps the family's level)."""
    rng = np.random.default_rng(0)
    false = 0
    for _ in range(1000):
        fooled = rng.binomial(60, 0.3, size=3)
        rates = {m: v.FoolRate(int(k), 60) for m, k in zip("abc", fooled, strict=True)}
        false += any(c.verdict() != "inconclusive" for c in v.compare_rates(rates))
    assert false / 1000 <= 0.05


def test_catch_pairs_flag_a_participant_and_their_answers_are_counted_apart():
    import pandas as pd

    rows = [
        {"participant": "careful", "kind": CATCH, "model": "gray", "photo": "c",
         "picked_original": 1},
        {"participant": "careless", "kind": CATCH, "model": "gray", "photo": "c",
         "picked_original": 0},
        *({"participant": "careful", "kind": TEST, "model": "a", "photo": f"p{i}",
           "picked_original": 1} for i in range(5)),
        *({"participant": "careless", "kind": TEST, "model": "a", "photo": f"p{i}",
           "picked_original": 0} for i in range(5)),
    ]  # fmt: skip
    table = v.model_table(pd.DataFrame(rows), ["a"])
    counted = table[table["model"] == "a"].iloc[0]
    assert (counted["answers"], counted["fooled"]) == (5, 0)
    apart = table[table["model"].str.startswith("flagged")].iloc[0]
    assert (apart["answers"], apart["fooled"], apart["verdict"]) == (5, 5, "not counted")


def test_the_two_photos_of_a_pair_differ_only_in_their_pixels(tmp_path, embedded_photos):
    def colorize(rgb):  # any colorization: a hue shift of the original
        return np.roll(rgb, 1, axis=-1)

    from experiments.humantest.prepare import TestModel

    photos = [(name, embedded_photos[name]) for name in ("skimage:chelsea", "sklearn:china.jpg")]
    pool = [(name, embedded_photos[name]) for name in ("skimage:coffee", "skimage:astronaut")]
    images, pairs = prepare_pairs(
        tmp_path, [TestModel("m", "x.keras", colorize)], photos, pool, Protocol(size=96)
    )
    assert len(pairs) == 2 + 3 + 2
    for pair in pairs:
        files = [tmp_path / images[pair[key]] for key in ("original_image", "other_image")]
        opened = [Image.open(path) for path in files]
        assert {(im.format, im.mode, im.size) for im in opened} == {("PNG", "RGB", (96, 96))}
        assert all(not im.text for im in opened)  # no text chunks: no metadata
        assert opened[0].info == opened[1].info
        assert files[0].stat().st_size == files[1].stat().st_size  # even the byte count
        assert len({path.stem for path in files}) == 2 and all(len(p.stem) == 32 for p in files)
    catch = next(p for p in pairs if p["kind"] == CATCH)
    gray = np.asarray(Image.open(tmp_path / images[catch["other_image"]]))
    assert np.ptp(gray.astype(int), axis=-1).max() <= 1  # gray: R = G = B
    crop = square_crop(embedded_photos["sklearn:china.jpg"], 96)
    assert crop.shape == (96, 96, 3)
    assert np.abs(gray_of(crop).astype(int) - crop.astype(int)).mean() > 5
