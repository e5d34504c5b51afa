"""GET list/one/content and DELETE: owner only (404 for others), pagination."""

from __future__ import annotations

import uuid

from tests.support.images import plain_png
from tests.support.storage import objects_under, user_prefix
from tests.support.uploads import CAPTURES, upload


def _upload_png(client, headers, size=(40, 30)) -> dict:
    response = upload(client, headers, plain_png(size), "iris.png", "image/png")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_metadata_of_a_capture(client, signed_in):
    _, headers = signed_in()
    created = _upload_png(client, headers)

    response = client.get(f"{CAPTURES}{created['id']}", headers=headers)

    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["Cache-Control"] == "no-store"


def test_listing_is_paginated_newest_first(client, signed_in):
    _, headers = signed_in()
    created = [_upload_png(client, headers, (20 + i, 20)) for i in range(5)]

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = client.get(CAPTURES, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= 2
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 5

    assert pages == 3
    assert [c["id"] for c in seen] == [c["id"] for c in reversed(created)]


def test_listing_shows_only_the_users_own_captures(client, signed_in):
    _, alice = signed_in()
    _, bob = signed_in()
    mine = _upload_png(client, alice)
    _upload_png(client, bob)

    items = client.get(CAPTURES, headers=alice).get_json()["items"]

    assert [c["id"] for c in items] == [mine["id"]]


def test_a_forged_cursor_is_422(client, signed_in):
    _, headers = signed_in()
    response = client.get(CAPTURES, query_string={"cursor": "bm90LWEtY3Vyc29y"}, headers=headers)
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


def test_limit_out_of_range_is_422(client, signed_in):
    _, headers = signed_in()
    assert client.get(CAPTURES, query_string={"limit": 0}, headers=headers).status_code == 422
    assert client.get(CAPTURES, query_string={"limit": 101}, headers=headers).status_code == 422


def test_another_users_capture_is_404_everywhere(app, client, signed_in, raw_s3, stack):
    alice_user, alice = signed_in()
    _, mallory = signed_in()
    capture = _upload_png(client, alice)
    url = f"{CAPTURES}{capture['id']}"

    for response in (
        client.get(url, headers=mallory),
        client.get(f"{url}/content", headers=mallory),
        client.delete(url, headers=mallory),
    ):
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"

    assert client.get(url, headers=alice).status_code == 200
    assert client.get(f"{url}/content", headers=alice).data == plain_png()
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(alice_user.id))


def test_unknown_capture_is_404(client, signed_in):
    _, headers = signed_in()
    response = client.get(f"{CAPTURES}{uuid.uuid4()}", headers=headers)
    assert response.status_code == 404
    assert client.get(f"{CAPTURES}not-a-uuid", headers=headers).status_code == 404


def test_delete_removes_object_and_row(app, client, signed_in, raw_s3, stack):
    user, headers = signed_in()
    capture = _upload_png(client, headers)
    kept = _upload_png(client, headers)
    url = f"{CAPTURES}{capture['id']}"

    response = client.delete(url, headers=headers)

    assert response.status_code == 204
    assert response.data == b""
    assert client.get(url, headers=headers).status_code == 404
    assert client.get(f"{url}/content", headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404
    assert objects_under(raw_s3, stack.s3_bucket, user_prefix(user.id)) == [
        f"{user_prefix(user.id)}{kept['id']}"
    ]
