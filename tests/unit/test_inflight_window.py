import concurrent.futures
import threading
import time

import pytest

from video_ingest.ingestion.window import InflightWindow


def test_finished_futures_come_back_in_finishing_order():
    window = InflightWindow(3)
    futures = [concurrent.futures.Future() for _ in range(3)]
    for future in futures:
        window.add(future)
    futures[2].set_result(2)
    futures[0].set_result(0)
    assert window.next_finished() is futures[2]
    assert window.next_finished() is futures[0]
    futures[1].set_result(1)
    assert list(window.drain()) == [futures[1]]
    assert len(window) == 0


def test_adding_to_a_full_window_is_refused():
    window = InflightWindow(1)
    window.add(concurrent.futures.Future())
    assert window.full
    with pytest.raises(RuntimeError):
        window.add(concurrent.futures.Future())


def test_window_bounds_work_running_in_a_thread_pool():
    running = peak = 0
    lock = threading.Lock()

    def work():
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.005)
        with lock:
            running -= 1

    window = InflightWindow(4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for _ in range(200):
            if window.full:
                window.next_finished()
            window.add(pool.submit(work))
        list(window.drain())
    assert peak <= 4
    assert window.peak == 4


def test_waiting_costs_one_queue_get_per_finished_item():
    # O(1) per item: no callback or scan touches the other futures in the window.
    window = InflightWindow(500)
    futures = [concurrent.futures.Future() for _ in range(500)]
    callbacks_before = [len(f._done_callbacks) for f in futures]
    for future in futures:
        window.add(future)
    assert all(len(f._done_callbacks) == before + 1 for f, before in zip(futures, callbacks_before))
    futures[123].set_result(None)
    assert window.next_finished() is futures[123]
    # waiting registered nothing new on the unfinished ones
    assert all(len(f._done_callbacks) == 1 for i, f in enumerate(futures) if i != 123)


def test_timeout_returns_none_when_nothing_finished():
    window = InflightWindow(2)
    window.add(concurrent.futures.Future())
    assert window.next_finished(timeout=0.01) is None
    assert len(window) == 1
