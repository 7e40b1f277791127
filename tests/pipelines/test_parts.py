"""The build's actor pool on a real local Ray: an actor whose process dies mid-call (as on a
lost node) costs its item a second attempt on another actor, never the item itself; an item
that kills every actor it meets fails the stage naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.stages.parts import ITEM_ATTEMPTS, run_actors

pytestmark = pytest.mark.slow  # a real local Ray


class Squarer:
    """Squares `item["n"]`; its process exits (no reply, as on a lost node) on an item with a
    `die` file, once per file present (each attempt removes one)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.pid = os.getpid()

    def __call__(self, item: dict) -> dict:
        dies = sorted(self.folder.glob(f"die-{item['n']}-*"))
        if dies:
            dies[0].unlink()
            os._exit(1)
        return {"n": item["n"], "square": item["n"] ** 2, "pid": self.pid}


def test_an_item_whose_actor_died_is_done_once_by_another(local_ray, tmp_path):
    (tmp_path / "die-3-a").touch()
    (tmp_path / "die-7-a").touch()
    done: list[dict] = []
    run_actors(Squarer, (str(tmp_path),), [{"n": n} for n in range(10)], workers=2, on_done=done.append)
    assert sorted(r["n"] for r in done) == list(range(10))  # every item once, none lost or repeated
    assert all(r["square"] == r["n"] ** 2 for r in done)
    assert not list(tmp_path.glob("die-*"))  # both deaths happened
    assert len({r["pid"] for r in done}) >= 2


def test_the_last_actor_dying_starts_a_new_one(local_ray, tmp_path):
    (tmp_path / "die-0-a").touch()
    done: list[dict] = []
    run_actors(Squarer, (str(tmp_path),), [{"n": 0}, {"n": 1}], workers=1, on_done=done.append)
    assert sorted(r["n"] for r in done) == [0, 1]


def test_an_item_that_kills_every_actor_fails_naming_it(local_ray, tmp_path):
    for k in range(ITEM_ATTEMPTS):
        (tmp_path / f"die-5-{k}").touch()
    with pytest.raises(RuntimeError, match=rf"Squarer: \{{'n': 5\}} failed on {ITEM_ATTEMPTS} actors"):
        run_actors(Squarer, (str(tmp_path),), [{"n": n} for n in range(8)], workers=2, on_done=lambda r: None)


def test_a_fed_pool_takes_items_as_they_come_and_ends_when_the_feed_closes(local_ray, tmp_path):
    """The image stage's way: items arrive while the pool runs (here in bursts and pauses), its
    actors reserve no CPU, and it returns once the feed says no more and every item is done."""
    (tmp_path / "die-3-a").touch()  # an actor lost on a fed item: the item still runs once
    answers = iter([([{"n": 0}, {"n": 1}], True), ([], True), ([{"n": 2}], True), ([{"n": 3}, {"n": 4}], True)])
    done = []
    run_actors(
        Squarer,
        (str(tmp_path),),
        [],
        workers=2,
        on_done=done.append,
        feed=lambda: next(answers, ([{"n": 5}], False)),
        num_cpus=0,
    )
    assert sorted(r["n"] for r in done) == list(range(6))
    assert all(r["square"] == r["n"] ** 2 for r in done)


def test_a_failing_feed_stops_the_pool_with_its_error(local_ray, tmp_path):
    def feed():
        raise RuntimeError("image: the download failed")

    with pytest.raises(RuntimeError, match="the download failed"):
        run_actors(Squarer, (str(tmp_path),), [{"n": 1}], workers=1, on_done=lambda r: None, feed=feed)
