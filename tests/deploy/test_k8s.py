"""deploy/k8s: `kubectl kustomize` renders it, the output is valid against the Kubernetes
schemas (strict: unknown fields fail), and it has the shape the issue asks for — probes,
graceful termination, one clock with Recreate, the migration Job, a PodDisruptionBudget,
restricted pod security and resource requests for a small node."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.deploy.deployfiles import (
    ROOT,
    instructions,
    k8s_documents,
    pod_specs,
    render_kustomize,
    run,
    tool,
)

# The oldest and the newest Kubernetes minor kubernetes-validate 1.37 has schemas for that
# clusters still run; the manifests use nothing newer than policy/v1 and batch/v1.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


@pytest.fixture(scope="module")
def rendered() -> str:
    return render_kustomize()


@pytest.fixture(scope="module")
def documents(rendered: str) -> list[dict[str, Any]]:
    return k8s_documents(rendered)


def by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def only_container(spec: dict[str, Any]) -> dict[str, Any]:
    (container,) = spec["containers"]
    return dict(container)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_output_is_valid_against_the_kubernetes_schemas(
    rendered: str, version: str
) -> None:
    done = run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, "-"],
        stdin=rendered,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (
        f"kustomize output is not valid Kubernetes {version}:\n{done.stdout}\n{done.stderr}"
    )


def test_resources(documents: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name'].rsplit('-', 1)[0]}" for d in documents)
    assert kinds == [
        "ConfigMap/pipebot-config",  # generated names end in a content hash
        "Deployment/pipebot",
        "Deployment/pipebot",
        "Deployment/pipebot",
        "Job/pipebot",
        "PodDisruptionBudget/pipebot",
        "Secret/pipebot-secrets",
        "Service/pipebot",
    ]
    assert set(by_kind(documents, "Deployment")) == {
        "pipebot-web",
        "pipebot-worker",
        "pipebot-clock",
    }


def test_each_workload_runs_its_pipebot_command(documents: list[dict[str, Any]]) -> None:
    args = {name: only_container(spec)["args"] for name, spec in pod_specs(documents).items()}
    assert args == {
        "Deployment/pipebot-web": ["serve", "--role", "web"],
        "Deployment/pipebot-worker": ["serve", "--role", "worker"],
        "Deployment/pipebot-clock": ["clock"],
        "Job/pipebot-migrate": ["db", "upgrade"],
    }


def test_one_image_tagged_with_the_project_version(documents: list[dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    images = {only_container(spec)["image"] for spec in pod_specs(documents).values()}
    assert len(images) == 1, images
    assert images.pop().endswith(f"/pipebot:{version}"), "bump newTag in kustomization.yaml"


def test_web_probes_and_graceful_termination(documents: list[dict[str, Any]]) -> None:
    web = by_kind(documents, "Deployment")["pipebot-web"]
    spec = web["spec"]["template"]["spec"]
    container = only_container(spec)
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port == {"http": 8000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Liveness never asks the database: an outage would restart every pod.
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # The readiness check's own store timeout is 2 s; the probe must wait longer.
    assert container["readinessProbe"]["timeoutSeconds"] > 2
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # preStop + uvicorn's 10 s graceful shutdown fit in the grace period.
    assert spec["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + 10 + 5
    assert web["spec"]["replicas"] >= 2, "the PDB's minAvailable: 1 needs two replicas"
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_worker_grace_period_covers_the_slowest_answer(documents: list[dict[str, Any]]) -> None:
    from bot.settings import AgentSettings

    worker = by_kind(documents, "Deployment")["pipebot-worker"]
    timeout = AgentSettings.model_fields["timeout"].default
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > timeout


def test_exactly_one_clock_recreated_on_rollout(documents: list[dict[str, Any]]) -> None:
    clock = by_kind(documents, "Deployment")["pipebot-clock"]
    assert clock["spec"]["replicas"] == 1
    assert clock["spec"]["strategy"] == {"type": "Recreate"}


def test_migration_job(documents: list[dict[str, Any]]) -> None:
    job = by_kind(documents, "Job")["pipebot-migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_service_and_pdb_select_the_web_pods(documents: list[dict[str, Any]]) -> None:
    web = by_kind(documents, "Deployment")["pipebot-web"]
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    others = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in documents
        if d["kind"] in ("Deployment", "Job") and d["metadata"]["name"] != "pipebot-web"
    ]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    service = by_kind(documents, "Service")["pipebot-web"]
    pdb = by_kind(documents, "PodDisruptionBudget")["pipebot-web"]
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert selects(selector, pod_labels)
        assert not any(selects(selector, labels) for labels in others), selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert pdb["spec"]["minAvailable"] == 1


def test_every_pod_is_restricted(documents: list[dict[str, Any]]) -> None:
    """Pod Security Standards "restricted", plus a read-only root filesystem."""
    (user,) = [i.args for i in instructions() if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    for name, spec in pod_specs(documents).items():
        pod = spec["securityContext"]
        assert pod.get("runAsNonRoot") is True, name
        assert (pod.get("runAsUser"), pod.get("runAsGroup")) == (int(uid), int(gid)), (
            f"{name}: the image's USER is {user}"
        )
        assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        # Service links would put PIPEBOT_WEB_PORT=tcp://… among the settings.
        assert spec.get("enableServiceLinks") is False, name
        container = only_container(spec)
        security = container["securityContext"]
        assert security.get("allowPrivilegeEscalation") is False, name
        assert security.get("readOnlyRootFilesystem") is True, name
        assert security.get("capabilities") == {"drop": ["ALL"]}, name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be writable"


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def test_resources_fit_a_small_node(documents: list[dict[str, Any]]) -> None:
    cpu = memory = 0.0
    for name, spec in pod_specs(documents).items():
        resources = only_container(spec)["resources"]
        requests, limits = resources["requests"], resources["limits"]
        assert {"cpu", "memory"} <= set(requests), name
        # Idle RSS is ~135–150 MiB; a limit of about twice the request absorbs peaks.
        assert _quantity(requests["memory"]) >= 128 * 2**20, name
        assert _quantity(limits["memory"]) <= 2 * _quantity(requests["memory"]), name
        if name == "Deployment/pipebot-web":
            assert "cpu" not in limits, "a CPU limit throttles web and delays Slack's acks"
        replicas = next(
            d["spec"].get("replicas", 1)
            for d in documents
            if f"{d['kind']}/{d['metadata']['name']}" == name
        )
        cpu += replicas * _quantity(requests["cpu"])
        memory += replicas * _quantity(requests["memory"])
    # Everything, migration Job included, schedules on one 2-CPU / 4 GiB node.
    assert cpu <= 1.5 and memory <= 2 * 2**30, (cpu, memory / 2**20)
