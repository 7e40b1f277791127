"""Word-patch alignment (FILIP §4.5, Fig. 4) drawn, and measured as localisation accuracy.

For each word of a caption (its BPE tokens grouped at the end-of-word marker; a word's
score for a patch is the mean over its tokens) the image patch with the highest score is
its predicted location. The score is the token-wise similarity FILIP's late interaction
maximises for a dual encoder, and the multimodal encoder's cross-attention from the word
to the patch for a single-stream model (SIMLA §3.5 shows such maps; `EvalContext.word_patch_scores`). Drawn per image as a PNG: the model's input crop with the
patch grid and each word written in its best patch, then one small panel per word with its
similarity over the patches as a heat map and the best patch outlined.

Accuracy on sets that record scenes (the shapes world): for every caption word that names
a shape's kind (or its plural) or colour present in the scene, the prediction is right when
the best patch's centre lies inside the box of a shape of that kind / colour. Chance is the
share of patch centres inside those boxes (a uniformly random patch), averaged the same way.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from training.eval.base import EvalContext, EvalTask, TaskOptions, TaskResult, register

CELL = 256  # drawn size of the main panel
SMALL = 112  # drawn size of each word's panel


class Options(TaskOptions):
    drawings: int = 4  # PNGs per eval set
    max_images: int = 500  # images scored for accuracy


def caption_words(ids: torch.Tensor, mask: torch.Tensor) -> list[tuple[str, list[int]]]:
    """(word, token positions) of a tokenised caption, start/end-of-text excluded."""
    from training import tokenizer

    decoder = tokenizer.tokenizer().decoder
    real = [int(p) for p in torch.nonzero(mask).flatten()][1:-1]
    words, current, pieces = [], [], []
    for pos in real:
        piece = decoder.get(int(ids[pos]), "")
        current.append(pos)
        pieces.append(piece.removesuffix("</w>"))
        if piece.endswith("</w>") or piece.startswith("<"):
            words.append(("".join(pieces), current))
            current, pieces = [], []
    if current:
        words.append(("".join(pieces), current))
    return words


def targets(word: str, shapes: list[dict]) -> list[tuple[float, float, float, float]]:
    """Boxes (model-input pixels) of the shapes `word` names by kind, plural kind or colour."""
    w = word.lower()
    return [s["pixels"] for s in shapes if w in (s["kind"], s["colour"]) or (w.endswith("s") and w[:-1] == s["kind"])]


def patch_centres(grid: int, size: int) -> np.ndarray:
    step = size / grid
    c = (np.arange(grid) + 0.5) * step
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # [grid*grid, 2] (x, y), row-major like the ViT


def inside(points: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    hit = np.zeros(len(points), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        hit |= (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    return hit


def _crop(image: torch.Tensor) -> Image.Image:
    from training.data import MEAN, STD

    arr = image.permute(1, 2, 0).numpy() * STD + MEAN
    return Image.fromarray((arr.clip(0, 1) * 255).astype(np.uint8))


def draw(image: torch.Tensor, grid: int, words: list[tuple[str, np.ndarray]]) -> bytes:
    """PNG: the input crop with the patch grid and each word in its best patch, then a heat
    map panel per word (similarity over the patches, best patch outlined)."""
    font = ImageFont.load_default()
    base = _crop(image).resize((CELL, CELL), Image.NEAREST)
    width = CELL + 8 + len(words) * (SMALL + 6)
    canvas = Image.new("RGB", (max(width, CELL), CELL + 18), "white")
    main = base.copy()
    d = ImageDraw.Draw(main)
    step = CELL / grid
    for k in range(1, grid):
        d.line([(k * step, 0), (k * step, CELL)], fill=(255, 255, 255), width=1)
        d.line([(0, k * step), (CELL, k * step)], fill=(255, 255, 255), width=1)
    for n, (word, sims) in enumerate(words):
        best = int(sims.argmax())
        r, c = divmod(best, grid)
        d.text((c * step + 2, r * step + 2 + (n % 3) * 10), word, fill=(255, 255, 0), font=font)
    canvas.paste(main, (0, 0))
    for n, (word, sims) in enumerate(words):
        x = CELL + 8 + n * (SMALL + 6)
        span = float(sims.max() - sims.min()) or 1.0
        heat = ((sims - sims.min()) / span).reshape(grid, grid)
        overlay = Image.fromarray((heat * 255).astype(np.uint8), "L").resize((SMALL, SMALL), Image.NEAREST)
        red = Image.new("RGB", (SMALL, SMALL), (255, 0, 0))
        panel = Image.composite(red, base.resize((SMALL, SMALL)), overlay.point(lambda v: v * 0.6))
        pd = ImageDraw.Draw(panel)
        r, c = divmod(int(sims.argmax()), grid)
        s = SMALL / grid
        pd.rectangle([c * s, r * s, (c + 1) * s - 1, (r + 1) * s - 1], outline=(255, 255, 0), width=2)
        canvas.paste(panel, (x, (CELL - SMALL) // 2))
        ImageDraw.Draw(canvas).text((x, (CELL + SMALL) // 2 + 4), word[:18], fill=(0, 0, 0), font=font)
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


@register("alignment")
class WordPatchAlignment(EvalTask):
    Options = Options

    def run(self, ctx: EvalContext) -> TaskResult:
        out = TaskResult()
        data = ctx.data
        grid = data.images.shape[-1] // ctx.model.patch_size
        centres = patch_centres(grid, data.images.shape[-1])
        first_caption: dict[int, str] = {}
        for caption, image in zip(data.captions, data.caption_image):
            first_caption.setdefault(image, caption)
        order = sorted(first_caption)[: self.options.max_images]
        texts = ctx.texts([first_caption[i] for i in order])
        hits, chance, drawn = [], [], 0
        for row, i in enumerate(order):
            words = caption_words(texts.ids[row], texts.mask[row])
            scores = ctx.word_patch_scores(i, texts, row)  # [L, patches]
            sims = [scores[pos].mean(0).numpy() for _, pos in words]  # [patches] per word
            shapes = data.boxes(i)
            for (word, _), s in zip(words, sims):
                boxes = targets(word, shapes)
                if boxes:
                    hits.append(bool(inside(centres[int(s.argmax())][None], boxes)[0]))
                    chance.append(float(inside(centres, boxes).mean()))
            if drawn < self.options.drawings:
                out.files[f"wordpatch-{drawn}.png"] = draw(
                    data.images[i], grid, [(w, s) for (w, _), s in zip(words, sims)]
                )
                drawn += 1
        if hits:
            out.metrics["alignment/localisation_acc"] = float(np.mean(hits))
            out.chance["alignment/localisation_acc"] = float(np.mean(chance))
            out.metrics["alignment/words"] = float(len(hits))
        else:
            out.notes.append("alignment: no scene boxes in this set, localisation accuracy not measured")
        return out
