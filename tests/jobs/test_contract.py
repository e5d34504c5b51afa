"""The OpenAPI document describes the job endpoints as they answer.

Regressions of contract fuzzing (tests/contract): the event stream was
documented as one string only (schemathesis validates each event against the
schema), and the bearer requirement was not documented. Generated clients
(tests/contract/test_generated_client.py) need the string: `anyOf` has both.
"""

from __future__ import annotations

import json


def test_the_event_stream_is_documented_event_by_event(client):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/jobs/{job_id}/events"]["get"]
    stream = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert stream["anyOf"] == [{"type": "string"}, {"$ref": "#/components/schemas/JobEvent"}]
    event = spec["components"]["schemas"]["JobEvent"]
    assert event["type"] == "object"
    assert set(event["required"]) == {"event", "data"}
    assert event["properties"]["event"]["enum"] == ["job", "timeout"]
    assert event["properties"]["data"]["type"] == "string"
    for path in ("/api/v1/jobs/{job_id}", "/api/v1/jobs/{job_id}/events"):
        assert spec["paths"][path]["get"]["security"] == [{"bearerAuth": []}]


def test_the_events_sent_match_the_documented_event(app, client, make_user, auth_headers):
    from irisvue.extensions import db
    from irisvue.models import Job

    user = make_user()
    with app.app_context():
        job = Job(
            kind="privacy.export", queue="default", user_id=user.id, status="finished", progress=100
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    response = client.get(f"/api/v1/jobs/{job_id}/events", headers=auth_headers(user))
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    blocks = [b for b in response.get_data(as_text=True).split("\n\n") if "data:" in b]
    assert blocks
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        assert fields["event"] in {"job", "timeout"} and fields["id"].isdigit()
        assert json.loads(fields["data"])["id"] == str(job_id)
