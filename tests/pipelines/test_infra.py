"""The schedules in infra/ are valid and submit a command the real CLI accepts."""

import shlex
from pathlib import Path

import yaml

from catalog.cli import build_parser
from pipelines.__main__ import COMMANDS

INFRA = Path(__file__).resolve().parents[2] / "infra"


def parse_pipelines_command(command: str):
    argv = shlex.split(command)
    start = argv.index("pipelines") + 1
    assert argv[start - 2 : start] == ["-m", "pipelines"], command
    return build_parser("python -m pipelines", "", COMMANDS).parse_args(argv[start:])


def test_kubernetes_cronjob_creates_a_rayjob_running_refresh():
    docs = list(yaml.safe_load_all((INFRA / "k8s-refresh-cronjob.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    assert {"CronJob", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
    cron = kinds["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert len(cron["schedule"].split()) == 5
    rayjob = yaml.safe_load(kinds["ConfigMap"]["data"]["rayjob.yaml"])
    assert rayjob["kind"] == "RayJob" and rayjob["apiVersion"] == "ray.io/v1"
    args = parse_pipelines_command(rayjob["spec"]["entrypoint"])
    assert args.command == "refresh"
    role = kinds["Role"]["rules"][0]
    assert role["apiGroups"] == ["ray.io"] and "create" in role["verbs"]


def test_cron_line_submits_refresh_as_a_ray_job():
    lines = [line for line in (INFRA / "refresh.cron").read_text().splitlines() if line and not line.startswith("#")]
    job = [line for line in lines if "ray job submit" in line]
    assert len(job) == 1
    fields = job[0].split(None, 5)
    assert len(fields) == 6 and all(f.replace("*", "").replace(",", "").isdigit() or f == "*" for f in fields[:5])
    args = parse_pipelines_command(job[0].split(" -- ", 1)[1].split(">>")[0])
    assert args.command == "refresh"
