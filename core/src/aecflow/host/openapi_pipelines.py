"""OpenAPI paths of processing pipelines: a project's pipeline and a file's artifacts."""

from __future__ import annotations

from aecflow.host.openapi_parts import (
    FILE_ID,
    FORBIDDEN,
    JSON,
    LOCATION,
    MAX_EXPIRY_S,
    NO_ROUTE,
    PROJECT,
    Schema,
    errors,
    ok,
    path_param,
    query,
    ref,
)

NAME = path_param(
    "name",
    {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"},
    "The artifact's name, as `/artifacts` lists it.",
)
STEP = query(
    "step",
    {"type": "string", "minLength": 1, "maxLength": 64},
    "Rerun only this step of the file's pipeline (`400 unknown_step` when it has none).",
)
ARTIFACT_404 = ["file_not_found", "file_deleted", "artifact_not_found", NO_ROUTE]


def pipeline_paths() -> dict[str, dict[str, Schema]]:
    pipeline = ref("Pipeline")
    return {
        "/v1/projects/{project}/pipeline": {
            "get": {
                "tags": ["files"],
                "operationId": "getPipeline",
                "summary": "A project's pipeline",
                "description": "Reader. The processors the project's files run through and "
                "where that list comes from (see docs/pipelines.md).",
                "parameters": [PROJECT],
                "responses": {
                    "200": ok("The pipeline.", pipeline),
                    **errors(s400=["invalid_project"], s404=["project_not_found"]),
                },
            },
            "put": {
                "tags": ["files"],
                "operationId": "setPipeline",
                "summary": "Set a project's pipeline",
                "description": "Admin (checked before the body is read). Installed processor "
                "names, in order; wins over the configuration.",
                "parameters": [PROJECT],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": ref("PipelineUpdate")}},
                },
                "responses": {
                    "200": ok("Set.", pipeline),
                    **errors(
                        s400=["invalid_project", "invalid_json", "invalid_pipeline"],
                        s403=FORBIDDEN,
                        s404=["project_not_found"],
                    ),
                },
            },
            "delete": {
                "tags": ["files"],
                "operationId": "deletePipeline",
                "summary": "Remove a project's pipeline override",
                "description": "Admin. The configuration's pipeline applies again.",
                "parameters": [PROJECT],
                "responses": {
                    "200": ok("Removed.", pipeline),
                    **errors(s400=["invalid_project"], s403=FORBIDDEN, s404=["project_not_found"]),
                },
            },
        },
        "/v1/files/{file_id}/artifacts": {
            "get": {
                "tags": ["files"],
                "operationId": "listArtifacts",
                "summary": "A file's artifacts",
                "description": "Reader. The files its pipeline's steps derived.",
                "parameters": [FILE_ID],
                "responses": {
                    "200": ok("The artifacts, by name.", ref("ArtifactList")),
                    **errors(s403=FORBIDDEN, s404=["file_not_found", "file_deleted", NO_ROUTE]),
                },
            }
        },
        "/v1/files/{file_id}/artifacts/{name}/content": {
            "get": {
                "tags": ["files"],
                "operationId": "artifactContent",
                "summary": "An artifact's bytes",
                "description": "Reader. Streamed with the artifact's media type; `ETag` is its "
                "SHA-256.",
                "parameters": [FILE_ID, NAME],
                "responses": {
                    "200": ok("The artifact.")
                    | {"content": {"application/octet-stream": {"schema": {}}}},
                    **errors(s403=FORBIDDEN, s404=ARTIFACT_404),
                },
            }
        },
        "/v1/files/{file_id}/artifacts/{name}/download": {
            "get": {
                "tags": ["files"],
                "operationId": "artifactDownload",
                "summary": "Redirect to an artifact",
                "description": "Reader. 307 to the storage's presigned URL (S3), else to "
                "`/content`.",
                "parameters": [
                    FILE_ID,
                    NAME,
                    query(
                        "expires",
                        {"type": "integer", "minimum": 1, "maximum": MAX_EXPIRY_S, "default": 900},
                        "Seconds the URL stays valid.",
                    ),
                ],
                "responses": {
                    "307": ok("Go there.", Location=LOCATION),
                    **errors(s400=["invalid_query"], s403=FORBIDDEN, s404=ARTIFACT_404),
                },
            }
        },
    }
