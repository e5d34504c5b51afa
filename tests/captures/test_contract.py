"""What the OpenAPI document promises for captures is what the server does.

Regressions of contract fuzzing (tests/contract): a cursor of the documented
type was refused; the upload body admitted parts the server does not read.
"""

from __future__ import annotations

import io
import re

from irisvue.models import Capture
from tests.support.images import plain_png
from tests.support.uploads import CAPTURES


def _spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _upload(client, headers, parts: dict):
    return client.post(CAPTURES, data=parts, headers=headers, content_type="multipart/form-data")


def _png() -> tuple[io.BytesIO, str, str]:
    return io.BytesIO(plain_png()), "iris.png", "image/png"


def test_any_cursor_matching_the_documented_pattern_is_a_page(client, signed_in):
    _, headers = signed_in()
    for _ in range(3):
        assert _upload(client, headers, {"file": _png()}).status_code == 201
    (cursor,) = [
        p["schema"]
        for p in _spec(client)["paths"][CAPTURES]["get"]["parameters"]
        if p["name"] == "cursor"
    ]
    pattern = re.compile(cursor["pattern"])
    first = client.get(CAPTURES, headers=headers, query_string={"limit": 1}).get_json()
    issued = first["next_cursor"]
    assert pattern.search(issued) and len(issued) <= cursor["maxLength"]
    rest = client.get(CAPTURES, headers=headers, query_string={"cursor": issued}).get_json()
    assert len(rest["items"]) == 2 and first["items"][0] not in rest["items"]
    # Positions after (year 1970) and before (year 2286) every capture: newest first.
    for value, count in (("0_" + "0" * 32, 0), ("9" * 16 + "_" + "f" * 32, 3)):
        response = client.get(CAPTURES, headers=headers, query_string={"cursor": value})
        assert response.status_code == 200, response.get_json()
        assert len(response.get_json()["items"]) == count
    for value in ("", "bm90LWEtY3Vyc29y", "1_" + "a" * 31, "1_" + "a" * 32 + "\n"):
        assert not pattern.fullmatch(value)
        response = client.get(CAPTURES, headers=headers, query_string={"cursor": value})
        assert response.status_code == 422
        assert "cursor" in response.get_json()["errors"]


def test_a_part_besides_the_file_is_422_and_stores_nothing(app, client, signed_in):
    user, headers = signed_in()
    body = _spec(client)["paths"][CAPTURES]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["additionalProperties"] is False

    after = _upload(client, headers, {"file": _png(), "note": "hello"})
    before = _upload(client, headers, {"note": "hello", "file": _png()})
    second_file = _upload(client, headers, {"file": [_png(), _png()]})

    for response, field in ((after, "note"), (before, "note"), (second_file, "file")):
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["errors"] == {field: ["Unknown field."]}
    with app.app_context():
        assert Capture.query.filter_by(user_id=user.id).count() == 0
    assert _upload(client, headers, {"file": _png()}).status_code == 201


def test_many_parts_without_a_file_are_422_not_413(client, signed_in):
    _, headers = signed_in()
    parts = {f"p{n}": "x" for n in range(12)}
    response = _upload(client, headers, parts)
    assert response.status_code == 422
    assert response.get_json()["errors"]["file"] == ["Missing data for required field."]
