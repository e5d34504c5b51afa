"""What a job's `result` looks like to its owner, per kind.

A feature that hands a job to its users (the export, the destruction of
biometric data) registers, in its `init_app`, the schema of the kind's result
(documented as one member of the `JobResult` component, so generated clients
get a typed result) and optionally a *presenter*: `fn(job, stored) -> dict`,
called whenever the job is read (GET /jobs/{job_id}, its event stream, a
receipt carrying the job). A presenter computes what must not be stored, such
as a signed download link. This module never names a feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask_smorest import Api
from marshmallow import Schema

if TYPE_CHECKING:
    from irisvue.models import Job

Presenter = Callable[["Job", dict[str, Any]], dict[str, Any]]

COMPONENT = "JobResult"
RESULT_REF = {"$ref": f"#/components/schemas/{COMPONENT}"}
# Any other kind's result: an object of its own shape (the last member).
OTHER = "OtherJobResult"
_OTHER_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": "the result of a kind without a documented shape",
}

_presenters: dict[str, Presenter] = {}


def _union(api: Api) -> list[dict[str, str]]:
    components = api.spec.components
    if COMPONENT not in components.schemas:
        components.schema(OTHER, _OTHER_SCHEMA)
        components.schema(
            COMPONENT,
            {
                "description": "What the job produced, by `kind`; null until it finished.",
                "anyOf": [{"$ref": f"#/components/schemas/{OTHER}"}],
            },
        )
    return components.schemas[COMPONENT]["anyOf"]


def document_union(api: Api) -> None:
    """Declare the `JobResult` component (JobSchema refers to it)."""
    _union(api)


def register_result(
    api: Api,
    kind: str,
    schema: type[Schema],
    *,
    name: str,
    presenter: Presenter | None = None,
) -> None:
    """Document `kind`'s result as the component `name`; present it with `presenter`."""
    members = _union(api)
    api.spec.components.schema(name, schema=schema)
    ref = {"$ref": f"#/components/schemas/{name}"}
    if ref not in members:
        members.insert(len(members) - 1, ref)  # before the catch-all
    if presenter is not None:
        _presenters[kind] = presenter


def present(job: Job) -> dict[str, Any] | None:
    """The job's result as its owner sees it (None until there is one)."""
    if job.result is None:
        return None
    presenter = _presenters.get(job.kind)
    return presenter(job, dict(job.result)) if presenter is not None else job.result
