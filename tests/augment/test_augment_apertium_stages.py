"""Apertium stages run in sequence through scratch files: same bytes as the `a | b | c` pipe."""

from __future__ import annotations

import subprocess

import pytest

from augment.text.translate.apertium import ApertiumError, ApertiumPipe, decode_replies, encode_batch

CAPTIONS = [
    "A man named <person> rides a brown horse along the sandy beach near the old wooden pier .",
    "two dogs play in the snow",
    "A girl in a red coat [smiling] holds 3 balloons at the fair .",
]


@pytest.mark.parametrize("pivot", ["spa", "cat"])
def test_sequential_stages_match_the_pipe(pivot: str) -> None:
    pipe = ApertiumPipe((f"eng-{pivot}", f"{pivot}-eng"))
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", " | ".join(pipe.stages)],
        input=encode_batch(CAPTIONS),
        capture_output=True,
        check=True,
    ).stdout
    assert pipe.run(CAPTIONS) == decode_replies(piped.split(b"\0"), len(CAPTIONS), "pipe")


def test_failing_stage_is_named() -> None:
    pipe = ApertiumPipe(("eng-spa",))
    pipe.stages.insert(2, "false")
    with pytest.raises(ApertiumError, match=r"apertium eng-spa: exit 1: .*stage 3/\d+ false failed"):
        pipe.run(CAPTIONS)
