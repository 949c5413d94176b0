"""Business workflows: a platform event in, the notifications (and email templates) it means out.

Each function is pure: the event, the directory names it needs, the app's base URL.
Template data uses the camelCase variables declared in delivery/template_catalog.py;
the worker adds the recipient's `name`.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.notifications import (
    InvestmentEvent,
    MarketplaceAlert,
    NdaDecision,
    NdaRequest,
    ProductionUpdate,
    SendNotification,
)

from .service import Outgoing

Names = Mapping[str, str]


def _name(names: Names, user_id: str) -> str:
    return names.get(user_id) or user_id


def send(body: SendNotification) -> list[Outgoing]:
    recipients = list(
        dict.fromkeys([*([body.user_id] if body.user_id else []), *(body.user_ids or [])])
    )
    channels = frozenset(body.channels)
    url = (body.data or {}).get("url")
    template_data = {"title": body.title, "message": body.message}
    if isinstance(url, str):
        template_data["url"] = url
    return [
        Outgoing(
            user_id=user,
            type=body.type,
            title=body.title,
            message=body.message,
            data=body.data,
            priority=body.priority,
            channels=channels,
            template_data=template_data,
        )
        for user in recipients
    ]


def nda_request(body: NdaRequest, names: Names, app_url: str) -> list[Outgoing]:
    requester = _name(names, body.requester_id)
    message = f'{requester} requested an NDA for "{body.pitch_title}".'
    if body.message:
        message += f" {body.message}"
    return [
        Outgoing(
            user_id=body.owner_id,
            type="nda_request",
            title=f"NDA request for {body.pitch_title}",
            message=message,
            data={"pitchId": body.pitch_id, "requesterId": body.requester_id},
            priority="high",
            template="nda_request",
            template_data={
                "requesterName": requester,
                "pitchTitle": body.pitch_title,
                "message": body.message or "",
                "url": f"{app_url}/pitches/{body.pitch_id}/nda-requests",
            },
        )
    ]


def nda_decision(body: NdaDecision, approved: bool, names: Names, app_url: str) -> list[Outgoing]:
    owner = _name(names, body.owner_id)
    pitch_url = f"{app_url}/pitches/{body.pitch_id}"
    if approved:
        return [
            Outgoing(
                user_id=body.requester_id,
                type="nda_approved",
                title=f"NDA approved for {body.pitch_title}",
                message=f'{owner} approved your NDA for "{body.pitch_title}".',
                data={"pitchId": body.pitch_id, "ownerId": body.owner_id, "url": pitch_url},
                priority="high",
                template="nda_approved",
                template_data={
                    "ownerName": owner,
                    "pitchTitle": body.pitch_title,
                    "url": pitch_url,
                },
            )
        ]
    message = f'Your NDA request for "{body.pitch_title}" was declined.'
    if body.reason:
        message += f" Reason: {body.reason}"
    return [
        Outgoing(
            user_id=body.requester_id,
            type="nda_rejected",
            title=f"NDA declined for {body.pitch_title}",
            message=message,
            data={"pitchId": body.pitch_id, "ownerId": body.owner_id},
            template="nda_rejected",
            template_data={
                "ownerName": owner,
                "pitchTitle": body.pitch_title,
                "reason": body.reason or "",
            },
        )
    ]


def money(amount: float, currency: str) -> str:
    return f"{currency} {amount:,.2f}"


def investment(body: InvestmentEvent, names: Names, app_url: str) -> list[Outgoing]:
    """Who hears about an investment depends on its status:

    pending/received -> the creator (investment_received); confirmed -> the investor
    (investment_confirmed) and the creator; declined -> the investor; cancelled -> the
    creator; refunded -> both.
    """
    title = body.pitch_title or "your pitch"
    amount = money(body.amount, body.currency)
    investor = _name(names, body.investor_id)
    data = {
        "investmentId": body.investment_id,
        "pitchId": body.pitch_id,
        "amount": body.amount,
        "currency": body.currency,
        "status": body.status,
    }
    dashboard = f"{app_url}/investments/{body.investment_id}"

    def status_note(user_id: str, text: str) -> Outgoing:
        return Outgoing(
            user_id=user_id,
            type="investment_status",
            title=f"Investment {body.status}: {title}",
            message=text,
            data=data,
            template_data={
                "title": f"Investment {body.status}: {title}",
                "message": text,
                "url": dashboard,
            },
        )

    match body.status:
        case "pending" | "received":
            return [
                Outgoing(
                    user_id=body.creator_id,
                    type="investment_received",
                    title=f"New investment of {amount} in {title}",
                    message=f'{investor} has committed {amount} to "{title}".',
                    data=data,
                    priority="high",
                    template="investment_received",
                    template_data={
                        "investorName": investor,
                        "amount": body.amount,
                        "currency": body.currency,
                        "pitchTitle": title,
                        "url": dashboard,
                    },
                )
            ]
        case "confirmed":
            return [
                Outgoing(
                    user_id=body.investor_id,
                    type="investment_confirmed",
                    title=f"Your investment in {title} is confirmed",
                    message=f'Your investment of {amount} in "{title}" is confirmed.',
                    data=data,
                    priority="high",
                    template="investment_confirmed",
                    template_data={
                        "amount": body.amount,
                        "currency": body.currency,
                        "pitchTitle": title,
                        "reference": body.investment_id,
                        "url": dashboard,
                    },
                ),
                status_note(
                    body.creator_id,
                    f'{investor}\'s investment of {amount} in "{title}" is confirmed.',
                ),
            ]
        case "declined":
            return [
                status_note(
                    body.investor_id, f'Your investment of {amount} in "{title}" was declined.'
                )
            ]
        case "cancelled":
            return [
                status_note(
                    body.creator_id, f'{investor} cancelled an investment of {amount} in "{title}".'
                )
            ]
        case _:  # refunded
            return [
                status_note(
                    body.investor_id, f'Your investment of {amount} in "{title}" was refunded.'
                ),
                status_note(
                    body.creator_id,
                    f'{investor}\'s investment of {amount} in "{title}" was refunded.',
                ),
            ]


def production(body: ProductionUpdate, app_url: str) -> list[Outgoing]:
    pitch_url = f"{app_url}/pitches/{body.pitch_id}"
    moved = (
        f"moved from {body.previous_stage} to {body.stage}"
        if body.previous_stage
        else f"is now in {body.stage}"
    )
    summary = body.summary or f'"{body.pitch_title}" {moved}.'
    return [
        Outgoing(
            user_id=user,
            type="production_update",
            title=f"{body.pitch_title}: {body.stage}",
            message=summary,
            data={
                "productionId": body.production_id,
                "pitchId": body.pitch_id,
                "stage": body.stage,
                "previousStage": body.previous_stage,
            },
            template="production_update",
            template_data={
                "pitchTitle": body.pitch_title,
                "stage": body.stage,
                "previousStage": body.previous_stage or "",
                "summary": summary,
                "url": pitch_url,
            },
        )
        for user in dict.fromkeys(body.team_ids)
    ]


def marketplace(body: MarketplaceAlert, app_url: str) -> list[Outgoing]:
    url = f"{app_url}/pitches/{body.pitch_id}"
    pitch: dict[str, str] = {"pitchTitle": body.pitch_title, "url": url}
    if body.genre:
        pitch["genre"] = body.genre
    template_data: dict[str, object] = {"items": [pitch]}
    if body.alert_name:
        template_data["alertName"] = body.alert_name
    return [
        Outgoing(
            user_id=user,
            type="marketplace_alert",
            title=f"New pitch: {body.pitch_title}",
            message=f'"{body.pitch_title}" matches your interests.',
            data={"pitchId": body.pitch_id, "url": url, "genre": body.genre},
            template="marketplace_alert",
            template_data=template_data,
        )
        for user in dict.fromkeys(body.user_ids)
    ]
