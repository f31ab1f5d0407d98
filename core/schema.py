"""OpenAPI schema additions: the error answers every endpoint can give, documented once."""

from __future__ import annotations

DETAIL = "Detail"
VALIDATION_ERRORS = "ValidationErrors"

_COMPONENTS = {
    DETAIL: {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    VALIDATION_ERRORS: {
        "type": "object",
        "description": "Messages per field (DRF validation errors), or a detail",
        "additionalProperties": {},
    },
}


def _response(description: str, component: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def document_errors(result: dict, generator, request, public) -> dict:
    """Add the 400, 401, 403 and 404 answers DRF gives to the operations that can get them,
    unless the view documents its own."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if "requestBody" in operation:  # every write here needs its body
                operation["requestBody"]["required"] = True
            responses = operation.setdefault("responses", {})
            errors = {
                "403": _response("Not allowed for this user or caller", DETAIL),
            }
            if operation.get("parameters") or operation.get("requestBody"):
                errors["400"] = _response("Invalid parameters or body", VALIDATION_ERRORS)
            if any(requirement for requirement in operation.get("security", [])):
                errors["401"] = _response("Not authenticated", DETAIL)
            parameters = {p.get("name") for p in operation.get("parameters", [])}
            if "{" in path or "cursor" in parameters:  # an unknown id, or "Invalid cursor"
                errors["404"] = _response("Not found", DETAIL)
            for code, response in errors.items():
                responses.setdefault(code, response)
    return result
