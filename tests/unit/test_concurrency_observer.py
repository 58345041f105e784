"""How the checks of a limit read Prefect's records: intervals from state histories, and their overlap."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from prefect.states import Completed, Failed, Running

from video_ingest.prefect_api.observer import POOL_SLOT_STATES, every_final, intervals_in_states, max_concurrent

T0 = datetime(2026, 12, 6, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def history(*steps: tuple[float, str]) -> list:
    """State records as the client returns them, shuffled: the reader must order them by time."""
    states = [SimpleNamespace(timestamp=at(second), type=SimpleNamespace(value=kind)) for second, kind in steps]
    return states[1::2] + states[::2]


def test_a_pool_slot_is_held_from_pending_through_running_to_the_final_state():
    states = history((0, "SCHEDULED"), (2, "PENDING"), (9, "RUNNING"), (12, "COMPLETED"))
    assert intervals_in_states(states, POOL_SLOT_STATES, now=at(99)) == [(at(2), at(12))]
    assert intervals_in_states(states, frozenset({"RUNNING"}), now=at(99)) == [(at(9), at(12))]


def test_a_run_still_in_the_states_holds_its_stretch_until_now():
    states = history((0, "SCHEDULED"), (2, "PENDING"), (3, "RUNNING"))
    assert intervals_in_states(states, POOL_SLOT_STATES, now=at(50)) == [(at(2), at(50))]


def test_a_rerun_batch_holds_a_slot_once_per_attempt():
    states = history((0, "SCHEDULED"), (1, "PENDING"), (2, "RUNNING"), (5, "CRASHED"), (6, "SCHEDULED"),
                     (8, "PENDING"), (9, "RUNNING"), (11, "FAILED"))
    assert intervals_in_states(states, POOL_SLOT_STATES, now=at(99)) == [(at(1), at(5)), (at(8), at(11))]


def test_two_pods_starting_while_the_other_works_hold_both_slots_though_never_both_running():
    # What a slow node shows: each batch's pod start (Pending) outlasts the other batch's work (Running).
    first = history((0, "PENDING"), (6, "RUNNING"), (9, "COMPLETED"))
    second = history((1, "PENDING"), (9, "RUNNING"), (12, "COMPLETED"))
    now = at(99)
    running = [s for states in (first, second) for s in intervals_in_states(states, frozenset({"RUNNING"}), now)]
    holding = [s for states in (first, second) for s in intervals_in_states(states, POOL_SLOT_STATES, now)]
    assert (max_concurrent(running), max_concurrent(holding)) == (1, 2)


def task_run(name: str, state) -> SimpleNamespace:
    return SimpleNamespace(name=name, state=state)


def test_every_final_waits_for_each_named_run_to_reach_a_final_state():
    done = every_final(["a", "b"])
    assert not done([task_run("a", Completed())])  # b not recorded yet
    assert not done([task_run("a", Completed()), task_run("b", Running())])
    assert not done([task_run("a", Completed()), task_run("b", None), task_run("c", Failed())])
    assert done([task_run("a", Completed()), task_run("b", Failed()), task_run("c", Running())])
