"""The shapes world: scenes of 1-3 coloured shapes on varied backgrounds, drawn with PIL.

A `Scene` is the ground truth the captions are written from: every shape's kind, colour,
size class and bounding box, the relation the layout was drawn to satisfy (so "above" in
a caption is true in the pixels), and the background kind. Drawing is deterministic given
the seeded generators passed in (`random.Random` for choices, `numpy.random.Generator`
for textures); nothing touches a global RNG.

`scene_json(scene)` is the record the corpus publishes beside each drawn image (the `scene`
column): background, relation, region, left_to_right and, per shape, kind, colour, size
class and its bounding box as fractions of the picture's width and height, so it stays
true under any resize that keeps the aspect ratio.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

# Saturated shape colours, far from the muted mid-tone backgrounds they are drawn on.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 225, 20),
    "green": (30, 170, 50),
    "blue": (30, 70, 220),
    "purple": (130, 40, 170),
    "pink": (255, 105, 190),
    "brown": (120, 65, 20),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
# A grayscale image can only truthfully show these.
GRAY_COLOURS = ("black", "white")

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "pentagon", "diamond", "cross", "ring", "heart")
SIZES = ("small", "large")
BACKGROUNDS = ("gradient", "radial", "noise", "stripes", "checks")

# Relations between two shapes. "left of" means A is left of B in the picture.
RELATIONS = ("above", "below", "left of", "right of", "beside")
# Single-shape placements: region name -> (x range, y range) of the centre, as fractions.
REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "top left": ((0.0, 0.4), (0.0, 0.4)),
    "top right": ((0.6, 1.0), (0.0, 0.4)),
    "bottom left": ((0.0, 0.4), (0.6, 1.0)),
    "bottom right": ((0.6, 1.0), (0.6, 1.0)),
    "centre": ((0.4, 0.6), (0.4, 0.6)),
}


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    size: str  # "small" | "large"
    cx: float
    cy: float
    r: float  # half the side of the bounding box


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    background: str
    shapes: tuple[Shape, ...]
    relation: str | None = None  # two shapes: relation of shapes[0] to shapes[1]
    region: str | None = None  # one shape: where it sits
    left_to_right: bool = False  # three shapes: shapes are ordered by x


BOX_DECIMALS = 4


def scene_record(scene: Scene) -> dict:
    """The published record of `scene`: shapes with their bounding boxes [x0, y0, x1, y1]
    as fractions (0..1, `BOX_DECIMALS` decimals) of the picture's width and height."""

    def box(s: Shape) -> list[float]:
        edges = (
            (s.cx - s.r) / scene.width,
            (s.cy - s.r) / scene.height,
            (s.cx + s.r) / scene.width,
            (s.cy + s.r) / scene.height,
        )
        return [round(min(1.0, max(0.0, v)), BOX_DECIMALS) for v in edges]

    return {
        "background": scene.background,
        "relation": scene.relation,
        "region": scene.region,
        "left_to_right": scene.left_to_right,
        "shapes": [{"kind": s.kind, "colour": s.colour, "size": s.size, "box": box(s)} for s in scene.shapes],
    }


def scene_json(scene: Scene) -> str:
    """`scene_record(scene)` as compact JSON with sorted keys (the corpus's `scene` column)."""
    return json.dumps(scene_record(scene), sort_keys=True, separators=(",", ":"))


def _radius(rng: random.Random, size: str, short_side: int) -> float:
    lo, hi = (0.06, 0.09) if size == "small" else (0.15, 0.21)
    return rng.uniform(lo, hi) * short_side


def _fits(cx: float, cy: float, r: float, w: int, h: int, margin: float) -> bool:
    return margin + r <= cx <= w - margin - r and margin + r <= cy <= h - margin - r


def _apart(a: tuple[float, float, float], b: tuple[float, float, float], gap: float) -> bool:
    """Bounding boxes separated by at least `gap` along some axis."""
    return abs(a[0] - b[0]) >= a[2] + b[2] + gap or abs(a[1] - b[1]) >= a[2] + b[2] + gap


def _relation_holds(rel: str, a: tuple[float, float, float], b: tuple[float, float, float], gap: float) -> bool:
    dx, dy = b[0] - a[0], b[1] - a[1]
    sep = a[2] + b[2] + gap
    if rel == "above":
        return dy >= sep and abs(dx) <= 0.6 * dy
    if rel == "below":
        return -dy >= sep and abs(dx) <= 0.6 * -dy
    if rel == "left of":
        return dx >= sep and abs(dy) <= 0.6 * dx
    if rel == "right of":
        return -dx >= sep and abs(dy) <= 0.6 * -dx
    if rel == "beside":
        return abs(dx) >= sep and abs(dy) <= 0.6 * abs(dx)
    raise ValueError(f"unknown relation {rel!r}")


def sample_scene(
    rng: random.Random,
    width: int,
    height: int,
    n_shapes: int,
    colours: tuple[str, ...] = tuple(COLOURS),
    tries: int = 400,
) -> Scene:
    """A random scene whose layout satisfies the relation/region/ordering it records."""
    short = min(width, height)
    margin, gap = 0.03 * short, 0.04 * short
    background = rng.choice(BACKGROUNDS)
    for _ in range(tries):
        kinds = [rng.choice(SHAPES) for _ in range(n_shapes)]
        cols = [rng.choice(colours) for _ in range(n_shapes)]
        sizes = [rng.choice(SIZES) for _ in range(n_shapes)]
        if n_shapes == 2 and rng.random() < 0.25:  # "two red circles"
            kinds[1], cols[1], sizes[1] = kinds[0], cols[0], sizes[0]
        if n_shapes == 3:
            sizes = ["small"] * 3  # three large shapes rarely fit side by side
        radii = [_radius(rng, s, short) for s in sizes]
        relation = rng.choice(RELATIONS) if n_shapes == 2 else None
        region = rng.choice(tuple(REGIONS)) if n_shapes == 1 and rng.random() < 0.5 else None
        placed: list[tuple[float, float, float]] = []
        for r in radii:
            for _ in range(tries):
                if region is not None:
                    (x0, x1), (y0, y1) = REGIONS[region]
                    cx = margin + r + rng.uniform(x0, x1) * (width - 2 * (margin + r))
                    cy = margin + r + rng.uniform(y0, y1) * (height - 2 * (margin + r))
                else:
                    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
                if _fits(cx, cy, r, width, height, margin) and all(_apart((cx, cy, r), p, gap) for p in placed):
                    placed.append((cx, cy, r))
                    break
            else:
                break
        if len(placed) != n_shapes:
            continue
        if relation is not None and not _relation_holds(relation, placed[0], placed[1], gap):
            continue
        left_to_right = False
        if n_shapes == 3:
            order = sorted(range(3), key=lambda i: placed[i][0])
            xs = [placed[i] for i in order]
            if not all(xs[i + 1][0] - xs[i][0] >= xs[i][2] + xs[i + 1][2] + gap for i in range(2)):
                continue
            kinds, cols, sizes, placed = ([seq[i] for i in order] for seq in (kinds, cols, sizes, placed))
            left_to_right = True
        shapes = tuple(
            Shape(k, c, s, round(p[0], 2), round(p[1], 2), round(p[2], 2))
            for k, c, s, p in zip(kinds, cols, sizes, placed)
        )
        return Scene(width, height, background, shapes, relation, region, left_to_right)
    raise RuntimeError(f"could not lay out {n_shapes} shapes on a {width}x{height} canvas")


# ---------------------------------------------------------------- drawing


def _muted_colour(rng: np.random.Generator, lo: float, hi: float) -> tuple[int, int, int]:
    """A low-saturation colour of brightness in [lo, hi], so saturated, black and white shapes stand out."""
    base = rng.uniform(lo, hi)
    return tuple(int(v) for v in np.clip(base + rng.uniform(-25, 25, size=3), 55, 205))  # type: ignore[return-value]


def _value_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (h, w): a coarse random grid upsampled bicubically."""
    grid = rng.uniform(0, 1, size=(cells, cells)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(img), 0, 1)


def _blend_map(rng: np.random.Generator, kind: str, w: int, h: int) -> np.ndarray:
    """An (h, w) float32 map in [0, 1] saying how much of the second colour each pixel gets."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    if kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        t = x * np.float32(math.cos(angle)) + y * np.float32(math.sin(angle))
        return (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    if kind == "radial":
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.sqrt((x - np.float32(cx)) ** 2 + (y - np.float32(cy)) ** 2)
        return t / max(float(t.max()), 1.0)
    if kind == "noise":
        quarter = _value_noise(rng, w // 4 + 1, h // 4 + 1, int(rng.integers(4, 12)))
        return np.asarray(Image.fromarray(quarter, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    if kind == "stripes":
        angle = rng.uniform(0, math.pi)
        half = np.float32(rng.uniform(7, 30))
        t = (x * np.float32(math.cos(angle)) + (y * np.float32(math.sin(angle)) + np.float32(w + h))) / half
        return (t.astype(np.int32) & 1).astype(np.float32)
    if kind == "checks":
        cell = np.float32(rng.uniform(16, 64))
        return ((x // cell) % 2 != (y // cell) % 2).astype(np.float32)
    raise ValueError(f"unknown background {kind!r}; known: {', '.join(BACKGROUNDS)}")


def draw_background(rng: np.random.Generator, kind: str, w: int, h: int) -> Image.Image:
    """A w x h RGB background of one of BACKGROUNDS: a darker and a lighter muted colour blended,
    under uneven lighting (a smooth random shade field) with film grain.

    The lighting field gives every picture its own low-frequency brightness layout, which
    keeps the perceptual hashes of different pictures far apart.
    """
    dark, light = _muted_colour(rng, 85, 125), _muted_colour(rng, 130, 170)
    a, b = (dark, light) if rng.random() < 0.5 else (light, dark)
    mask = Image.fromarray((_blend_map(rng, kind, w, h) * 255).astype(np.uint8), mode="L")
    image = Image.composite(Image.new("RGB", (w, h), b), Image.new("RGB", (w, h), a), mask)
    qw, qh = w // 4 + 1, h // 4 + 1  # light and grain are made at quarter size, then upsampled
    shade = (_value_noise(rng, qw, qh, int(rng.integers(3, 9))) - 0.5) * rng.uniform(70, 110)
    grain = rng.normal(0, rng.uniform(2, 7), size=(qh, qw))
    field = np.clip(128 + shade + grain, 0, 255).astype(np.uint8)
    field_img = Image.fromarray(field, mode="L").resize((w, h), Image.Resampling.BILINEAR)
    return ImageChops.add(image, Image.merge("RGB", (field_img,) * 3), offset=-128)


def _polygon(cx: float, cy: float, radii: list[float], start: float) -> list[tuple[float, float]]:
    n = len(radii)
    return [
        (cx + r * math.cos(start + 2 * math.pi * i / n), cy + r * math.sin(start + 2 * math.pi * i / n))
        for i, r in enumerate(radii)
    ]


def draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, fill: tuple[int, ...]) -> None:
    """Draw one shape inside its bounding box [cx - r, cx + r] x [cy - r, cy + r]."""
    cx, cy, r, k = shape.cx, shape.cy, shape.r, shape.kind
    up = -math.pi / 2
    if k == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif k == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(2, int(0.35 * r)))
    elif k == "square":
        s = 0.85 * r
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=fill)
    elif k == "triangle":
        draw.polygon(_polygon(cx, cy + 0.2 * r, [1.15 * r] * 3, up), fill=fill)
    elif k == "star":
        draw.polygon(_polygon(cx, cy + 0.08 * r, [r, 0.42 * r] * 5, up), fill=fill)
    elif k == "hexagon":
        draw.polygon(_polygon(cx, cy, [r] * 6, 0.0), fill=fill)
    elif k == "pentagon":
        draw.polygon(_polygon(cx, cy + 0.08 * r, [r] * 5, up), fill=fill)
    elif k == "diamond":
        draw.polygon([(cx, cy - r), (cx + 0.65 * r, cy), (cx, cy + r), (cx - 0.65 * r, cy)], fill=fill)
    elif k == "cross":
        t = 0.3 * r
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=fill)
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=fill)
    elif k == "heart":
        pts = []
        for i in range(48):
            a = 2 * math.pi * i / 48
            x = 16 * math.sin(a) ** 3
            y = 13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a) - math.cos(4 * a)
            pts.append((cx + x * r / 17, cy - y * r / 17 + 0.05 * r))
        draw.polygon(pts, fill=fill)
    else:
        raise ValueError(f"unknown shape {k!r}; known: {', '.join(SHAPES)}")


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """The RGB picture of `scene`."""
    image = draw_background(rng, scene.background, scene.width, scene.height)
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        draw_shape(draw, shape, COLOURS[shape.colour])
    return image
