"""`POST /webhooks/sns`: Amazon SNS over HTTPS (CloudWatch alarms), verified with AWS's signing certificate.

The certificate itself is fetched by the handler's adapter (cached) from a URL this module has validated.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.ingest.providers import common
from services.ingest.providers.base import Context, Delivery, Provider, Rejection, WebhookRequest
from services.ingest.providers.common import dig, text

NAME = "sns"
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = {"Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"}
SERVICE_DIMENSIONS = (
    "ServiceName",
    "FunctionName",
    "ApiName",
    "LoadBalancer",
    "TargetGroup",
    "QueueName",
    "TableName",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "ClusterName",
    "AutoScalingGroupName",
    "InstanceId",
)


def message(body: bytes) -> dict[str, Any] | Rejection:
    data = common.parse_json_object(body)
    if isinstance(data, Rejection):
        return data
    if not isinstance(data.get("Type"), str) or data["Type"] not in TYPES:
        return Rejection(400, f"not an SNS message: Type {text(data.get('Type'), 50)!r}")
    for key in ("MessageId", "TopicArn", "Timestamp", "Signature", "SignatureVersion", "SigningCertURL"):
        if not isinstance(data.get(key), str) or not data[key]:
            return Rejection(400, f"SNS message without {key}")
    return data


def is_sns_url(url: str, *, path_suffix: str | None = None) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not SNS_HOST.match(host) or parts.port not in (None, 443) or parts.username:
        return False
    return path_suffix is None or parts.path.endswith(path_suffix)


def certificate_url(req: WebhookRequest, ctx: Context) -> str | Rejection:
    """The SigningCertURL, only when https, on an `sns.<region>.amazonaws.com` host and a `.pem` file."""
    msg = message(req.body)
    if isinstance(msg, Rejection):
        return msg
    if msg["SignatureVersion"] not in ("1", "2"):
        return Rejection(401, f"unsupported SignatureVersion {text(msg['SignatureVersion'], 20)!r} (1 and 2 are)")
    url = msg["SigningCertURL"]
    if not is_sns_url(url, path_suffix=".pem"):
        return Rejection(401, "SigningCertURL is not an https .pem URL on an sns.<region>.amazonaws.com host")
    topics = ctx.settings.sns_topic_arns
    if topics and msg["TopicArn"] not in topics:
        return Rejection(403, "topic is not in ingest.sns_topic_arns")
    return str(url)


def string_to_sign(msg: dict[str, Any]) -> bytes:
    keys = NOTIFICATION_KEYS if msg.get("Type") == "Notification" else CONFIRMATION_KEYS
    out = []
    for key in keys:
        value = msg.get(key)
        if value is None:  # Subject is optional and then not part of the string
            continue
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode()


def verify(req: WebhookRequest, ctx: Context) -> Rejection | None:
    """SignatureVersion 1 (SHA1withRSA) or 2 (SHA256withRSA) over the documented string-to-sign."""
    msg = message(req.body)
    if isinstance(msg, Rejection):
        return msg
    if ctx.certificate is None:
        return Rejection(401, "no signing certificate")
    try:
        cert = x509.load_pem_x509_certificate(ctx.certificate)
    except ValueError:
        return Rejection(401, "the signing certificate is not a PEM certificate")
    if not cert.not_valid_before_utc <= ctx.now <= cert.not_valid_after_utc:
        return Rejection(401, "the signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return Rejection(401, "the signing certificate has no RSA key")
    try:
        signature = base64.b64decode(msg["Signature"], validate=True)
    except (binascii.Error, ValueError):
        return Rejection(401, "Signature is not base64")
    algorithm: hashes.HashAlgorithm = hashes.SHA1() if msg["SignatureVersion"] == "1" else hashes.SHA256()
    try:
        key.verify(signature, string_to_sign(msg), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return Rejection(401, "SNS signature does not match")
    return None


# ---------------------------------------------------------------- normalization


def _dimensions(trigger: Any) -> dict[str, str]:
    dims = dig(trigger, "Dimensions")
    if not isinstance(dims, list):  # multi-metric alarms: the first metric's dimensions
        metrics = dig(trigger, "Metrics")
        for m in metrics if isinstance(metrics, list) else []:
            dims = dig(m, "MetricStat", "Metric", "Dimensions")
            if isinstance(dims, list):
                break
    out = {}
    for d in dims if isinstance(dims, list) else []:
        name, value = text(dig(d, "name"), 200), text(dig(d, "value"), 1000)
        if name and value:
            out[name] = value
    return out


def _metric(trigger: Any) -> tuple[str | None, str | None]:
    name, namespace = text(dig(trigger, "MetricName"), 200), text(dig(trigger, "Namespace"), 200)
    if name is None:
        for m in dig(trigger, "Metrics") if isinstance(dig(trigger, "Metrics"), list) else []:
            metric = dig(m, "MetricStat", "Metric")
            if metric:
                return text(dig(metric, "MetricName"), 200), text(dig(metric, "Namespace"), 200)
    return name, namespace


def _alarm(msg: dict[str, Any], alarm: dict[str, Any], ctx: Context, delivery: str) -> Delivery:
    state = text(alarm.get("NewStateValue"), 50)
    name = text(alarm.get("AlarmName"), 500)
    trigger = alarm.get("Trigger")
    dims = _dimensions(trigger)
    metric, namespace = _metric(trigger)
    service = next((dims[d] for d in SERVICE_DIMENSIONS if d in dims), None) or name
    resource = "/".join(x for x in (namespace, metric) if x) + "".join(f" {k}={v}" for k, v in dims.items())
    reason = text(alarm.get("NewStateReason"), 5000)
    labels = {
        "region": text(alarm.get("Region")),
        "account": text(alarm.get("AWSAccountId")),
        "state": state,
        "namespace": namespace,
        "metric": metric,
        **dims,
    }
    event = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        status="resolved" if state == "OK" else "firing",
        title=name,
        service=service,
        resource=resource or None,
        description="\n".join(x for x in (text(alarm.get("AlarmDescription"), 5000), reason) if x),
        labels={k: v for k, v in labels.items() if v},
        links_=[],
        fingerprint_inputs={
            "alarm": text(alarm.get("AlarmArn"), 1000) or name or "",
            "account": text(alarm.get("AWSAccountId")) or "",
            "region": text(alarm.get("Region")) or "",
        },
        kind=common.guess_kind(metric, name),
        noise_hint="insufficient_data" if state == "INSUFFICIENT_DATA" else None,
        occurred_at=common.parse_time(alarm.get("StateChangeTime")) or common.parse_time(msg.get("Timestamp")),
        raw=msg,
    )
    return Delivery(delivery_id=delivery, events=(event,))


def _plain(msg: dict[str, Any], ctx: Context, delivery: str) -> Delivery:
    message_text = msg.get("Message")
    body = message_text if isinstance(message_text, str) else ""
    subject = text(msg.get("Subject"), 500)
    topic = text(msg.get("TopicArn"), 1000) or ""
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), None)
    event = common.alert_event(
        ctx,
        source=NAME,
        delivery_id=delivery,
        title=subject or first_line,
        service=topic.rsplit(":", 1)[-1] or None,
        resource=topic or None,
        description=body,
        labels={"topic": topic} if topic else {},
        fingerprint_inputs={"topic": topic, "subject": subject or ""},
        kind=common.guess_kind(subject, first_line),
        occurred_at=common.parse_time(msg.get("Timestamp")),
        raw=msg,
    )
    return Delivery(delivery_id=delivery, events=(event,))


def normalize(req: WebhookRequest, ctx: Context) -> Delivery | Rejection:
    msg = message(req.body)
    if isinstance(msg, Rejection):
        return msg
    delivery = common.delivery_key(msg["MessageId"]) or common.body_key(req.body)
    if msg["Type"] == "SubscriptionConfirmation":
        url = msg.get("SubscribeURL")
        if not isinstance(url, str) or not is_sns_url(url):
            return Rejection(400, "SubscribeURL is not an https URL on an sns.<region>.amazonaws.com host")
        return Delivery(delivery_id=None, confirm_url=url, reply={"subscribed": msg["TopicArn"]})
    if msg["Type"] == "UnsubscribeConfirmation":
        return Delivery(delivery_id=None, reply={"unsubscribed": msg["TopicArn"]})
    raw_message = msg.get("Message")
    alarm = None
    if isinstance(raw_message, str) and raw_message.lstrip().startswith("{"):
        try:
            alarm = orjson.loads(raw_message)
        except orjson.JSONDecodeError:
            alarm = None
    if isinstance(alarm, dict) and "AlarmName" in alarm and "NewStateValue" in alarm:
        return _alarm(msg, alarm, ctx, delivery)
    return _plain(msg, ctx, delivery)


PROVIDER = Provider(
    name=NAME,
    content_types=frozenset({"text/plain", "application/json"}),
    verify=verify,
    normalize=normalize,
    secret_env="PAGERPATCH_INGEST__SNS_TOPIC_ARNS",
    accepted_status=200,
    certificate_url=certificate_url,
)
