"""What RQ keeps in Redis: job hashes, every stored byte, abandoned-job recovery;
and jobs that stay pending."""

from __future__ import annotations

import time
import uuid
import zlib

from flask import Flask
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from irisvue.jobs import outbox


def rq_job_hash(redis: Redis, job_id: str) -> dict[str, bytes]:
    """The RQ job hash with `data` and `exc_info` decompressed."""
    raw = {k.decode(): v for k, v in redis.hgetall(f"rq:job:{job_id}").items()}
    for name in ("data", "exc_info"):
        if name in raw:
            raw[name] = zlib.decompress(raw[name])
    return raw


def all_redis_bytes(redis: Redis) -> bytes:
    """Every key and value in Redis (hashes, lists, sets, zsets), decompressed where RQ
    compresses, to search for personal data."""
    chunks: list[bytes] = []
    for key in redis.scan_iter(count=500):
        chunks.append(key)
        kind = redis.type(key)
        if kind == b"string":
            chunks.append(redis.get(key) or b"")
        elif kind == b"hash":
            for field, value in redis.hgetall(key).items():
                chunks.append(field)
                try:
                    chunks.append(zlib.decompress(value))
                except zlib.error:
                    chunks.append(value)
        elif kind == b"list":
            chunks.extend(redis.lrange(key, 0, -1))
        elif kind == b"set":
            chunks.extend(redis.smembers(key))
        elif kind == b"zset":
            chunks.extend(member for member, _ in redis.zrange(key, 0, -1, withscores=True))
        elif kind == b"stream":
            for _entry_id, fields in redis.xrange(key):
                for field, value in fields.items():
                    chunks.append(field)
                    try:
                        chunks.append(zlib.decompress(value))
                    except zlib.error:
                        chunks.append(value)
    return b"\n".join(chunks)


def rq_job_ids(redis: Redis) -> set[bytes]:
    """Every RQ job hash in Redis: what a worker could still run."""
    return set(redis.scan_iter(match="rq:job:*", count=500))


def requeue_abandoned(redis_url: str, queue_name: str, job_id: object) -> None:
    """RQ's abandoned-job handling (what any worker's maintenance does once the dead
    horse's heartbeat expires), then the retry it schedules, made due now."""
    redis = Redis.from_url(redis_url)
    try:
        queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
        StartedJobRegistry(queue=queue).cleanup(timestamp=time.time() + 3600)
        scheduled = ScheduledJobRegistry(queue=queue)
        assert str(job_id) in scheduled.get_job_ids()
        scheduled.requeue(str(job_id))
    finally:
        redis.close()


def pending_job(app: Flask, user_id: uuid.UUID, kind: str) -> str:
    """The id of a `kind` job of the user, submitted through the outbox (so handed to
    RQ while Redis is up) and never run, since no worker runs in the caller's test:
    it stays queued, and a stream of its events stays open."""
    with app.app_context():
        job = outbox.submit(kind, user_id=user_id)
        outbox.commit()
        return str(job.id)
