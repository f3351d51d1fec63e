"""The reservation ledger the worker processes of one pod share (webhook.views.ledger).

Two FileLedger instances on one directory stand for two workers: separate open files, so
their flocks exclude each other exactly as two processes' do.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

from webhook.views.ledger import FileLedger, LocalLedger, Reservation
from webhook.views.store import ClusterStore

CPU = {"requests.cpu": Decimal(1), "pods": Decimal(1)}


def test_what_one_worker_publishes_the_other_fetches_once(tmp_path: Path) -> None:
    a, b = FileLedger(tmp_path), FileLedger(tmp_path)
    first = Reservation("shop", "web-1", CPU, 10.0)
    nameless = Reservation("shop", "", CPU, 11.0, generate_name="web-")
    with a.lock():
        assert a.fetch() == []
        a.publish(first)
        a.publish(nameless)
    with b.lock():
        assert b.fetch() == [first, nameless]  # the same values, usage and all, across the file
        assert b.fetch() == []
        resized = Reservation("shop", "web-1", {"requests.cpu": Decimal("0.5")}, 12.0, resize=True, before=CPU)
        b.publish(resized)
    with a.lock():
        assert a.fetch() == [resized]  # its own entries are never handed back to a worker
    a.close()
    b.close()


def test_the_lock_excludes_the_other_worker(tmp_path: Path) -> None:
    a, b = FileLedger(tmp_path), FileLedger(tmp_path)
    order: list[str] = []
    b_waiting = threading.Event()

    def other() -> None:
        b_waiting.set()
        with b.lock():
            order.append("b")

    with a.lock():
        thread = threading.Thread(target=other)
        thread.start()
        assert b_waiting.wait(5)
        thread.join(0.2)  # b cannot get in while a holds the lock
        assert thread.is_alive()
        order.append("a")
    thread.join(5)
    assert order == ["a", "b"]


def test_compaction_keeps_recent_entries_and_readers_follow(tmp_path: Path) -> None:
    now = [1000.0]
    a = FileLedger(tmp_path, keep=60.0, clock=lambda: now[0], compact_bytes=4000)
    b = FileLedger(tmp_path, keep=60.0, clock=lambda: now[0], compact_bytes=4000)
    old = [Reservation("shop", f"old-{i}", CPU, 100.0) for i in range(20)]
    with a.lock():
        for r in old:
            a.publish(r)
    with b.lock():
        assert len(b.fetch()) == 20
    fresh = [Reservation("shop", f"new-{i}", CPU, 990.0 + i) for i in range(20)]
    with a.lock():
        for r in fresh:
            a.publish(r)  # past 4000 bytes: rewritten without the entries older than 60 s
    text = a.path.read_text()
    assert "old-" not in text and "new-19" in text
    with b.lock():
        assert [r.name for r in b.fetch()] == [r.name for r in fresh]  # a new file, read whole, nothing twice
        assert b.fetch() == []


def test_an_unreadable_line_is_skipped(tmp_path: Path) -> None:
    a = FileLedger(tmp_path)
    a.path.write_bytes(b'{"not": "a reservation"}\n')
    with a.lock():
        a.publish(Reservation("shop", "p", CPU, 1.0))
    b = FileLedger(tmp_path)
    with b.lock():
        assert [r.name for r in b.fetch()] == ["p"]


def test_stores_of_two_workers_count_each_others_reservations(tmp_path: Path) -> None:
    now = [0.0]
    ledgers = [FileLedger(tmp_path), FileLedger(tmp_path)]
    stores = [ClusterStore(clock=lambda: now[0]), ClusterStore(clock=lambda: now[0])]
    for ledger, store in zip(ledgers, stores):
        with ledger.lock():
            store.absorb(ledger.fetch())
            reservation = Reservation("shop", f"by-{id(store)}", CPU, now[0])
            assert store.reserve(reservation)
            ledger.publish(reservation)
    for ledger, store in zip(ledgers, stores):
        with ledger.lock():
            store.absorb(ledger.fetch())
        assert store.namespace_usage("shop")["requests.cpu"] == 2


def test_a_single_worker_shares_nothing() -> None:
    ledger = LocalLedger()
    with ledger.lock():
        ledger.publish(Reservation("shop", "p", CPU, 1.0))
        assert ledger.fetch() == []
