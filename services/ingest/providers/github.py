"""`POST /webhooks/github`: CI failures -> alert, bot mentions/labels -> task, closed/merged PRs -> pr.event."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qs

from schemas.events import PrEvent, PrEventPayload, TaskRequested, TaskRequestedPayload
from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import clip, dig, text

NAME = "github"
SIGNATURE = "x-hub-signature-256"
FAILED = ("failure", "timed_out", "startup_failure")  # a tuple: provider values may be unhashable


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    value = req.header(SIGNATURE)
    if not value:
        return Rejection(401, "missing X-Hub-Signature-256 signature")
    algo, sep, digest = value.strip().partition("=")
    if algo != "sha256" or not sep or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        return Rejection(401, "malformed X-Hub-Signature-256 (expected sha256=<64 hex digits>)")
    if not common.any_hmac_matches(ctx.secrets, req.body, [digest]):
        return Rejection(401, "X-Hub-Signature-256 does not match the body")
    return None


def _body(req: WebhookRequest) -> dict[str, Any] | Rejection:
    if req.content_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(req.body.decode(), strict_parsing=False)
        except UnicodeDecodeError:
            return Rejection(400, "form body is not UTF-8")
        payload = form.get("payload")
        if not payload:
            return Rejection(400, "form body has no `payload` field")
        return common.parse_json_object(payload[0].encode())
    return common.parse_json_object(req.body)


def mentions(body: str | None, bot: str) -> bool:
    return bool(body) and re.search(rf"(?<![\w@/])@{re.escape(bot)}(?![\w-])", body or "", re.I) is not None


def _task(ctx: Context, delivery: str, *, title: Any, body: Any, repo: Any, by: Any, url: Any) -> TaskRequested:
    payload = TaskRequestedPayload(
        origin="github",
        title=text(title, 500) or "(untitled)",
        body=clip(body if isinstance(body, str) else "", 20_000),
        repo=text(repo, 300),
        requested_by=text(by, 500) or "",
        url=text(url, 2000) or "",
        delivery_id=delivery[:300],
    )
    return TaskRequested.create(payload, source="ingest", team=ctx.team, event_id=common.event_id_for(NAME, delivery))


def _ci_failure(data: dict[str, Any], ctx: Context, delivery: str, event: str) -> Delivery:
    repo = dig(data, "repository")
    full_name = text(dig(repo, "full_name"), 300)
    if event == "check_run":
        run = dig(data, "check_run")
        name = text(dig(run, "name"), 200)
        branch = text(dig(run, "check_suite", "head_branch"), 200)
        output = dig(run, "output")
        details = [text(dig(output, k), 8000) for k in ("title", "summary", "text")]
        inputs = {"repository": full_name or "", "check": name or "", "branch": branch or ""}
        title = f"CI failure: {name} ({dig(run, 'conclusion')}) on {full_name}@{branch}"
        extra_links = [dig(run, "html_url"), dig(run, "details_url")]
        labels = {
            "branch": branch or "",
            "check": name or "",
            "app": text(dig(run, "check_suite", "app", "slug")) or "",
        }
    else:
        run = dig(data, "workflow_job")
        name = text(dig(run, "name"), 200)
        workflow = text(dig(run, "workflow_name"), 200)
        branch = text(dig(run, "head_branch"), 200)
        steps = dig(run, "steps") if isinstance(dig(run, "steps"), list) else []
        failed = [text(dig(s, "name"), 200) for s in steps if dig(s, "conclusion") in FAILED]
        details = [f"failed step: {s}" for s in failed if s]
        inputs = {"repository": full_name or "", "workflow": workflow or "", "job": name or "", "branch": branch or ""}
        job = f"{workflow} / {name}" if workflow else name
        title = f"CI failure: {job} ({dig(run, 'conclusion')}) on {full_name}@{branch}"
        extra_links = [dig(run, "html_url")]
        labels = {"branch": branch or "", "job": name or "", "workflow": workflow or ""}
    event_obj = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        title=title,
        service=text(dig(repo, "name"), 200),
        resource=full_name,
        description="\n".join(d for d in details if d),
        labels={k: v for k, v in labels.items() if v},
        links_=common.links(*extra_links, dig(repo, "html_url")),
        commit=text(dig(run, "head_sha"), 100),
        fingerprint_inputs=inputs,
        kind="ci_failure",
        occurred_at=common.parse_time(dig(run, "completed_at")),
        raw=data,
    )
    return Delivery(delivery_id=delivery, events=(event_obj,))


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    event = (req.header("x-github-event") or "").strip()
    if not event:
        return Rejection(400, "missing X-GitHub-Event header")
    data = _body(req)
    if isinstance(data, Rejection):
        return data
    delivery = common.delivery_key(req.header("x-github-delivery")) or common.body_key(req.body)
    action = dig(data, "action")
    bot, label = ctx.settings.bot_name, ctx.settings.bot_label
    if event == "ping":
        return Delivery(delivery_id=delivery, reply={"pong": True, "zen": text(dig(data, "zen"), 200) or ""})
    if event in ("check_run", "workflow_job"):
        conclusion = dig(data, event, "conclusion")
        if action == "completed" and conclusion in FAILED:
            return _ci_failure(data, ctx, delivery, event)
        return Delivery.ignored(delivery, f"{event} {action} with conclusion {conclusion!r} is not a failure")
    repo = text(dig(data, "repository", "full_name"), 300)
    by = dig(data, "sender", "login")
    if dig(data, "sender", "type") == "Bot":
        return Delivery.ignored(delivery, "sent by a bot")
    if event == "issues":
        issue = dig(data, "issue")
        labels = [dig(x, "name") for x in (dig(issue, "labels") or []) if isinstance(x, dict)]
        wanted = (
            action in ("opened", "reopened")
            and (label in labels or mentions(dig(issue, "body"), bot) or mentions(dig(issue, "title"), bot))
        ) or (action == "labeled" and dig(data, "label", "name") == label)
        if not wanted:
            return Delivery.ignored(delivery, f"issue {action}: no @{bot} mention or {label!r} label")
        task = _task(
            ctx,
            delivery,
            title=dig(issue, "title"),
            body=dig(issue, "body"),
            repo=repo,
            by=by,
            url=dig(issue, "html_url"),
        )
        return Delivery(delivery_id=delivery, events=(task,))
    if event == "issue_comment":
        comment = dig(data, "comment")
        if action != "created" or not mentions(dig(comment, "body"), bot):
            return Delivery.ignored(delivery, f"comment {action}: no @{bot} mention")
        task = _task(
            ctx,
            delivery,
            title=dig(data, "issue", "title"),
            body=dig(comment, "body"),
            repo=repo,
            by=by,
            url=dig(comment, "html_url"),
        )
        return Delivery(delivery_id=delivery, events=(task,))
    if event == "pull_request" and action in ("closed", "reopened"):
        pr = dig(data, "pull_request")
        kind: Literal["closed", "merged", "reopened"] = (
            "reopened" if action == "reopened" else "merged" if dig(pr, "merged") is True else "closed"
        )
        number = dig(pr, "number") if isinstance(dig(pr, "number"), int) else dig(data, "number")
        payload = PrEventPayload(
            provider=NAME,
            action=kind,
            repo=repo or "",
            number=number if isinstance(number, int) and not isinstance(number, bool) else None,
            url=text(dig(pr, "html_url"), 2000) or "",
            branch=text(dig(pr, "head", "ref"), 300) or "",
            actor=text(by, 500) or "",
        )
        pr_event = PrEvent.create(payload, source="ingest", team=ctx.team, event_id=common.event_id_for(NAME, delivery))
        return Delivery(delivery_id=delivery, events=(pr_event,))
    return Delivery.ignored(delivery, f"{event} {action or ''}".strip() + " is not used by pagerpatch")


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"application/json", "application/x-www-form-urlencoded"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_GITHUB_WEBHOOK_SECRET",
)
