"""The collector kept out of the trials' way (`experiments.common.heap.frozen_heap`): what was
there before is collected first, never kept for good, and seen again afterwards."""

from __future__ import annotations

import gc
import weakref

import pytest

from experiments.common.heap import frozen_heap

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


class Node:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def unfrozen():
    """The heap as a study's own process has it: the suite's freeze (conftest) lifted here,
    and made again afterwards, garbage collected first, where there was one."""
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    yield
    if frozen:
        gc.collect()
        gc.freeze()


@pytest.fixture
def no_automatic_collection():
    """Collections only where the code asks for them: none can pass a test for it."""
    gc.disable()
    yield
    gc.enable()


def test_garbage_from_before_is_collected_and_the_heap_is_handed_back(no_automatic_collection):
    assert gc.get_freeze_count() == 0
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage  # unreachable, but alive until a collection
    with frozen_heap():
        assert gone() is None  # collected before the freeze, not kept for good
        assert gc.get_freeze_count() > 0
        made_inside = Node()
        inside = weakref.ref(made_inside)
        del made_inside
        gc.collect()
        assert inside() is None  # what the trials make is still collected
    assert gc.get_freeze_count() == 0


def is_frozen(thing: object) -> bool:
    """Frozen objects sit in the permanent generation, which `gc.get_objects` does not list."""
    return not any(tracked is thing for tracked in gc.get_objects())


def test_a_freeze_made_elsewhere_is_left_as_it_is():
    # Counts are no test here: frozen objects that die (a frame, a generator) leave the count.
    gc.freeze()
    try:
        made_after = Node()
        with frozen_heap():
            assert not is_frozen(made_after)  # not frozen a second time
        assert gc.get_freeze_count() > 0  # and not handed back by this one
    finally:
        gc.unfreeze()


def test_the_heap_is_handed_back_when_the_trials_raise():
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("a trial failed")
    assert gc.get_freeze_count() == 0
