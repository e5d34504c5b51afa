"""Concurrent appends for one user keep one linear chain (no fork, no lost record)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from irisvue.extensions import db
from irisvue.models import ConsentRecord
from tests.support.consent import CONSENTS, record

THREADS = 8
PER_THREAD = 5


def test_concurrent_appends_keep_a_linear_chain(app, member):
    user, headers = member
    start = threading.Barrier(THREADS, timeout=30)
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = app.test_client()
        try:
            start.wait()
            for n in range(PER_THREAD):
                response = record(
                    client,
                    headers,
                    ("data_processing", "marketing")[(index + n) % 2],
                    granted=bool((index + n) % 3),
                )
                with lock:
                    statuses.append(response.status_code)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert statuses == [201] * (THREADS * PER_THREAD)

    with app.app_context():
        rows = db.session.execute(
            select(ConsentRecord.seq, ConsentRecord.prev_hash, ConsentRecord.record_hash)
            .where(ConsentRecord.user_id == user.id)
            .order_by(ConsentRecord.seq)
        ).all()
    assert [row.seq for row in rows] == list(range(1, THREADS * PER_THREAD + 1))
    assert [row.prev_hash for row in rows[1:]] == [row.record_hash for row in rows[:-1]]
    assert len({row.prev_hash for row in rows}) == len(rows)  # no two records share a parent

    client = app.test_client()
    report = client.get(
        CONSENTS + "history", query_string={"verify": "true"}, headers=headers
    ).get_json()["verification"]
    assert report["intact"] is True
    assert report["checked"] == THREADS * PER_THREAD
