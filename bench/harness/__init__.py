"""The harness every benchmark in bench/ shares; the scripts beside it hold the measurements.

    stack     the processes and services a run needs: gunicorn, the RQ worker, moto's S3
              server, the scratch PostgreSQL database, Redis, the app's environment
    wrk       wrk runs and their figures, plus the server's CPU time per request
    procfs    /proc readings: process trees, CPU time, RSS and its peak
    results   bench/results/<name>-<time>.json and README.md's benchmark block
    client    plain HTTP: one JSON request, a keep-alive connection
    users     accounts set up over HTTP (registered, verified, consented)
    images    test PNGs and the multipart form that uploads one
    uploads   a capture upload streamed over HTTP, the raw put and the floors beside it
    loadgen   the virtual users of bench/load.py
    storm     the refresh storm of bench/load.py and bench/storm.py
    rows      the benchmark table's rows, one module per bench/run script (bench/report.py)

The scripts run as `python bench/<name>.py`, so bench/ is first on sys.path and they
import `harness.<module>`; inside the package, imports are relative. Everything binds to
127.0.0.1 only, and every process the harness starts is stopped by the context manager
that started it (the whole process group, SIGTERM then SIGKILL).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
