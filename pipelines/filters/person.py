"""Person-name substitution (a mapper, not a filter): person names -> `<person>` (FILIP §3.1).

FILIP (appendix A.1, ../shared/papers/filip.txt) replaces "each person name appeared in the
text with a special <person> token" to protect the privacy of the people in the pairs, as
Changpinyo et al. (2021) do for CC12M. Captions name private people ("Maria Lopez holding a
red star"); the shards keep "<person> holding a red star" and `person_substituted=True`.

A substituted span must be a real person's name, and every token of a name goes. Objects
named like people are the hard part (names-dataset lists "Yorkie", "Crocs", "Binky",
"Terrier" and "Mani" as first names): no single source decides, the rules combine evidence.

Evidence per word (`catalog.assets`, all offline, prepared once into the project cache by
`assets.prepare()`, loaded once per worker in well under a second):
- first name: gender-guesser's curated `nam_dict.txt` (strong; with its frequency class in
  Great Britain, Ireland and the U.S.A.), or a names-dataset first name ranked within
  1,000 in some country (weak); `filter.extra_first_names` are strong first names;
- surname: a names-dataset last name ranked within 2,000 in some country;
- common word: the lower-case word is a WordNet lemma written in lower case (or an
  inflection of one) or an English stop word ("mark", "rose", "sparrow", "mouse",
  "terrier" are; "lopez", "yorkie" are not);
- frequent foreign word: a Romance/Germanic word at Zipf >= 6 in wordfreq that English does
  not share ("de", "un", "la": gender-guesser lists them as Vietnamese and Korean names);
- WordNet proper nouns: noun.person instances (famous people: "Gandhi"; not kinds of
  people such as "Mohawk" or "Asian"), the same glossed as fictional, legendary or cartoon
  ("Santa Claus", "Robin Hood": not people), places ("America", "Florence"), capitalised
  adjectives (nationalities: "German", "Irish") and multi-word lemmas that name no person
  ("Mickey Mouse", "Union Jack", "Boston terrier", "Green Bay");
- spaCy's NER (`assets.spacy_nlp(("ner",))`): whether a token is inside a PERSON span.
  Supporting evidence only: on captions NER calls "Corgi", "Binky", "Crocs", "Kayacker" or
  "Spiderman" a PERSON and misses "Kenji Walker" (ORG).

Candidate spans are runs of capitalised words (stop words never belong to one; all-caps
words such as "ATV" neither), joined across hyphens written without spaces ("Anna-Lena",
"Al-Sayed", "al-Sayed"), name particles between two name words ("van", "de la", "bin",
"al"), middle initials ("John F. Kennedy") and a quoted nickname between two name words
("Mark 'Mom' Finley", `Mark "The Rock" Smith`), led by any titles ("Dr.", "Mr. and Mrs.",
"Coach", "Professor": the title goes with the name). A possessive "'s" is its own token and
stays after the placeholder ("<person>'s dog"). A run is a person name when:
1. it matches a WordNet multi-word lemma that names no person (alone or with the word
   after it: "Mickey Mouse", "Boston terrier"), or a fictional character (one word only
   when it is no first name: "Hector" stays a name): never;
2. a title leads it, or "named"/"called" comes right before it: when one of its words is a
   first name, a surname or not a common word ("Coach Carter", "a dog named Rex");
3. one word (a lone name):
   - never after a determiner ("A Yorkie", "a Binky", "A Mani", "a Tim hortons sign", "the
     Penzance sign": an object or a breed), never a nationality adjective;
   - a strong first name: yes ("a dog with Maria", "Priya smiling"), unless it is a common
     word, a frequent foreign word or a WordNet place, or follows a locative preposition
     ("at Ivars", "in America"): then only with NER's PERSON ("Tom holding a cup") or
     coordinated ("and", "&", "or", ",") with an accepted name ("Rose and Jessica"); a
     common word that is no name in GB/IE/US never ("Tan dog", "Bum sitting");
   - a weak first name or a famous person (WordNet): only with NER's PERSON and not a
     common word ("statue of Gandhi"; not "Brown and white dog"); anything else: no
     ("wearing Crocs", "dressed as Spiderman", "Starbuck 's coffee", "the Rottwieler",
     "Kayacker riding");
4. two or more words: the first is a first name (not a nationality: "German Shephard",
   "Irish Setter") and every later word is a first name, a surname or not a common word
   ("Steve Nash", "Mark Finley", "Kenji Walker"; "Jack Sparrow": "sparrow" is also a
   surname); a later common word without surname evidence makes a compound ("Mickey
   Mouse"), so does a common word ending a run of three or more ("Jack Russell Terrier");
   when every word is a common word ("Will Smith", "Rose Garden"), NER's PERSON decides.
   Surname-first names ("Tanaka Kenji") need NER's PERSON and no common word. After a
   determiner, two or more words can still be a name used as a modifier ("a Steve Nash
   shirt").
Lower-case names ("selfie with jessica and michael"): a lower-case word that is a strong
first name and a names-dataset first name within 1,000, not a common or frequent foreign
word, listed for GB/IE/US or of gender-guesser frequency >= 5 elsewhere ("kenji"; not the
typo "tak"), not part of a hyphenated word ("tri-colored") nor of a WordNet multi-word
thing ("mickey mouse ears"), is a name when the rest of the caption is English (English-
word ratio >= 0.8 without it, frequent foreign words counted as not English, so a Spanish
"rosa" never is); a lower-case surname right after it goes too ("jessica smith"), a
lower-case common first name only when coordinated ("john and mary").
Not found: names that are in neither lexicon, misspelt famous names ("Ghandi"), lower-case
names that are common words ("will", "rose") standing alone.
Jack Sparrow (a film character) is substituted: it is a person-shaped name (a first name
and a surname) that no rule can tell from a real one, and a false hit only costs a word;
Mickey Mouse and Spiderman are not (rules 1 and 3).

Cost: the gate (`gate`) finds the captions that may hold a name: a capitalised word with
first-name, surname, title or WordNet-person evidence (a lone common word with only weak
evidence, "Brown", "Young", cannot pass rule 3 and does not count), or a capitalised word
after "named"/"called" (level 2); or only a lower-case name candidate (level 1). Only those
are tokenized (spaCy's tokenizer, ~265,000 captions/s/core) and their runs decided; NER
(~1,700 captions/s/core) runs only on a level-2 caption where some run's verdict differs
with and without NER's PERSON (`ner_decides`: "Tom holding a cup", "statue of Gandhi";
not "Maria Lopez", a yes either way, nor "A Corgi", a no either way). Every other verdict
is the one NER would have left, so the output is that of running NER on every level-2
caption. On the 5,000 real Flickr captions 4.2% pass the gate and 8 captions (0.16%) need
NER.

Privacy: nothing here logs or raises with caption text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from catalog import assets
from pipelines.filters.config import FilterConfig
from pipelines.filters.english import caption_words, english_words, lower_words

NER = ("ner",)
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")

WEAK_FIRST_RANK = 1000  # names-dataset first names ranked within this count as (weak) first names
LOWER_FIRST_RANK = 1000  # a lower-case name must also be a names-dataset first name within this
LOWER_CONTEXT_RATIO = 0.8  # least English-word ratio of the rest of a caption with lower-case names
LOWER_MIN_GG = 5  # a lower-case name not listed for GB/IE/US needs this gender-guesser frequency elsewhere
MAX_NICKNAME_TOKENS = 3
TITLES = frozenset(
    "mr mrs ms miss mx mister dr doc prof professor coach sir dame lady lord madam mme mlle "
    "uncle aunt auntie grandma grandpa granny father fr rev reverend pastor rabbi imam "
    "captain capt officer sgt sergeant lt lieutenant colonel col judge senator sen governor "
    "gov mayor president pres king queen prince princess duke duchess".split()
)
PARTICLES = frozenset("van von de der den del della di da dos das du la le ter ten bin ibn bint al el abu ben".split())
DETERMINERS = frozenset(
    "a an the this that these those another each every some any no his her my your our their its".split()
)
NAMED = frozenset(("named", "called", "nicknamed"))
COORDINATORS = frozenset(("and", "&", "or", ","))
LOCATIVES = frozenset("at in inside outside near from into across through toward towards".split())
SENTENCE_END = frozenset((".", "!", "?", ";", ":"))
QUOTES = {'"': '"', "'": "'", "‘": "’", "“": "”", "’": "’", "”": "”", "``": "''"}
# The stop words that are also common first names, allowed inside a run ("Will Smith", "May Chen").
STOP_WORD_NAMES = frozenset(("will", "may"))
# A word's gate code (`PersonNameSubstituter._gate_code`): no candidate; a lower-case name
# candidate; a capitalised name (level 2 alone); a capitalised first name or surname that is
# also a common word (level 2 inside a run: after a word and before a capitalised one);
# another capitalised word (level 2 only after "named"/"called").
_SKIP, _LOWER, _NAME, _PAIRED, _CAPITAL = range(5)
# A run's verdicts without and with NER's PERSON (`PersonNameSubstituter.verdicts`).
_YES, _NO, _IF_PERSON = ("yes", "yes"), ("no", "no"), ("no", "yes")


@dataclass(frozen=True)
class Evidence:
    """What the lexicons say about one lower-case word (module docstring)."""

    first: int  # 2 strong (gender-guesser or extra_first_names), 1 weak (names-dataset), 0 none
    surname: bool
    common: bool  # a lower-case WordNet lemma (or its inflection) or a stop word
    stop: bool
    foreign: bool  # a frequent Romance/Germanic word ("de", "un", "la": also first names in gender-guesser)
    famous: bool  # a WordNet noun.person instance ("Gandhi")
    nationality: bool  # a capitalised WordNet adjective ("German")
    place: bool  # a capitalised WordNet noun.location lemma ("America", "Florence")
    gg: int  # gender-guesser frequency class, all countries / GB, IE, US (0: not listed)
    gg_en: int
    lower_first_rank: int  # names-dataset first-name rank (0: none), for the lower-case rule


@dataclass
class Run:
    """Tokens [start, end) of a candidate name; `parts` are (start, end) token ranges of its words."""

    start: int
    end: int
    titled: bool
    parts: list[tuple[int, int]]


class PersonNameSubstituter:
    """`substitute_batch(captions)` -> [(caption with names replaced, whether any was)]."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.extra_first_names = frozenset(n.strip().lower() for n in self.config.extra_first_names if n.strip())
        self._nlp: Any = None
        self._lexicon: Any = None
        self._evidence: dict[str, Evidence] = {}
        self._gate_codes: dict[str, int] = {}
        self._inert: set[str] = set()  # words coded _SKIP or _CAPITAL: no candidate unless after "named"

    # ------------------------------------------------------------ loading

    def setup(self) -> None:
        if self._nlp is not None:
            return
        self._lexicon = assets.name_lexicon()
        stop = assets.stop_words()
        self._stop = stop
        self._common = assets.wordnet_common_words() | stop
        self._wn = assets.wordnet_index()
        self._proper = assets.wordnet_proper_names()
        self._foreign = assets.wordfreq_foreign_frequent_words()
        self._english = english_words()
        self._english.setup()
        self._nlp = assets.spacy_nlp(NER)

    # ------------------------------------------------------------ evidence

    def evidence(self, low: str) -> Evidence:
        """The lexicons' evidence for the lower-case word `low` (cached per worker)."""
        ev = self._evidence.get(low)
        if ev is None:
            ev = self._lookup(low)
            if len(self._evidence) < 200_000:
                self._evidence[low] = ev
        return ev

    def _lookup(self, low: str) -> Evidence:
        low = low.replace("’", "'")
        info = self._lexicon.get(low)
        if info is None and "'" in low:  # "o'connor" -> "oconnor", "connor"
            head, _, tail = low.partition("'")
            info = self._lexicon.get(head + tail) or (self._lexicon.get(tail) if len(head) <= 2 else None)
        first = 0
        surname = False
        rank = gg = gg_en = 0
        if info is not None:
            first = 2 if info.gg else (1 if 0 < info.first_rank <= WEAK_FIRST_RANK else 0)
            surname = info.last_rank > 0
            rank, gg, gg_en = info.first_rank, info.gg, info.gg_en
        if low in self.extra_first_names:  # a user's name counts as a common English-speaking one
            first, rank, gg, gg_en = 2, rank or 1, max(gg, 13), 13
        stop = low in self._stop
        return Evidence(
            first=first,
            surname=surname,
            common=stop or self._is_common(low),
            stop=stop,
            foreign=low in self._foreign,
            famous=low in self._proper.person,
            nationality=low in self._proper.proper_adjectives,
            place=low in self._proper.places,
            gg=gg,
            gg_en=gg_en,
            lower_first_rank=rank,
        )

    def _is_common(self, low: str) -> bool:
        if low in self._common:
            return True
        if "'" in low or not low.isalpha():
            return False
        base = self._wn.morphy(low)
        return base is not None and base != low and base in self._common

    def _part_evidence(self, doc: Any, part: tuple[int, int]) -> Evidence:
        """Evidence of a run word, a hyphenated one combining its pieces ("Anna-Lena", "Al-Sayed")."""
        start, end = part
        if end - start == 1:
            return self.evidence(doc[start].lower_)
        joined = self.evidence(doc[start:end].text.lower())
        pieces = [self.evidence(doc[i].lower_) for i in range(start, end) if doc[i].is_alpha]
        return Evidence(
            first=max(joined.first, *(p.first for p in pieces[:1])),
            surname=joined.surname or any(p.surname for p in pieces),
            common=joined.common or all(p.common for p in pieces),
            stop=False,
            foreign=False,
            famous=joined.famous,
            nationality=False,
            place=joined.place,
            gg=max(joined.gg, *(p.gg for p in pieces[:1])),
            gg_en=max(joined.gg_en, *(p.gg_en for p in pieces[:1])),
            lower_first_rank=joined.lower_first_rank or pieces[0].lower_first_rank,
        )

    # ------------------------------------------------------------ the gate

    def gate(self, caption: str) -> bool:
        """Cheap test whether the caption may hold a person name (see the module docstring)."""
        return self._gate_level(caption) > 0

    def _gate_level(self, caption: str) -> int:
        """0: no candidate; 1: only lower-case candidates; 2: a capitalised candidate (NER may decide)."""
        words = caption_words(caption)
        if self._inert.issuperset(words) and NAMED.isdisjoint(lower_words(caption)):
            return 0  # most captions: every word is known to say nothing here
        codes = self._gate_codes
        level = 0
        for i, word in enumerate(words):
            code = codes.get(word)
            if code is None:
                code = self._gate_code(word)
                if len(codes) < 200_000:
                    codes[word] = code
                    if code in (_SKIP, _CAPITAL):
                        self._inert.add(word)
            if code == _SKIP:
                continue
            if code == _LOWER:
                level = 1
            elif code == _NAME:
                return 2
            elif i > 0 and (
                words[i - 1].lower() in NAMED or (code == _PAIRED and i + 1 < len(words) and words[i + 1][0].isupper())
            ):
                return 2
        return level

    def _gate_code(self, word: str) -> int:
        """What one word alone tells the gate (`_gate_level` adds its neighbours), cached per word."""
        if not word[0].isupper():
            return _LOWER if self._lower_candidate(word) else _SKIP
        if len(word) > 1 and word.isupper():
            return _SKIP
        low = word.lower()
        if low in TITLES:
            return _NAME
        ev = self.evidence(low)
        if ev.stop and low not in STOP_WORD_NAMES:
            return _CAPITAL
        if ev.first == 2 or ev.famous or ((ev.first or ev.surname) and not ev.common):
            return _NAME
        return _PAIRED if ev.first or ev.surname else _CAPITAL

    def _lower_candidate(self, word: str) -> bool:
        """A lower-case word that may be a name on its own ("jessica"; not "mark", "young", "tak")."""
        ev = self.evidence(word)
        return (
            ev.first == 2
            and 0 < ev.lower_first_rank <= LOWER_FIRST_RANK
            and not ev.common
            and not ev.foreign
            and (ev.gg_en > 0 or ev.gg >= LOWER_MIN_GG)
        )

    # ------------------------------------------------------------ runs

    def _cap(self, tok: Any) -> bool:
        text = tok.text
        return (
            _NAME_TOKEN.fullmatch(text) is not None
            and text[0].isupper()
            and not (len(text) > 1 and text.replace("'", "").replace("’", "").isupper())
        )

    def _name_word(self, doc: Any, i: int) -> bool:
        """Token i can be a word of a name run (a capitalised word, not a stop word)."""
        tok = doc[i]
        if not self._cap(tok):
            return False
        low = tok.lower_
        if low in self._stop:
            return (
                low in STOP_WORD_NAMES
                and not self._sentence_start(doc, i)
                and i + 1 < len(doc)
                and self._cap(doc[i + 1])
                and doc[i + 1].lower_ not in self._stop
            )
        return True

    @staticmethod
    def _sentence_start(doc: Any, i: int) -> bool:
        return i == 0 or doc[i - 1].text in SENTENCE_END

    def _title_at(self, doc: Any, i: int) -> int:
        """Index after a title at token i ("Dr." or "Dr" "."), or i when there is none."""
        tok = doc[i]
        if not tok.text[:1].isupper() or tok.lower_.rstrip(".") not in TITLES:
            return i
        j = i + 1
        if j < len(doc) and doc[j].text == "." and not tok.whitespace_:
            j += 1
        return j

    def _word_end(self, doc: Any, i: int) -> int:
        """End of the (possibly hyphenated) name word starting at token i."""
        j = i + 1
        while (
            j + 1 < len(doc)
            and doc[j].text in ("-", "‐")
            and not doc[j - 1].whitespace_
            and not doc[j].whitespace_
            and doc[j + 1].is_alpha
        ):
            j += 2
        return j

    def _hyphen_particle(self, doc: Any, i: int) -> bool:
        """'al-Sayed', 'el-Masri', 'bin-Laden': a lower-case particle glued to a capitalised word."""
        return (
            doc[i].lower_ in PARTICLES
            and i + 2 < len(doc)
            and doc[i + 1].text in ("-", "‐")
            and not doc[i].whitespace_
            and not doc[i + 1].whitespace_
            and self._cap(doc[i + 2])
        )

    def runs(self, doc: Any) -> list[Run]:
        """Candidate name runs of a doc, left to right (module docstring)."""
        out: list[Run] = []
        n = len(doc)
        i = 0
        while i < n:
            j = i
            titles: list[int] = []
            while j < n:
                after = self._title_at(doc, j)
                if after == j:
                    break
                titles.append(j)
                j = after
                if j + 1 < n and doc[j].lower_ in ("and", "&") and self._title_at(doc, j + 1) > j + 1:
                    j += 1
            if len(titles) > 1 and not (j < n and self._name_word(doc, j)):
                j = titles.pop()  # "Coach King": the last title word is the name
            titled = bool(titles)
            parts: list[tuple[int, int]] = []
            while j < n:
                if self._name_word(doc, j) or (parts and self._hyphen_particle(doc, j)):
                    end = self._word_end(doc, j)
                    parts.append((j, end))
                    j = end
                    continue
                if not parts:
                    break
                k = self._skip_inner(doc, j)
                if k > j and k < n and self._name_word(doc, k):
                    j = k
                    continue
                break
            if parts:
                out.append(Run(i, j, titled, parts))
                i = j
            else:
                i = max(i + 1, j)
        return out

    def _skip_inner(self, doc: Any, j: int) -> int:
        """After a name word: skip particles, initials or a quoted nickname; the index after them."""
        n = len(doc)
        k = j
        while k < n and doc[k].lower_ in PARTICLES and not self._cap(doc[k]):
            k += 1
        if k > j:
            return k
        while k < n and re.fullmatch(r"[A-Z]\.?", doc[k].text):  # initials "F." / "F" "."
            k += 1
            if k < n and doc[k].text == "." and not doc[k - 1].text.endswith("."):
                k += 1
        if k > j:
            return k
        close = QUOTES.get(doc[j].text)
        if close is not None:
            for k in range(j + 2, min(n, j + 2 + MAX_NICKNAME_TOKENS)):
                if doc[k].text == close or (close in ("'", "’") and doc[k].text in ("'", "’")):
                    return k + 1
                if doc[k].text in QUOTES:
                    break
        return j

    # ------------------------------------------------------------ decisions

    def _thing(self, doc: Any, run: Run) -> bool:
        """Rule 1: a WordNet multi-word lemma naming no person, or a fictional character."""
        words = [doc[s:e].text.lower().replace(" ", "") for s, e in run.parts]
        if run.end < len(doc) and doc[run.end].is_alpha and doc[run.end].is_lower:
            words_next = [*words, doc[run.end].lower_]
        else:
            words_next = words
        proper = self._proper
        for seq in (words, words_next):
            for a in range(len(seq)):
                for b in range(a + 2, len(seq) + 1):
                    key = "_".join(seq[a:b])
                    if key in proper.things and key not in proper.person:
                        return True
        key = "_".join(words)
        return key in proper.fictional and (len(words) > 1 or not self.evidence(key).first)  # "Hector" is a name

    def verdicts(self, doc: Any, run: Run) -> tuple[str, str]:
        """The run's verdict without and with NER's PERSON on one of its tokens: 'yes', 'no',
        or 'ambiguous' (a lone common-word first name without NER support)."""
        if self._thing(doc, run):
            return _NO
        evs = [self._part_evidence(doc, p) for p in run.parts]
        prev = doc[run.start - 1].lower_ if run.start > 0 else ""
        if run.titled or prev in NAMED:
            return _YES if any(e.first or e.surname or not e.common for e in evs) else _NO
        if len(evs) == 1:
            ev = evs[0]
            if prev in DETERMINERS or ev.nationality:
                return _NO
            if ev.first == 2:
                if ev.common and not ev.gg_en:  # "Tan dog", "Bum sitting": a word here, a name elsewhere
                    return _NO
                if not (ev.common or ev.foreign or ev.place or prev in LOCATIVES):
                    return _YES
                return ("ambiguous", "yes")
            if (ev.famous or ev.first == 1) and not ev.common:
                return _IF_PERSON
            return _NO
        lead, rest = evs[0], evs[1:]
        if lead.nationality:
            return _NO
        if not lead.first:
            ok = not any(e.common for e in evs) and any(e.first or e.surname for e in evs)
            return _IF_PERSON if ok else _NO
        if len(evs) >= 3 and evs[-1].common and not evs[-1].first:
            return _NO
        if not all(e.first or e.surname or not e.common for e in rest):
            return _NO
        if all(e.common for e in evs):
            return _IF_PERSON
        return _YES

    # ------------------------------------------------------------ substitution

    def spans(self, doc: Any, ner: list[bool] | None = None) -> list[tuple[int, int]]:
        """Token ranges [start, end) of the person names in `doc` (`ner`: default, the doc's PERSON tokens)."""
        if ner is None:
            ner = [t.ent_type_ == "PERSON" for t in doc]
        runs = self.runs(doc)
        return self._spans(doc, runs, [self.verdicts(doc, run)[any(ner[run.start : run.end])] for run in runs])

    def _spans(self, doc: Any, runs: list[Run], verdicts: list[str]) -> list[tuple[int, int]]:
        """`spans` from the runs' verdicts: lower-case names, coordination, overlaps merged."""
        spans = {(r.start, r.end): v for r, v in zip(runs, verdicts)}
        lower = self._lower_spans(doc, {i for s, e in spans for i in range(s, e)})
        spans.update(lower)
        self._coordinate(doc, spans)
        merged: list[tuple[int, int]] = []
        for start, end in sorted(span for span, v in spans.items() if v == "yes"):
            if merged and start < merged[-1][1]:  # overlapping ("jessica smith" and "smith")
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def _lower_spans(self, doc: Any, taken: set[int]) -> dict[tuple[int, int], str]:
        """Lower-case names (module docstring): 'yes' spans and 'ambiguous' common first names."""
        out: dict[tuple[int, int], str] = {}
        found = [
            i
            for i, t in enumerate(doc)
            if i not in taken
            and t.is_alpha
            and t.is_lower
            and self._lower_candidate(t.lower_)
            and not self._glued(doc, i)
            and not self._lower_thing(doc, i)
        ]
        if not found:
            return out
        names = set(found)
        rest = " ".join(t.text for i, t in enumerate(doc) if i not in names)
        if self._english.ratio(rest, self._foreign) < LOWER_CONTEXT_RATIO:
            return out
        covered = -1
        for i in found:
            if i < covered:
                continue
            start, end = i, i + 1
            if start > 0 and doc[start - 1].lower_.rstrip(".") in TITLES and doc[start - 1].is_lower:
                start -= 1
            if end < len(doc) and doc[end].is_lower and doc[end].is_alpha and end not in taken:
                ev = self.evidence(doc[end].lower_)
                if ev.surname and not ev.stop and (not ev.common or ev.first):
                    end += 1
            out[(start, end)] = "yes"
            covered = end
        for i, t in enumerate(doc):
            if i in taken or i in names or not (t.is_alpha and t.is_lower):
                continue
            ev = self.evidence(t.lower_)
            after_determiner = i > 0 and doc[i - 1].lower_ in DETERMINERS
            if (
                ev.first == 2
                and 0 < ev.lower_first_rank <= LOWER_FIRST_RANK
                and not (ev.stop or ev.foreign or after_determiner)
            ):
                out.setdefault((i, i + 1), "ambiguous")
        return out

    @staticmethod
    def _glued(doc: Any, i: int) -> bool:
        """Token i is part of a hyphenated word ("tri-colored")."""
        before = i > 0 and not doc[i - 1].whitespace_ and not doc[i - 1].is_punct
        hyphen_before = i > 0 and doc[i - 1].text in ("-", "‐") and not doc[i - 1].whitespace_
        hyphen_after = i + 1 < len(doc) and doc[i + 1].text in ("-", "‐") and not doc[i].whitespace_
        return before or hyphen_before or hyphen_after

    def _lower_thing(self, doc: Any, i: int) -> bool:
        """A lower-case first name starting a WordNet multi-word thing ("mickey mouse ears")."""
        return i + 1 < len(doc) and f"{doc[i].lower_}_{doc[i + 1].lower_}" in self._proper.things

    @staticmethod
    def _coordinate(doc: Any, spans: dict[tuple[int, int], str]) -> None:
        """An 'ambiguous' span joined by and/&/or/, to a 'yes' span becomes 'yes' ("Rose and Jessica")."""
        by_start = {s: (s, e) for s, e in spans}
        by_end = {e: (s, e) for s, e in spans}
        changed = True
        while changed:
            changed = False
            for (s, e), verdict in spans.items():
                if verdict != "ambiguous":
                    continue
                right = by_start.get(e + 1) if e < len(doc) and doc[e].lower_ in COORDINATORS else None
                left = by_end.get(s - 1) if s > 0 and doc[s - 1].lower_ in COORDINATORS else None
                if any(nb is not None and spans[nb] == "yes" for nb in (left, right)):
                    spans[(s, e)] = "yes"
                    changed = True

    def substitute(self, doc: Any) -> tuple[str, bool]:
        """(the doc's text with its names replaced, whether any was), NER's PERSON read from the doc."""
        return self._replace(doc, self.spans(doc))

    def _replace(self, doc: Any, found: list[tuple[int, int]]) -> tuple[str, bool]:
        text = doc.text
        for start, end in reversed(found):
            a, b = doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text)
            text = text[:a] + self.config.person_placeholder + text[b:]
        return text, bool(found)

    def gate_levels(self, captions: list[str]) -> list[int]:
        """The gate's level per caption (0: no candidate, 1: lower-case candidates only, 2: capitalised)."""
        return [self._gate_level(c) for c in captions]

    def ner_decides(self, doc: Any) -> bool:
        """Some run's verdict depends on NER's PERSON (the doc needs NER; module docstring)."""
        return any(without != with_ for without, with_ in (self.verdicts(doc, run) for run in self.runs(doc)))

    def substitute_batch(self, captions: list[str], levels: list[int] | None = None) -> list[tuple[str, bool]]:
        """`levels`: `gate_levels(captions)` when the caller already has them (the chain records the gate).

        Gated captions are tokenized and their runs decided; NER runs (`nlp.pipe` on those
        docs) only on level-2 captions where a verdict depends on it (`ner_decides`).
        """
        self.setup()
        out: list[tuple[str, bool]] = [(c, False) for c in captions]
        levels = self.gate_levels(captions) if levels is None else levels
        pending: list[tuple[int, Any, list[Run], list[tuple[str, str]]]] = []
        for i, level in enumerate(levels):
            if level == 0:
                continue
            doc = self._nlp.make_doc(captions[i])
            runs = self.runs(doc)
            both = [self.verdicts(doc, run) for run in runs]
            if level == 2 and any(without != with_ for without, with_ in both):
                pending.append((i, doc, runs, both))
            else:
                out[i] = self._replace(doc, self._spans(doc, runs, [without for without, _ in both]))
        docs = self._nlp.pipe((doc for _, doc, _, _ in pending), batch_size=self.config.spacy_batch_size)
        for (i, _, runs, both), doc in zip(pending, docs):
            ner = [t.ent_type_ == "PERSON" for t in doc]
            verdicts = [v[any(ner[run.start : run.end])] for run, v in zip(runs, both)]
            out[i] = self._replace(doc, self._spans(doc, runs, verdicts))
        return out
