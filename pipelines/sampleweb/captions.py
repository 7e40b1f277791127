"""Captions for the shapes world: an English grammar, small German/Russian/Chinese phrase
grammars, Spanish/Catalan by machine translation (apertium), and the junk text of a crawl
(file names, URLs, numbers, single part-of-speech word lists, person names, spam).

Every English caption is written from a `shapes.Scene`, so it is true of the picture.
All choices come from the `random.Random` passed in.
"""

from __future__ import annotations

import functools
import random
import shutil
import subprocess

import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-1252 codec)

from pipelines.filters.clean import caption_repeat_key, normalize_caption
from pipelines.sampleweb.shapes import Scene, Shape

# ------------------------------------------------------------------ normalisation
# The pipeline's own functions, so the truth cannot drift from what the build does; cached,
# because the generator asks about the same captions many times.


@functools.lru_cache(maxsize=1 << 16)
def normalise(text: str | None) -> str:
    """The caption the pipeline keeps, before person scrubbing (`clean.normalize_caption`)."""
    return normalize_caption(text)


@functools.lru_cache(maxsize=1 << 16)
def repetition_key(text: str | None) -> str:
    """The key repeated captions are counted by (`clean.caption_repeat_key`)."""
    return caption_repeat_key(text)


# ------------------------------------------------------------------ English

PLURALS = {"cross": "crosses"}
_REL_WORDS = {
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "left of": ("on the left of", "to the left of", "left of"),
    "right of": ("on the right of", "to the right of", "right of"),
    "beside": ("next to", "beside"),
}
_INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of", "beside": "beside"}
_REGION_WORDS = {
    "top left": ("in the top left corner", "in the upper left corner", "at the top left"),
    "top right": ("in the top right corner", "in the upper right corner", "at the top right"),
    "bottom left": ("in the bottom left corner", "in the lower left corner", "at the bottom left"),
    "bottom right": ("in the bottom right corner", "in the lower right corner", "at the bottom right"),
    "centre": ("in the centre", "in the middle", "in the center"),
}
_BACKGROUND_WORDS = {
    "gradient": ("on a gradient background", "on a shaded background"),
    "radial": ("on a radial gradient", "on a softly shaded background"),
    "noise": ("on a noisy background", "on a mottled background", "on a textured background"),
    "stripes": ("on a striped background", "on diagonal stripes", "on a background of stripes"),
    "checks": ("on a checkered background", "on a chequered pattern", "on a checkerboard"),
}
_PREFIXES = (
    "",
    "",
    "",
    "there is",
    "a picture of",
    "an image of",
    "a drawing of",
    "a simple drawing of",
    "an illustration of",
    "a graphic of",
    "clip art of",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(kind: str) -> str:
    return PLURALS.get(kind, kind + "s")


def noun_phrase(shape: Shape, with_size: bool) -> str:
    """'a small red circle' / 'an orange star'."""
    words = ([shape.size] if with_size else []) + [shape.colour, shape.kind]
    return f"{_article(words[0])} {' '.join(words)}"


def _same(a: Shape, b: Shape) -> bool:
    return (a.kind, a.colour, a.size) == (b.kind, b.colour, b.size)


def _join_list(items: list[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1]


def english_core(scene: Scene, rng: random.Random) -> str:
    """The description of the shapes and their layout, without prefix or background."""
    shapes = scene.shapes
    sized = rng.random() < 0.5
    if len(shapes) == 1:
        text = noun_phrase(shapes[0], sized)
        if scene.region is not None:
            text += " " + rng.choice(_REGION_WORDS[scene.region])
        return text
    if len(shapes) == 2:
        a, b = shapes
        rel = scene.relation
        assert rel is not None
        if _same(a, b):
            size = f"{a.size} " if sized else ""
            text = f"two {size}{a.colour} {_plural(a.kind)}"
            tail = {"above": "one above the other", "below": "one above the other"}.get(rel, "side by side")
            if rng.random() < 0.6:
                text += " " + tail
            return text
        form = rng.random()
        if form < 0.55:
            return f"{noun_phrase(a, sized)} {rng.choice(_REL_WORDS[rel])} {noun_phrase(b, sized)}"
        if form < 0.8:
            return f"{noun_phrase(b, sized)} {rng.choice(_REL_WORDS[_INVERSE[rel]])} {noun_phrase(a, sized)}"
        if form < 0.9:
            return f"{noun_phrase(a, sized)} with {noun_phrase(b, sized)} {rng.choice(_REL_WORDS[_INVERSE[rel]])} it"
        return f"{noun_phrase(a, sized)} and {noun_phrase(b, sized)}"
    if all(_same(s, shapes[0]) for s in shapes):
        return f"three {shapes[0].colour} {_plural(shapes[0].kind)} in a row"
    phrases = [noun_phrase(s, False) for s in shapes]
    if scene.left_to_right and rng.random() < 0.5:
        return _join_list(phrases) + " from left to right"
    if rng.random() < 0.5:
        return "three shapes: " + _join_list(phrases)
    rng.shuffle(phrases)
    return _join_list(phrases)


def english_caption(scene: Scene, rng: random.Random) -> str:
    """A true English caption of `scene`, with varied phrasing."""
    core = english_core(scene, rng)
    prefix = rng.choice(_PREFIXES)
    if prefix == "there is" and core.startswith(("two ", "three ")):
        prefix = "there are"
    text = f"{prefix} {core}".strip()
    if rng.random() < 0.3:
        text += " " + rng.choice(_BACKGROUND_WORDS[scene.background])
    if rng.random() < 0.15:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.1:
        text += "."
    return text


# ------------------------------------------------------------------ German

_DE_COLOUR = {
    "red": "rot",
    "orange": "orangefarben",
    "yellow": "gelb",
    "green": "grün",
    "blue": "blau",
    "purple": "violett",
    "pink": "rosafarben",
    "brown": "braun",
    "black": "schwarz",
    "white": "weiß",
}
_DE_SIZE = {"small": "klein", "large": "groß"}
_DE_SHAPE = {
    "circle": ("Kreis", "m"),
    "square": ("Quadrat", "n"),
    "triangle": ("Dreieck", "n"),
    "star": ("Stern", "m"),
    "hexagon": ("Sechseck", "n"),
    "pentagon": ("Fünfeck", "n"),
    "diamond": ("Raute", "f"),
    "cross": ("Kreuz", "n"),
    "ring": ("Ring", "m"),
    "heart": ("Herz", "n"),
}
_DE_REL = {"above": "über", "below": "unter", "left of": "links von", "right of": "rechts von", "beside": "neben"}


def _de_np(shape: Shape, case: str, sized: bool) -> str:
    noun, gender = _DE_SHAPE[shape.kind]
    stems = ([_DE_SIZE[shape.size]] if sized else []) + [_DE_COLOUR[shape.colour]]
    if case == "nom":
        article, ending = {"m": ("ein", "er"), "n": ("ein", "es"), "f": ("eine", "e")}[gender]
    else:  # dative
        article, ending = {"m": ("einem", "en"), "n": ("einem", "en"), "f": ("einer", "en")}[gender]
    return " ".join([article, *(s + ending for s in stems), noun])


def german_caption(scene: Scene, rng: random.Random) -> str:
    """A German description of a 1- or 2-shape scene."""
    sized = rng.random() < 0.5
    a = scene.shapes[0]
    if len(scene.shapes) == 1:
        text = rng.choice(
            (
                _de_np(a, "nom", sized),
                "ein Bild mit " + _de_np(a, "dat", sized),
                "eine Zeichnung mit " + _de_np(a, "dat", sized) + " auf einem gemusterten Hintergrund",
            )
        )
    else:
        b = scene.shapes[1]
        text = f"{_de_np(a, 'nom', sized)} {_DE_REL[scene.relation or 'beside']} {_de_np(b, 'dat', sized)}"
        if rng.random() < 0.3:
            text = "auf dem Bild ist " + text
    return text[0].upper() + text[1:]


# ------------------------------------------------------------------ Russian

_RU_COLOUR = {  # nominative m, f, n; instrumental m/n, f
    "red": ("красный", "красная", "красное", "красным", "красной"),
    "orange": ("оранжевый", "оранжевая", "оранжевое", "оранжевым", "оранжевой"),
    "yellow": ("жёлтый", "жёлтая", "жёлтое", "жёлтым", "жёлтой"),
    "green": ("зелёный", "зелёная", "зелёное", "зелёным", "зелёной"),
    "blue": ("синий", "синяя", "синее", "синим", "синей"),
    "purple": ("фиолетовый", "фиолетовая", "фиолетовое", "фиолетовым", "фиолетовой"),
    "pink": ("розовый", "розовая", "розовое", "розовым", "розовой"),
    "brown": ("коричневый", "коричневая", "коричневое", "коричневым", "коричневой"),
    "black": ("чёрный", "чёрная", "чёрное", "чёрным", "чёрной"),
    "white": ("белый", "белая", "белое", "белым", "белой"),
}
_RU_SIZE = {
    "small": ("маленький", "маленькая", "маленькое", "маленьким", "маленькой"),
    "large": ("большой", "большая", "большое", "большим", "большой"),
}
_RU_SHAPE = {  # nominative, instrumental, gender
    "circle": ("круг", "кругом", "m"),
    "square": ("квадрат", "квадратом", "m"),
    "triangle": ("треугольник", "треугольником", "m"),
    "star": ("звезда", "звездой", "f"),
    "hexagon": ("шестиугольник", "шестиугольником", "m"),
    "pentagon": ("пятиугольник", "пятиугольником", "m"),
    "diamond": ("ромб", "ромбом", "m"),
    "cross": ("крест", "крестом", "m"),
    "ring": ("кольцо", "кольцом", "n"),
    "heart": ("сердце", "сердцем", "n"),
}
_RU_REL = {"above": "над", "below": "под", "left of": "рядом с", "right of": "рядом с", "beside": "рядом с"}


def _ru_np(shape: Shape, case: str, sized: bool) -> str:
    nom, ins, gender = _RU_SHAPE[shape.kind]
    slot = {"m": 0, "f": 1, "n": 2}[gender] if case == "nom" else (4 if gender == "f" else 3)
    adjectives = ([_RU_SIZE[shape.size][slot]] if sized else []) + [_RU_COLOUR[shape.colour][slot]]
    return " ".join([*adjectives, nom if case == "nom" else ins])


def russian_caption(scene: Scene, rng: random.Random) -> str:
    """A Russian description of a 1- or 2-shape scene."""
    sized = rng.random() < 0.5
    a = scene.shapes[0]
    if len(scene.shapes) == 1:
        text = rng.choice(
            (
                _ru_np(a, "nom", sized),
                "на картинке " + _ru_np(a, "nom", sized),
                _ru_np(a, "nom", sized) + " на узорчатом фоне",
            )
        )
    else:
        b = scene.shapes[1]
        text = f"{_ru_np(a, 'nom', sized)} {_RU_REL[scene.relation or 'beside']} {_ru_np(b, 'ins', sized)}"
    return text[0].upper() + text[1:]


# ------------------------------------------------------------------ Chinese

_ZH_COLOUR = {
    "red": "红色",
    "orange": "橙色",
    "yellow": "黄色",
    "green": "绿色",
    "blue": "蓝色",
    "purple": "紫色",
    "pink": "粉色",
    "brown": "棕色",
    "black": "黑色",
    "white": "白色",
}
_ZH_SHAPE = {
    "circle": "圆形",
    "square": "正方形",
    "triangle": "三角形",
    "star": "星形",
    "hexagon": "六边形",
    "pentagon": "五边形",
    "diamond": "菱形",
    "cross": "十字",
    "ring": "圆环",
    "heart": "心形",
}
_ZH_SIZE = {"small": "小", "large": "大"}
_ZH_REL = {"above": "上面", "below": "下面", "left of": "左边", "right of": "右边", "beside": "旁边"}


def _zh_np(shape: Shape, sized: bool) -> str:
    size = _ZH_SIZE[shape.size] if sized else ""
    return f"一个{size}{_ZH_COLOUR[shape.colour]}的{_ZH_SHAPE[shape.kind]}"


def chinese_caption(scene: Scene, rng: random.Random) -> str:
    """A Chinese description of a 1- or 2-shape scene."""
    sized = rng.random() < 0.5
    a = scene.shapes[0]
    if len(scene.shapes) == 1:
        return rng.choice((_zh_np(a, sized), "图片里有" + _zh_np(a, sized), _zh_np(a, sized) + "在花纹背景上"))
    b = scene.shapes[1]
    return f"{_zh_np(a, sized)}在{_zh_np(b, sized)}的{_ZH_REL[scene.relation or 'beside']}"


FOREIGN_GRAMMARS = {"german": german_caption, "russian": russian_caption, "chinese": chinese_caption}

# ------------------------------------------------------------------ apertium

APERTIUM_PAIRS = {"spanish": "eng-spa", "catalan": "eng-cat"}


def translate(texts: list[str], pair: str) -> list[str]:
    """Translate one caption per line with ONE `apertium -u PAIR` call (-u: no unknown-word marks)."""
    if not texts:
        return []
    if shutil.which("apertium") is None:
        raise RuntimeError(
            f"apertium not found (needed for {pair} captions): install the Debian packages apertium "
            "apertium-eng-spa apertium-eng-cat, or pass --rate spanish=0 --rate catalan=0"
        )
    for i, t in enumerate(texts):
        if "\n" in t:
            raise ValueError(f"caption {i} contains a newline; apertium translates one caption per line")
    done = subprocess.run(
        ["apertium", "-u", pair],
        input="\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"apertium -u {pair} failed (exit {done.returncode}): {done.stderr.strip()[:500]}")
    out = done.stdout.rstrip("\n").split("\n")
    if len(out) != len(texts):
        raise RuntimeError(f"apertium -u {pair} returned {len(out)} lines for {len(texts)} captions")
    return [" ".join(line.split()) for line in out]


# ------------------------------------------------------------------ crawl junk

FIRST_NAMES = (
    "Maria",
    "James",
    "John",
    "Anna",
    "David",
    "Laura",
    "Michael",
    "Sarah",
    "Carlos",
    "Emma",
    "Daniel",
    "Sofia",
    "Peter",
    "Olivia",
    "Elena",
    "Robert",
    "Julia",
    "Ahmed",
    "Priya",
    "Kenji",
    "Fatima",
    "Lucas",
    "Chloe",
    "William",
    "Hannah",
    "Mohammed",
    "Isabella",
    "George",
)
LAST_NAMES = (
    "Lopez",
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Wilson",
    "Martinez",
    "Anderson",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Thompson",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Patel",
    "Kowalski",
    "Schmidt",
    "Rossi",
)
PERSON = "<person>"
_PERSON_TEMPLATES = (
    "{name} holding {np}",
    "{np} drawn by {name}",
    "{name} painted {np}",
    "{np} made by {name}",
    "a picture by {name} showing {np}",
    "{name} with {np} {bg}",
    "{np} {bg}, drawn by {name}",
)


def person_caption(shape: Shape, background: str, rng: random.Random) -> tuple[str, str]:
    """(caption with a full name, the same caption with the name replaced by <person>)."""
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    template = rng.choice(_PERSON_TEMPLATES)
    fields = {"np": noun_phrase(shape, rng.random() < 0.5), "bg": rng.choice(_BACKGROUND_WORDS[background])}
    return template.format(name=name, **fields), template.format(name=PERSON, **fields)


def filename_caption(rng: random.Random) -> str:
    n = rng.randint(0, 99999)
    return rng.choice(
        (
            f"IMG_{n % 10000:04d}.JPG",
            f"DSC{n:05d}.jpg",
            f"img_{n % 100}.jpg",
            f"P{1000000 + n:07d}.JPG",
            f"photo_{n % 10000:04d}.png",
            f"image ({n % 50}).jpeg",
            f"DCIM_{n % 10000:04d}.jpg",
            f"Screenshot_2021{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}_{n:06d}.png",
        )
    )


_SITES = ("www.example.com", "shapes-gallery.net", "cdn.pics-host.org", "static.artboard.io", "img.clipart-world.com")


def url_caption(rng: random.Random) -> str:
    site, n = rng.choice(_SITES), rng.randint(1, 99999)
    return rng.choice(
        (
            f"https://{site}/gallery/photo-{n}",
            f"http://{site}/view?id={n}",
            f"www.{site}/images/{n}.jpg",
            f"https://{site}/uploads/2020/{rng.randint(1, 12):02d}/img{n}.png",
        )
    )


def number_caption(rng: random.Random) -> str:
    n = rng.randint(0, 99999)
    return rng.choice(
        (
            str(n),
            f"{2000 + n % 25}-{1 + n % 12:02d}-{1 + n % 28:02d}",
            f"{n % 1000:03d}",
            f"#{n}",
            f"({n % 100})",
            f"{n % 100} / {n % 12 + 1} / {2000 + n % 25}",
            "...",
            "!!!",
            "- - -",
            f"{n / 100:.2f}",
        )
    )


EMPTY_CAPTIONS: tuple[str | None, ...] = ("", " ", "   ", "\t", "\n", " \t \n ", "\u00a0", None)

_SINGLE_POS = (
    ("red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white"),
    ("circles", "squares", "triangles", "stars", "hexagons", "pentagons", "diamonds", "crosses", "rings", "hearts"),
    ("small", "large", "tiny", "huge", "bright", "colourful", "simple", "round"),
)


def single_pos_caption(rng: random.Random) -> str:
    """Words of a single part of speech: 'red blue green', 'circles squares stars'."""
    words = rng.choice(_SINGLE_POS)
    return " ".join(rng.sample(words, rng.randint(2, 4)))


_SPAM_HEADS = ("click here to see", "tap to view", "download", "see more of", "share", "buy a print of")
_SPAM_TAILS = (
    "the full size picture",
    "this colourful image",
    "our shape gallery",
    "the best clip art",
    "more free pictures",
    "this wallpaper",
)


def spam_captions(k: int) -> list[str]:
    """`k` distinct spam captions, one per repeated-caption group."""
    pool = [f"{h} {t}" for h in _SPAM_HEADS for t in _SPAM_TAILS]
    if k > len(pool):
        raise ValueError(
            f"{k} repeated-caption groups asked for; at most {len(pool)} (lower the repeated_caption rate)"
        )
    return pool[:k]


def messy_caption(caption: str, rng: random.Random) -> str:
    """The caption as a crawl delivers it: stray whitespace, HTML entities, mojibake."""
    form = rng.randrange(3)
    if form == 0:
        return "  " + caption.replace(" ", rng.choice(("  ", " \t", "\n "))) + " \n"
    if form == 1 and " and " in caption:
        return caption.replace(" and ", " &amp; ")
    decorated = rng.choice(("today’s picture: {}", "{} – simple shapes", "“{}”", "{} — clip art"))
    return decorated.format(caption).encode("utf-8").decode("sloppy-windows-1252")
