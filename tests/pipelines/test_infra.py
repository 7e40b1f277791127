"""The cron schedule in infra/ is valid and submits a command the real CLI accepts (the Kubernetes
manifests of infra/k8s/ are checked by test_k8s_manifests)."""

import shlex
from pathlib import Path

from catalog.cli import build_parser
from pipelines.__main__ import COMMANDS

INFRA = Path(__file__).resolve().parents[2] / "infra"


def parse_pipelines_command(command: str):
    argv = shlex.split(command)
    start = argv.index("pipelines") + 1
    assert argv[start - 2 : start] == ["-m", "pipelines"], command
    return build_parser("python -m pipelines", "", COMMANDS).parse_args(argv[start:])


def test_cron_line_submits_refresh_as_a_ray_job():
    lines = [line for line in (INFRA / "refresh.cron").read_text().splitlines() if line and not line.startswith("#")]
    job = [line for line in lines if "ray job submit" in line]
    assert len(job) == 1
    fields = job[0].split(None, 5)
    assert len(fields) == 6 and all(f.replace("*", "").replace(",", "").isdigit() or f == "*" for f in fields[:5])
    args = parse_pipelines_command(job[0].split(" -- ", 1)[1].split(">>")[0])
    assert args.command == "refresh"
