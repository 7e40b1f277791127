"""One filter, one view kind and one objective registered from outside their packages.

`tests/e2e/test_extending.py` imports this module in the driver and, through Ray's
`worker_process_setup_hook`, in every Ray worker, then selects each component by one YAML
line (docs/extending.md): the filter in a build, the view in its augment job, the
objective in a training step on the view version.
"""

from __future__ import annotations

from typing import Any

from augment.views.base import VIEWS, ViewKind, encode_jpeg, source_image
from catalog.config import Config
from pipelines.filters.base import Filter, register, reject
from training.objectives.base import OBJECTIVES, ModelInfo, Objective, ObjectiveOptions
from training.objectives.clip import clip_loss

WORD = "hexagon"


@register
class NoWord(Filter):
    """Rejects captions holding a word (as `sensitive`, at that reason's place in the order)."""

    name = "test_no_word"
    reason = "sensitive"

    class Options(Config):
        word: str = WORD

    def keep(self, row: dict[str, Any]):
        return reject(self.reason) if self.options.word in row["caption"].lower().split() else True


@VIEWS.register("test_gray")
class GrayView(ViewKind):
    """A grayscale copy of the image, member `gray.jpg`."""

    name = "test_gray"
    modality = "image"

    @classmethod
    def members(cls, cfg) -> list[str]:
        return ["gray.jpg"]

    def make(self, samples):
        out = []
        for sample in samples:
            members = {"gray.jpg": encode_jpeg(source_image(sample).convert("L").convert("RGB"), 90)}
            self._count(members)
            out.append((members, {"test_gray": {"mode": "L"}}))
        return out


class GrayOptions(ObjectiveOptions):
    init_temperature: float = 0.07


@OBJECTIVES.register("test_gray_clip")
class GrayClip(Objective):
    """CLIP's loss between the gray view (through the model's vision tower) and the caption."""

    Options = GrayOptions
    needs = frozenset({"text_features"})
    batch_members = ("gray.jpg", "txt")

    def __init__(self, options: GrayOptions, info: ModelInfo = ModelInfo()) -> None:
        super().__init__(options.init_temperature, 100.0)

    def forward(self, outputs, batch, model):
        gray, _ = model.encode_image(batch["gray.jpg"])
        return clip_loss(gray, outputs["text_features"], self.logit_scale())


def setup() -> None:
    """Ray's worker_process_setup_hook: importing this module registered everything."""
