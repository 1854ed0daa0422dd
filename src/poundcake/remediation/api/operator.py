"""Who may read and manage PoundCake through its API: a bearer token of poundcake-api.

The same tokens as the Alertmanager intake (``POUNDCAKE_WEBHOOK_TOKENS``, the token file, or
the generated ``<data_dir>/secrets/webhook-token``) authenticate the operator endpoints; a
missing or wrong token is a 401 whose record never holds the token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from poundcake.exceptions import AuthenticationError
from poundcake.remediation.api.dependencies import get_api


def require_token(request: Request) -> None:
    """Refuse the request unless it carries an accepted bearer token."""
    problem = get_api(request).webhook_auth.problem(request.headers.get("authorization"))
    if problem is not None:
        raise AuthenticationError(problem)


Operator = Annotated[None, Depends(require_token)]
