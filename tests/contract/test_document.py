"""SPEC §8: the OpenAPI document as a product (what generators rely on)."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.support.openapi import OPERATIONS, SPEC

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]+$")


def test_the_document_validates():
    validate(SPEC)


def test_every_operation_has_a_unique_camel_case_operation_id():
    ids = [op.spec.get("operationId") for op in OPERATIONS]
    assert all(isinstance(i, str) and CAMEL.match(i) for i in ids), ids
    assert len(ids) == len(set(ids))


def test_path_parameters_are_named_for_what_they_are():
    names = {p for op in OPERATIONS for p in re.findall(r"{(\w+)}", op.path)}
    assert names == {
        "session_id",
        "capture_id",
        "job_id",
        "consent_type",
        "receipt_id",
        "identity_id",
    }


def test_shared_enums_are_components_and_null_is_never_an_enum_value():
    schemas = SPEC["components"]["schemas"]
    for name in ("ConsentType", "Jurisdiction", "JobStatus", "ChainBreakReason"):
        assert schemas[name]["type"] == "string" and None not in schemas[name]["enum"]
    assert "PaginationMetadata" not in schemas
    text = str(SPEC)
    assert "'enum': ['biometric_capture'" not in text.replace(str(schemas["ConsentType"]), "")


def test_response_fields_always_returned_are_required():
    schemas = SPEC["components"]["schemas"]
    for name in ("User", "Session", "Job", "ConsentRecord", "ConsentState", "TokenPair"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
    receipt = schemas["ConsentReceipt"]["properties"]["job"]
    assert receipt == {
        "allOf": [{"$ref": "#/components/schemas/Job"}],
        "nullable": True,
        "description": receipt["description"],
    }


def test_the_export_result_is_typed_and_names_its_link():
    schemas = SPEC["components"]["schemas"]
    members = schemas["JobResult"]["anyOf"]
    assert {"$ref": "#/components/schemas/ExportResult"} in members
    export = schemas["ExportResult"]
    assert {"download_url", "download_token", "expires_at", "size"} <= set(export["required"])
    download = SPEC["paths"]["/api/v1/privacy/export/{job_id}/download"]["get"]
    assert download["responses"]["200"]["content"]["application/zip"]["schema"] == {
        "type": "string",
        "format": "binary",
    }
