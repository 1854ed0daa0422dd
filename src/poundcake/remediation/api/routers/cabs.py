"""``/api/v1/cabs``: list, show, validate, apply, create or replace, and delete CABs.

CABs live as YAML files in ``POUNDCAKE_CABS_DIR``; writing one through the API writes its file
and applies the whole directory to the engine, so the files stay the one source of truth.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.responses import Response

from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.remediation.api.dependencies import Api, ApiState, Db, RequestId
from poundcake.remediation.api.operator import Operator
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.schemas import (
    ApplyAnswer,
    CabAnswer,
    CabBody,
    CabsAnswer,
    ErrorAnswer,
    ValidationAnswer,
    body,
)
from poundcake.remediation.cabs.definition import Cab, load_cab_directory, parse_cab
from poundcake.remediation.cabs.service import (
    ApplyReport,
    applied_cabs,
    apply_cabs,
    cabs_directory,
    cabs_pack_directory,
    delete_cab_file,
    load_cabs,
    run_safety_problems,
    save_cab_file,
    validate_cabs,
)
from poundcake.remediation.engine_api import EngineClient

router = APIRouter(tags=["cabs"])
OptionalCabBody = Annotated[CabBody | None, Body()]


def _engine_api(api: ApiState) -> EngineClient:
    return EngineClient.from_settings(api.settings)


def _apply(api: ApiState) -> ApplyReport:
    engine_api = _engine_api(api)
    try:
        return apply_cabs(
            load_cabs(cabs_directory(api.config)),
            engine_api=engine_api,
            pack_dir=cabs_pack_directory(api.config),
            sessions=api.sessions,
            alertmanager_url=api.settings.alertmanager_url,
        )
    finally:
        engine_api.close()


def _applied(request_id: str, report: ApplyReport, **cab: dict[str, Any]) -> dict[str, Any]:
    """The answer of a change: what the engine now holds (and the CAB ``PUT`` wrote)."""
    answer = ApplyAnswer.model_validate({"request_id": request_id, **cab, **asdict(report)})
    return body(answer)


def _documents(api: ApiState, session: Db) -> list[dict[str, Any]]:
    applied = {row.cab_name: row for row in applied_cabs(session)}
    documents = []
    for cab in load_cabs(cabs_directory(api.config)):
        row = applied.get(cab.name)
        documents.append(
            {
                **cab.document(),
                "rule": f"poundcake_cabs.{cab.name}",
                "applied": row is not None,
                "st2_rule_id": row.st2_rule_id if row is not None else None,
            }
        )
    return documents


@router.get("/cabs", responses={200: {"model": CabsAnswer}})
def list_all(_operator: Operator, api: Api, session: Db, request_id: RequestId) -> Response:
    """Every CAB file, and whether the engine holds it."""
    answer = CabsAnswer.model_validate({"request_id": request_id, "cabs": _documents(api, session)})
    return json_response(200, body(answer))


@router.get("/cabs/{name}", responses={200: {"model": CabAnswer}})
def get_one(
    name: str, _operator: Operator, api: Api, session: Db, request_id: RequestId
) -> Response:
    """One CAB."""
    for document in _documents(api, session):
        if document["name"] == name:
            answer = CabAnswer.model_validate({"request_id": request_id, "cab": document})
            return json_response(200, body(answer))
    raise NotFoundError(f'No CAB named "{name}"')


@router.post(
    "/cabs/validate",
    # A 400 lists the problems of a well-formed CAB, or refuses a body that is not one.
    responses={200: {"model": ValidationAnswer}, 400: {"model": ValidationAnswer | ErrorAnswer}},
)
def validate(
    _operator: Operator,
    api: Api,
    request_id: RequestId,
    document: OptionalCabBody = None,
) -> Response:
    """Validate one CAB document (the body), or every CAB file when there is no body."""
    cabs: list[Cab] = (
        [parse_cab(document.document())]
        if document is not None
        else load_cabs(cabs_directory(api.config))
    )
    known: frozenset[str] = frozenset()
    if document is not None:
        files, _ = load_cab_directory(cabs_directory(api.config))
        known = frozenset(cab.name for cab in files)
    problems = run_safety_problems(
        cabs, alertmanager_url=api.settings.alertmanager_url, known=known
    )
    engine_api = _engine_api(api)
    try:
        problems.extend(validate_cabs(cabs, engine_api))
    finally:
        engine_api.close()
    answer = ValidationAnswer(
        request_id=request_id,
        valid=not problems,
        cabs=[cab.name for cab in cabs],
        problems=[str(problem) for problem in problems],
    )
    return json_response(200 if not problems else 400, body(answer))


@router.post("/cabs/apply", responses={200: {"model": ApplyAnswer}})
def apply(_operator: Operator, api: Api, request_id: RequestId) -> Response:
    """Make the engine hold exactly the CAB files."""
    return json_response(200, _applied(request_id, _apply(api)))


@router.put("/cabs/{name}", responses={200: {"model": ApplyAnswer}})
def put(
    name: str,
    _operator: Operator,
    api: Api,
    request_id: RequestId,
    document: CabBody,
) -> Response:
    """Create or replace the CAB ``name`` from the body, then apply every CAB."""
    if document.name is not None and document.name != name:
        raise ValidationError(f'name: "{document.name}" differs from the URL\'s "{name}"')
    cab = parse_cab({**document.document(), "name": name})
    engine_api = _engine_api(api)
    try:
        problems = validate_cabs([cab], engine_api)
    finally:
        engine_api.close()
    if problems:
        raise ValidationError(str(problems[0]))
    directory = cabs_directory(api.config)
    save_cab_file(directory, cab.file_document())
    return json_response(200, _applied(request_id, _apply(api), cab=cab.document()))


@router.delete("/cabs/{name}", responses={200: {"model": ApplyAnswer}})
def delete(name: str, _operator: Operator, api: Api, request_id: RequestId) -> Response:
    """Delete the CAB ``name`` (its file, its rule and its workflow)."""
    if not delete_cab_file(cabs_directory(api.config), name):
        raise NotFoundError(f'No CAB named "{name}"')
    return json_response(200, _applied(request_id, _apply(api)))
