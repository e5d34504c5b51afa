# syntax=docker/dockerfile:1
# IrisVue: one image for web (default CMD), worker (`python worker.py`) and
# migrations (`flask --app wsgi release`). Build: `docker build -t irisvue .`
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve and install the locked dependencies into a venv ---------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# The lock first, alone: this layer is rebuilt only when dependencies change.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install -r /tmp/requirements.lock
# The package itself, editable at /app (the same path as in the runtime stage):
# the app finds `migrations/` next to the package and reads its version from the
# installed metadata.
WORKDIR /app
COPY pyproject.toml ./
COPY irisvue ./irisvue
RUN /opt/venv/bin/pip install --no-deps -e .

# --- runtime: no compilers, no pip cache, a non-root user --------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IRISVUE_ENV=production \
    IRISVUE_INSTANCE_PATH=/app/instance \
    BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 irisvue \
    && useradd --system --uid 10001 --gid irisvue --home-dir /app --shell /usr/sbin/nologin irisvue
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Code stays owned by root: the service user can read it but not change it.
COPY wsgi.py worker.py gunicorn.conf.py ./
COPY irisvue ./irisvue
COPY migrations ./migrations
RUN mkdir -p /app/instance && chown irisvue:irisvue /app/instance
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
