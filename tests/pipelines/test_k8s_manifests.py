"""infra/k8s: every manifest is a valid object of its kind, and every command it runs is a real lipforge command.

Core objects (ServiceAccount, ConfigMap, Secret, CronJob, ...) are checked against the
`kubernetes` client's models: each field must be one the model declares (the client's own
deserializer ignores unknown ones, so a walk over `attribute_map`/`openapi_types` does that),
and `ApiClient` deserialization must accept the object (required fields). KubeRay's
RayCluster and RayJob are not in the client: their fields are checked against KUBERAY_TYPES
below, the `ray.io/v1` API of KubeRay v1.7.0 as its generated reference documents it
(https://github.com/ray-project/kuberay/blob/v1.7.0/docs/reference/api.md), and their pod
templates against the client's V1PodTemplateSpec. Every entrypoint and container command is
parsed by the real lipforge CLI with its config loaded (overrides applied), and the
Dockerfile's sources and commands must exist. Each check is also run on a broken copy, so
that a misspelt field, a missing name or an unknown command is seen to fail.
"""

from __future__ import annotations

import argparse
import copy
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from catalog.cli import build_parser
from catalog.config import load_config

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
DOCKERFILE = K8S / "Dockerfile"
IMAGE_DIR = "/opt/lipforge"  # the Dockerfile's WORKDIR: the checkout inside the image
IMAGES = {"ghcr.io/lipforge/lipforge:cpu", "ghcr.io/lipforge/lipforge:cuda"}
CREDENTIAL_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "RAY_AUTH_TOKEN"}

# kind -> (apiVersion, kubernetes client model) for the core objects the manifests may hold.
CORE_KINDS = {
    "ServiceAccount": ("v1", "V1ServiceAccount"),
    "ConfigMap": ("v1", "V1ConfigMap"),
    "Secret": ("v1", "V1Secret"),
    "Service": ("v1", "V1Service"),
    "CronJob": ("batch/v1", "V1CronJob"),
    "Job": ("batch/v1", "V1Job"),
    "Role": ("rbac.authorization.k8s.io/v1", "V1Role"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "V1RoleBinding"),
}

# KubeRay's ray.io/v1 types (v1.7.0 reference above): field -> type, in the client's type
# notation; a name in this table or a kubernetes model name nests, "object" is not walked.
KUBERAY_TYPES: dict[str, dict[str, str]] = {
    "RayCluster": {"apiVersion": "str", "kind": "str", "metadata": "V1ObjectMeta", "spec": "RayClusterSpec"},
    "RayJob": {"apiVersion": "str", "kind": "str", "metadata": "V1ObjectMeta", "spec": "RayJobSpec"},
    "RayJobSpec": {
        "activeDeadlineSeconds": "int",
        "backoffLimit": "int",
        "rayClusterSpec": "RayClusterSpec",
        "submitterPodTemplate": "V1PodTemplateSpec",
        "metadata": "dict[str, str]",
        "clusterSelector": "dict[str, str]",
        "submitterConfig": "SubmitterConfig",
        "managedBy": "str",
        "deletionStrategy": "object",
        "entrypoint": "str",
        "runtimeEnvYAML": "str",
        "jobId": "str",
        "submissionMode": "str",
        "entrypointResources": "str",
        "entrypointNumCpus": "float",
        "entrypointNumGpus": "float",
        "ttlSecondsAfterFinished": "int",
        "preRunningDeadlineSeconds": "int",
        "shutdownAfterJobFinishes": "bool",
        "suspend": "bool",
    },
    "SubmitterConfig": {"backoffLimit": "int"},
    "RayClusterSpec": {
        "upgradeStrategy": "object",
        "authOptions": "AuthOptions",
        "suspend": "bool",
        "managedBy": "str",
        "autoscalerOptions": "AutoscalerOptions",
        "headServiceAnnotations": "dict[str, str]",
        "enableInTreeAutoscaling": "bool",
        "gcsFaultToleranceOptions": "object",
        "historyServerOptions": "object",
        "networkPolicy": "object",
        "tlsOptions": "object",
        "headGroupSpec": "HeadGroupSpec",
        "rayVersion": "str",
        "workerGroupSpecs": "list[WorkerGroupSpec]",
    },
    "AuthOptions": {"enableK8sTokenAuth": "bool", "secretName": "str", "mode": "str"},
    "AutoscalerOptions": {
        "resources": "V1ResourceRequirements",
        "image": "str",
        "imagePullPolicy": "str",
        "securityContext": "V1SecurityContext",
        "idleTimeoutSeconds": "int",
        "upscalingMode": "str",
        "version": "str",
        "env": "list[V1EnvVar]",
        "envFrom": "list[V1EnvFromSource]",
        "volumeMounts": "list[V1VolumeMount]",
        "command": "list[str]",
        "args": "list[str]",
    },
    "HeadGroupSpec": {
        "template": "V1PodTemplateSpec",
        "headService": "V1Service",
        "enableIngress": "bool",
        "ingressOptions": "object",
        "resources": "dict[str, str]",
        "labels": "dict[str, str]",
        "rayStartParams": "dict[str, str]",
        "serviceType": "str",
    },
    "WorkerGroupSpec": {
        "suspend": "bool",
        "groupName": "str",
        "replicas": "int",
        "minReplicas": "int",
        "maxReplicas": "int",
        "idleTimeoutSeconds": "int",
        "priority": "int",
        "resources": "dict[str, str]",
        "labels": "dict[str, str]",
        "rayStartParams": "dict[str, str]",
        "template": "V1PodTemplateSpec",
        "scaleStrategy": "ScaleStrategy",
        "numOfHosts": "int",
    },
    "ScaleStrategy": {"workersToDelete": "list[str]"},
}
KUBERAY_ENUMS = {
    "submissionMode": {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"},
    "upscalingMode": {"Default", "Aggressive", "Conservative"},
    "mode": {"disabled", "token"},
}
# Ray's runtime_env keys (ray.runtime_env.RuntimeEnv) a runtimeEnvYAML may use.
RUNTIME_ENV_KEYS = {"working_dir", "py_modules", "pip", "uv", "conda", "env_vars", "excludes", "config", "image_uri"}
PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


# ---------------------------------------------------------------------------- loading


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every YAML document under infra/k8s."""
    docs = []
    for path in sorted(K8S.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


DOCS = manifests()


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in DOCS if doc.get("kind") == kind]


def env_config() -> dict[str, str]:
    (config,) = [doc for doc in of_kind("ConfigMap") if doc["metadata"]["name"] == "lipforge-env"]
    return config["data"]


# ---------------------------------------------------------------------------- field checks


def model_fields(type_name: str) -> dict[str, str]:
    """JSON field -> type of a KubeRay type or a kubernetes client model."""
    if type_name in KUBERAY_TYPES:
        return KUBERAY_TYPES[type_name]
    model = getattr(k8s, type_name, None)
    assert model is not None, f"no kubernetes model or KubeRay type named {type_name}"
    return {model.attribute_map[attr]: kind for attr, kind in model.openapi_types.items()}


def field_errors(data: Any, type_name: str, path: str, quantities: bool = False) -> list[str]:
    """Every field of `data` that `type_name` does not declare, or whose value has the wrong type."""
    if type_name == "object":
        return []
    if type_name.startswith("list["):
        if not isinstance(data, list):
            return [f"{path}: expected a list, got {type(data).__name__}"]
        return [e for i, item in enumerate(data) for e in field_errors(item, type_name[5:-1], f"{path}[{i}]")]
    if type_name.startswith("dict["):
        if not isinstance(data, dict):
            return [f"{path}: expected a mapping, got {type(data).__name__}"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in data.items() for e in field_errors(v, inner, f"{path}.{k}", quantities)]
    if type_name in PRIMITIVES:
        allowed = PRIMITIVES[type_name] + ((int, float) if quantities else ())  # 4 and "4" are both quantities
        if not isinstance(data, allowed) or (isinstance(data, bool) and type_name != "bool"):
            return [f"{path}: expected {type_name}, got {data!r}"]
        return []
    if type_name in ("date", "datetime"):
        return []
    if not isinstance(data, dict):
        return [f"{path}: expected a {type_name} mapping, got {type(data).__name__}"]
    fields = model_fields(type_name)
    errors = []
    for key, value in data.items():
        if key not in fields:
            errors.append(f"{path}.{key}: unknown field of {type_name} (known: {', '.join(sorted(fields))})")
        elif key in KUBERAY_ENUMS and type_name in KUBERAY_TYPES and value not in KUBERAY_ENUMS[key]:
            errors.append(f"{path}.{key}: {value!r} is not one of {sorted(KUBERAY_ENUMS[key])}")
        else:
            errors.extend(field_errors(value, fields[key], f"{path}.{key}", type_name == "V1ResourceRequirements"))
    return errors


def deserialize(data: dict[str, Any], type_name: str) -> Any:
    """The kubernetes client's own deserialization (raises on a missing required field)."""
    return k8s.ApiClient()._ApiClient__deserialize(copy.deepcopy(data), type_name)


def object_errors(doc: dict[str, Any]) -> list[str]:
    kind = doc.get("kind")
    where = f"{kind} {doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName')}"
    if kind in CORE_KINDS:
        api_version, model = CORE_KINDS[kind]
        if doc.get("apiVersion") != api_version:
            return [f"{where}: apiVersion {doc.get('apiVersion')!r}, expected {api_version!r}"]
        errors = field_errors(doc, model, where)
        try:
            deserialize(doc, model)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
        return errors
    if kind in ("RayCluster", "RayJob"):
        if doc.get("apiVersion") != "ray.io/v1":
            return [f"{where}: apiVersion {doc.get('apiVersion')!r}, expected 'ray.io/v1'"]
        errors = field_errors(doc, kind, where)
        for path, template in pod_templates(doc):
            try:
                assert isinstance(deserialize(template, "V1PodTemplateSpec"), k8s.V1PodTemplateSpec)
            except ValueError as exc:
                errors.append(f"{where} {path}: {exc}")
        return errors + ray_semantics_errors(doc, where)
    return [f"{where}: no check for kind {kind!r} (add it to CORE_KINDS or KUBERAY_TYPES)"]


def cluster_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] == "RayCluster":
        return [doc["spec"]]
    return [doc["spec"]["rayClusterSpec"]] if "rayClusterSpec" in doc["spec"] else []


def pod_templates(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, pod template) of every pod a RayCluster, RayJob or CronJob runs."""
    if doc["kind"] == "CronJob":
        return [("spec.jobTemplate.spec.template", doc["spec"]["jobTemplate"]["spec"]["template"])]
    found = []
    for spec in cluster_specs(doc):
        found.append(("headGroupSpec.template", spec["headGroupSpec"]["template"]))
        found += [(f"workerGroupSpecs[{g['groupName']}].template", g["template"]) for g in spec["workerGroupSpecs"]]
    if doc["kind"] == "RayJob" and "submitterPodTemplate" in doc["spec"]:
        found.append(("spec.submitterPodTemplate", doc["spec"]["submitterPodTemplate"]))
    return found


def ray_semantics_errors(doc: dict[str, Any], where: str) -> list[str]:
    """What the KubeRay reference says beyond field names."""
    errors = []
    pinned = re.search(r'"ray\[[^]]*\]==([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    for spec in cluster_specs(doc):
        if spec.get("rayVersion") != pinned:
            errors.append(f"{where}: rayVersion {spec.get('rayVersion')!r}, but pyproject.toml pins ray {pinned}")
        groups = spec.get("workerGroupSpecs", [])
        if len({g["groupName"] for g in groups}) != len(groups):
            errors.append(f"{where}: worker group names repeat")
        for g in groups:
            if not g.get("minReplicas", 0) <= g.get("replicas", 0) <= g.get("maxReplicas", 2**31 - 1):
                errors.append(f"{where}: group {g['groupName']}: replicas outside [minReplicas, maxReplicas]")
    if doc["kind"] == "RayJob":
        spec = doc["spec"]
        if ("rayClusterSpec" in spec) == ("clusterSelector" in spec):
            errors.append(f"{where}: name exactly one of rayClusterSpec and clusterSelector")
        if spec.get("ttlSecondsAfterFinished", 0) > 0 and not spec.get("shutdownAfterJobFinishes"):
            errors.append(f"{where}: ttlSecondsAfterFinished needs shutdownAfterJobFinishes: true")
        if "clusterSelector" in spec and spec.get("shutdownAfterJobFinishes"):
            errors.append(f"{where}: shutdownAfterJobFinishes would delete a cluster the job did not create")
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML", "{}"))
        if not isinstance(runtime_env, dict) or set(runtime_env) - RUNTIME_ENV_KEYS:
            errors.append(f"{where}: runtimeEnvYAML {runtime_env!r}: keys must be among {sorted(RUNTIME_ENV_KEYS)}")
        elif runtime_env.get("working_dir", IMAGE_DIR) != IMAGE_DIR:
            errors.append(f"{where}: working_dir {runtime_env['working_dir']!r} is not the image's {IMAGE_DIR}")
    return errors


# ---------------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    """The real `python -m PACKAGE` parsers (each package's __main__ command list)."""
    import catalog.__main__
    import pipelines.__main__
    import training.__main__

    catalog_parser = build_parser("python -m catalog", "", catalog.__main__.COMMANDS)
    catalog_parser.add_argument("--root")
    return {
        "pipelines": build_parser("python -m pipelines", "", pipelines.__main__.COMMANDS),
        "training": build_parser("python -m training", "", training.__main__.COMMANDS),
        "catalog": catalog_parser,
    }


def expand(argv: list[str], env: dict[str, str], pattern: str) -> list[str]:
    """Substitute environment references ($VAR in a shell entrypoint, $(VAR) in a container command)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"{match.group(0)} is not set in the ConfigMap lipforge-env"
        return env[name]

    return [re.sub(pattern, value, arg) for arg in argv]


SHELL_VAR = r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"
K8S_VAR = r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)"


def lipforge_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every lipforge command a manifest runs, environment references expanded."""
    env = env_config()
    found = []
    for doc in of_kind("RayJob"):
        entrypoint = doc["spec"]["entrypoint"]
        found.append((f"RayJob {doc['metadata']['generateName']}", expand(shlex.split(entrypoint), env, SHELL_VAR)))
    for doc in of_kind("CronJob"):
        for container in doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
            argv = expand(container.get("command", []) + container.get("args", []), env, K8S_VAR)
            assert argv[:3] == ["ray", "job", "submit"] and "--" in argv, argv
            found.append((f"CronJob {doc['metadata']['name']}", argv[argv.index("--") + 1 :]))
    return found


def command_errors(argv: list[str], parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Why `argv` is not a lipforge command that runs: unknown command or option, missing or invalid config."""
    if argv[:2] != ["python", "-m"] or len(argv) < 3 or argv[2] not in parsers:
        return [f"{shlex.join(argv)}: not `python -m pipelines|training|catalog ...`"]
    try:
        args = parsers[argv[2]].parse_args(argv[3:])
    except SystemExit:
        return [f"{shlex.join(argv)}: rejected by the {argv[2]} CLI"]
    config = getattr(args, "config", None)
    if config is None:
        return []
    if not (REPO / config).is_file():
        return [f"{shlex.join(argv)}: config {config} is not in the repository"]
    from pipelines.stages.config import BuildConfig
    from training.config import TrainConfig

    schema = {"train": TrainConfig, "build": BuildConfig, "refresh": BuildConfig, "filter": BuildConfig}
    if args.command in schema:
        try:
            load_config(schema[args.command], str(REPO / config), args.overrides)
        except Exception as exc:
            return [f"{shlex.join(argv)}: {exc}"]
    return []


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


# ---------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued RUN
            continue
        current += " " + line[:-1] if line.endswith("\\") else " " + line
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def dockerfile_errors(text: str, parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    errors = []
    instructions = dockerfile_instructions(text)
    for op, args in instructions:
        if op in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            errors += [
                f"{op} {args}: {src} is not in the repository" for src in parts[:-1] if not (REPO / src).exists()
            ]
        if op == "RUN":
            for script in re.findall(r"\bbash\s+(\S+)", args):
                if not (REPO / script).is_file():
                    errors.append(f"RUN: {script} is not in the repository")
            for command in re.findall(r"(?:\.venv/bin/)?python3? -m (pipelines|training|catalog) ([\w-]+)", args):
                if command[1] not in subcommands(parsers[command[0]]):
                    errors.append(f"RUN: python -m {command[0]} {command[1]}: no such command")
    workdirs = [args for op, args in instructions if op == "WORKDIR"]
    if workdirs != [IMAGE_DIR]:
        errors.append(f"WORKDIR {workdirs}, expected [{IMAGE_DIR!r}] (the manifests' working_dir)")
    env = " ".join(args for op, args in instructions if op == "ENV")
    if f"PATH={IMAGE_DIR}/.venv/bin:" not in env:
        errors.append("ENV: the venv is not first on PATH (the manifests run `ray` and `python` by name)")
    if "bash infra/setup.sh" not in text:
        errors.append("RUN: the project is not installed with infra/setup.sh (the way `make setup` does)")
    return errors


# ---------------------------------------------------------------------------- tests


def test_infra_k8s_holds_the_cluster_the_jobs_and_the_schedule():
    kinds = {doc["kind"] for _, doc in DOCS}
    assert {"RayCluster", "RayJob", "CronJob", "ConfigMap", "Secret", "ServiceAccount"} <= kinds
    components = {doc["metadata"]["labels"]["app.kubernetes.io/component"] for doc in of_kind("RayJob")}
    assert components == {"build", "train", "refresh"}


def doc_id(name: str, doc: dict[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{name}:{doc.get('kind')}:{meta.get('name') or meta.get('generateName', '').rstrip('-')}"


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[doc_id(n, d) for n, d in DOCS])
def test_manifest_fields_are_those_of_its_kind(name, doc):
    assert object_errors(doc) == []


def test_every_lipforge_command_in_the_manifests_is_accepted_by_the_cli(parsers):
    commands = lipforge_commands()
    assert {argv[3] for _, argv in commands} == {"build", "train", "refresh"}
    for where, argv in commands:
        assert command_errors(argv, parsers) == [], where


def test_rayjob_entrypoints_are_plain_commands():
    # KubeRay pastes the entrypoint into the submitter's shell line (`... -- ENTRYPOINT ; fi`):
    # a `;`, `&&` or `|` in it would run in the submitter pod instead of the Ray job.
    for doc in of_kind("RayJob"):
        assert not re.search(r"[;&|<>`]|\$\(", doc["spec"]["entrypoint"]), doc["spec"]["entrypoint"]


def test_credentials_come_only_from_secrets():
    secrets = {doc["metadata"]["name"]: doc for doc in of_kind("Secret")}
    for secret in secrets.values():  # the checked-in Secrets are templates: no value filled in
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        assert all(v == "" for v in values.values()), secret["metadata"]["name"]
    assert not CREDENTIAL_VARS & set(env_config())
    config_maps = {doc["metadata"]["name"] for doc in of_kind("ConfigMap")}
    accounts = {doc["metadata"]["name"] for doc in of_kind("ServiceAccount")}
    for doc in of_kind("RayCluster") + of_kind("RayJob") + of_kind("CronJob"):
        for path, template in pod_templates(doc):
            assert template["spec"].get("serviceAccountName") in accounts, path
            for container in template["spec"]["containers"]:
                where = f"{doc['kind']} {path} {container['name']}"
                assert container["image"] in IMAGES, where
                gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
                assert (gpus is not None) <= container["image"].endswith(":cuda"), where
                env = {e["name"]: e for e in container.get("env", [])}
                for name in CREDENTIAL_VARS & set(env):
                    assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"] in secrets, where
                # Ray 2.60 clusters use token auth: every Ray container and client has the mode and the token.
                assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "lipforge-ray-token", where
                sources = container.get("envFrom", [])
                assert {"configMapRef": {"name": "lipforge-env"}} in sources, where
                for source in sources:
                    ref = source.get("secretRef") or source.get("configMapRef")
                    assert ref["name"] in (secrets if "secretRef" in source else config_maps), where
    assert env_config()["RAY_AUTH_MODE"] == "token"
    assert env_config()["LIPFORGE_ROOT"].startswith("s3://")


def test_cronjob_submits_to_the_head_service_of_the_raycluster():
    clusters = {doc["metadata"]["name"] for doc in of_kind("RayCluster")}
    for doc in of_kind("CronJob"):
        spec = doc["spec"]
        assert len(spec["schedule"].split()) == 5 and spec["concurrencyPolicy"] == "Forbid"
        (container,) = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        (address,) = [a.split("=", 1)[1] for a in container["command"] if a.startswith("--address=")]
        assert re.fullmatch(r"http://(.+)-head-svc:8265", address).group(1) in clusters
        assert container["workingDir"] == IMAGE_DIR
    for doc in of_kind("RayJob"):
        if "clusterSelector" in doc["spec"]:
            assert doc["spec"]["clusterSelector"]["ray.io/cluster"] in clusters


def test_dockerfile_builds_from_files_in_the_repository(parsers):
    text = DOCKERFILE.read_text()
    assert dockerfile_errors(text, parsers) == []
    assert re.search(r"ARG VARIANT=cpu", text) and "cpu)" in text and "cuda)" in text
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "dev" in pyproject["project"]["optional-dependencies"]  # the dependency layer reads it
    lines = (K8S / "Dockerfile.dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".venv", ".cache", "data", ".git"} <= ignored
    assert not {".gitignore", "pyproject.toml", "infra", "configs"} & ignored


# ---------------------------------------------------------------------------- the checks can fail


def first(kind: str) -> dict[str, Any]:
    return copy.deepcopy(of_kind(kind)[0])


def test_a_misspelt_core_field_is_caught():
    cron = first("CronJob")
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["envFormm"] = container.pop("envFrom")
    errors = object_errors(cron)
    assert len(errors) == 1 and ".containers[0].envFormm: unknown field of V1Container" in errors[0]


def test_a_misspelt_kuberay_field_is_caught():
    cluster = first("RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    errors = object_errors(cluster)
    assert any(".workerGroupSpecs[0].maxReplica: unknown field of WorkerGroupSpec" in e for e in errors)
    assert any(".containers[0].imagePullPolicyy: unknown field of V1Container" in e for e in errors)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda job: job["spec"].update(submissionMode="K8sMode"), "'K8sMode' is not one of"),
        (lambda job: job["spec"]["rayClusterSpec"].update(rayVersion="2.9.0"), "but pyproject.toml pins ray"),
        (
            lambda job: job["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
            "expected str",
        ),
        (lambda job: job["spec"].update(clusterSelector={"ray.io/cluster": "lipforge"}), "exactly one of"),
        (lambda job: job["spec"].update(runtimeEnvYAML="workdir: /opt/lipforge"), "runtimeEnvYAML"),
        (
            lambda job: job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0].pop("name"),
            "Invalid value for `name`, must not be `None`",
        ),
    ],
    ids=["submission-mode", "ray-version", "start-param-not-string", "two-clusters", "runtime-env-key", "no-name"],
)
def test_a_broken_rayjob_is_caught(change, message):
    job = first("RayJob")
    change(job)
    assert any(message in e for e in object_errors(job)), object_errors(job)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ("python -m pipelines bulid configs/demo.yaml", "rejected by the pipelines CLI"),
        ("python -m pipelines build configs/missing.yaml", "config configs/missing.yaml is not in the repository"),
        ("python -m training train configs/train/demo.yaml --set run.worker=2", "run.worker"),
        ("python -m training train configs/train/demo.yaml --epochs 3", "rejected by the training CLI"),
        ("python -m lipforge build configs/demo.yaml", "not `python -m pipelines|training|catalog"),
    ],
)
def test_a_command_the_cli_does_not_have_is_caught(parsers, argv, message):
    errors = command_errors(shlex.split(argv), parsers)
    assert len(errors) == 1 and message in errors[0], errors


def test_an_entrypoint_naming_an_unset_variable_is_caught():
    with pytest.raises(AssertionError, match=r"\$LIPFORGE_BUCKET is not set in the ConfigMap lipforge-env"):
        expand(["--root", "$LIPFORGE_BUCKET"], env_config(), SHELL_VAR)


def test_a_dockerfile_copying_a_missing_file_is_caught(parsers):
    broken = DOCKERFILE.read_text().replace("COPY pyproject.toml ./", "COPY requirements.txt ./")
    broken = broken.replace("python -m pipelines doctor", "python -m pipelines doktor")
    errors = dockerfile_errors(broken, parsers)
    assert any("requirements.txt is not in the repository" in e for e in errors)
    assert any("python -m pipelines doktor: no such command" in e for e in errors)
