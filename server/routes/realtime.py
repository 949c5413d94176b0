"""/api/realtime: one-use tickets for opening `/ws` without a token in the URL."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas.realtime import Ticket
from server.http import caller, ensure_accepting, json, services


async def issue_ticket(request: Request) -> Response:
    who = await caller(request)
    svc = services(request)
    ensure_accepting(svc)
    ttl = svc.settings.ws_ticket_ttl
    ticket = await svc.tickets.issue(who, ttl)
    # Whole seconds, rounded down: a client that waits the full expiresIn is still in time.
    return json(Ticket(ticket=ticket, expires_in=max(1, math.floor(ttl))), status=201)


routes = [Route("/api/realtime/ticket", issue_ticket, methods=["POST"])]
