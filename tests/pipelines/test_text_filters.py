"""Unit tests of the text stage with the real models (fastText, WordNet, spaCy)."""

from __future__ import annotations

import pytest

from catalog.config import Config, ConfigError, load_config
from catalog.reasons import REASONS, STAGE_OF
from pipelines.filters import FILTERS, FilterConfig, TextChain, caption_repeat_key, normalize_caption
from pipelines.filters.base import Filter, register, reject
from pipelines.filters.chain import TEXT_SCORES
from pipelines.filters.config import builtin_names
from pipelines.filters.empty_caption import EmptyCaption
from pipelines.filters.english import EnglishWords
from pipelines.filters.low_english_ratio import LowEnglishRatio
from pipelines.filters.meaningless_caption import MeaninglessCaption
from pipelines.filters.not_english import NotEnglish, lid_text
from pipelines.filters.person import PersonNameSubstituter
from pipelines.filters.sensitive import SensitiveWords
from pipelines.filters.single_pos import SinglePos
from pipelines.stages.config import BuildConfig


def verdicts(chain: TextChain, captions: list[str]) -> list[str | None]:
    return [r["reason"] for r in chain.run([{"caption": c} for c in captions])]


# ------------------------------------------------------------------ cleaning


def test_normalize_removes_control_characters_and_collapses_whitespace():
    assert normalize_caption("a\x00 dog\u200b on\tthe \n\r beach\x1b  ") == "a dog on the beach"
    assert normalize_caption("\ufeffa cat") == "a cat"


def test_normalize_strips_html_tags_and_unescapes_entities():
    assert normalize_caption("<p>A <b>dog</b> &amp; a cat</p>") == "A dog & a cat"
    assert normalize_caption('<a href="http://x.y/z">two birds</a><br/>') == "two birds"
    assert normalize_caption("<script>alert(1)</script>a tree<!-- c -->") == "a tree"
    # not tags: kept as text
    assert normalize_caption("I <3 my dog") == "I <3 my dog"
    assert normalize_caption("x<y and y>z") == "x<y and y>z"


def test_normalize_fixes_mojibake_and_handles_missing():
    assert normalize_caption("cafÃ© on the corner") == "café on the corner"
    assert normalize_caption(None) == ""
    assert normalize_caption(float("nan")) == ""
    assert normalize_caption("   ") == ""


def test_normalize_truncates_long_captions_at_a_word_boundary():
    long = "word " * 500
    out = normalize_caption(long, max_chars=100)
    assert len(out) <= 100 and out.endswith("word") and "  " not in out
    assert normalize_caption("x" * 300, max_chars=50) == "x" * 50
    assert normalize_caption("a dog", max_chars=100) == "a dog"


def test_repeat_key_ignores_case_and_whitespace():
    assert caption_repeat_key("A  Dog ") == caption_repeat_key("a dog")
    assert caption_repeat_key("a dog") != caption_repeat_key("a cat")
    assert len(caption_repeat_key("a dog")) == 40


# ------------------------------------------------------------------ single filters


def test_registry_names_match_reasons():
    for name in (
        "empty_caption",
        "meaningless_caption",
        "not_english",
        "low_english_ratio",
        "single_pos",
        "sensitive",
        "repeated_caption",
        "too_many_pixels",
        "image_too_small",
        "aspect_ratio",
    ):
        cls = FILTERS.get(name)
        assert cls.reason == name and name in REASONS and cls.stage() == STAGE_OF[name]
    # the stages' own outcomes are not filters
    assert not {"download_failed", "not_an_image", "duplicate_image"} & set(FILTERS.names())


def test_empty_caption():
    f = EmptyCaption()
    assert f.keep({"caption": ""}) == (False, "empty_caption")
    assert f.keep({"caption": "a dog"}) is True


@pytest.mark.parametrize(
    "caption",
    [
        "IMG_0042.JPG",
        "DSC01234.jpg",
        "img_0.jpg",
        "PXL_20230101_123456.jpg",
        "PXL_20230101_123456",
        "DSCN0042",
        "DCIM/100CANON/IMG_0001.JPG",
        "DCIM",
        "my holiday photo.png",
        "https://example.com/a.jpg",
        "www.example.com",
        "http://a.b/c http://d.e/f",
        "12345",
        "2023-01-01 12:00",
        "!!! ???",
        "#1",
    ],
)
def test_meaningless_caption_rejects(caption):
    assert MeaninglessCaption().keep({"caption": caption}) == (False, "meaningless_caption")


@pytest.mark.parametrize(
    "caption",
    [
        "a red circle",
        "a dog photographed at www.example.com by the sea",
        "Image of a cat",
        "3 dogs on a sofa",
        "P is for pizza",
    ],
)
def test_meaningless_caption_keeps(caption):
    assert MeaninglessCaption().keep({"caption": caption}) is True


def test_sensitive_matches_whole_words_case_insensitively():
    f = SensitiveWords({"words": ["gore", "adult content"]})
    assert f.keep({"caption": "GORE scene"}) == (False, "sensitive")
    assert f.keep({"caption": "this is Adult  Content here"}) == (False, "sensitive")
    assert f.keep({"caption": "Al Gore's dog"}) == (False, "sensitive")
    assert f.keep({"caption": "a gorge in the mountains"}) is True
    assert f.keep({"caption": "an adult and a child"}) is True
    assert SensitiveWords({"words": []}).keep({"caption": "porn"}) is True
    assert SensitiveWords().keep({"caption": "a porn still"}) == (False, "sensitive")
    assert SensitiveWords().keep({"caption": "a man from Essex"}) is True


def test_not_english_writes_its_scores(chain):
    f = NotEnglish(words=EnglishWords())
    f.setup()
    row = {"caption": "ein kleiner roter Kreis über einem blauen Quadrat"}
    assert f.keep(row) == (False, "not_english")
    assert row["lang"] == "de" and row["lang_prob"] > 0.9 and row["lang_en_prob"] < 0.04
    assert row["n_words"] == 8 and row["lid_english_ratio"] < 0.5
    row = {"caption": "a red circle"}  # fastText: en 0.20 — kept
    assert f.keep(row) is True
    assert row["lang"] == "en" and 0 < row["lang_en_prob"] < 0.5
    row = {"caption": "A girl rides a horse ."}  # fastText's top label is es, English is second
    assert f.keep(row) is True and row["lang"] == "es"
    row = {"caption": "a yellow heart"}  # fastText unsure of everything: nl 0.09, fr 0.08, de 0.07
    assert f.keep(row) is True and row["lang_prob"] < 0.2
    row = {"caption": "dos astres grocs."}  # Catalan, but fastText's top label is en 0.33
    assert f.keep(row) == (False, "not_english")
    row = {"caption": "a black star."}  # "star." is an unseen token to fastText: pt 0.41 unless split off
    assert f.keep(row) is True and row["lang"] == "en"
    row = {"caption": "A purple heart above a black circle"}  # de 0.29, en < 0.08, but every word is English
    assert f.keep(row) is True and row["lang"] == "de"
    # the verdict is a function of the recorded scores and the options alone (whatif replays it)
    assert f.decide(row) is True
    assert NotEnglish({"all_english_ratio": 1.0, "english_ratio": 1.0, "foreign_prob": 0.2}).decide(row) == (
        False,
        "not_english",
    )
    assert lid_text("“A purple diamond”, drawn.") == "“ A purple diamond ”, drawn ."


def test_low_english_ratio_writes_ratio(chain):
    f = LowEnglishRatio()
    f.setup()
    row = {"caption": "the dog xqzv blorf wuggle"}
    assert f.keep(row) == (False, "low_english_ratio")
    assert row["english_ratio"] == pytest.approx(0.4)
    row = {"caption": "the geese swam across the lakes"}  # morphy on the misses
    assert f.keep(row) is True and row["english_ratio"] == 1.0
    row = {"caption": "Maria Lopez holding a red star"}  # names do not count against English
    assert f.keep(row) is True
    threshold = LowEnglishRatio({"min_ratio": 0.3})
    threshold.setup()
    assert threshold.keep({"caption": "the dog xqzv blorf wuggle"}) is True


def test_single_pos(chain):
    f = SinglePos()
    rows = [
        {"caption": c}
        for c in (
            "red blue green",
            "dog cat bird",
            "circle square star",
            "big small tall",
            "a red circle",
            "Sunset beach",
            "dog",
            "Man scales rock .",
        )
    ]
    assert f.keep_batch(rows) == [(False, "single_pos")] * 4 + [True, (False, "single_pos"), True, True]
    assert SinglePos({"min_words": 3}).keep({"caption": "Sunset beach"}) is True
    # the tagger guesses VERB/ADV in lists ("triangles" VBZ, "stars" VBP, "pink" ADV, "round" VB)
    lists = [
        "hexagons triangles",
        "squares diamonds crosses",
        "hearts stars triangles",
        "stars circles hearts",
        "black pink green",
        "round large simple small",
    ]
    assert f.keep_batch([{"caption": c} for c in lists]) == [(False, "single_pos")] * len(lists)
    # a verb that agrees with the noun before it, or a participle, is still a verb
    sentences = ["dog runs", "dogs run", "girl smiles", "man running", "two blue squares", "share more free pictures"]
    assert f.keep_batch([{"caption": c} for c in sentences]) == [True] * len(sentences)


def test_person_substitution(chain):
    p = PersonNameSubstituter()
    out = p.substitute_batch(
        [
            "Maria Lopez holding a red star",
            "a red circle next to John Smith",
            "Tom holding a cup",
            "A Corgi runs on the beach",
            "A man with a Mohawk",
            "a small red circle above a blue square",
            "Kenji Walker painted a small yellow triangle",  # NER calls it ORG
            "Priya Schmidt painted a purple triangle",  # NER's PERSON span is "Schmidt" only
        ]
    )
    assert out == [
        ("<person> holding a red star", True),
        ("a red circle next to <person>", True),
        ("<person> holding a cup", True),
        ("A Corgi runs on the beach", False),
        ("A man with a Mohawk", False),
        ("a small red circle above a blue square", False),
        ("<person> painted a small yellow triangle", True),
        ("<person> painted a purple triangle", True),
    ]
    assert not p.gate("a dog on the beach") and p.gate("Maria Lopez holding a red star") and p.gate("a dog and Rex")
    custom = PersonNameSubstituter(FilterConfig(person_placeholder="[NAME]"))
    assert custom.substitute_batch(["Maria Lopez holding a red star"]) == [("[NAME] holding a red star", True)]


# ------------------------------------------------------------------ the chain


def test_chain_first_failing_reason_in_check_order(chain):
    captions = [
        "   ",
        "IMG_0042.JPG",
        "un pequeño círculo rojo encima de un cuadrado azul",
        "a dog and a cat with a xqzv blorf",
        "red blue green",
        "a porn video still",
        "a small red circle above a blue square",
    ]
    assert verdicts(chain, captions) == [
        "empty_caption",
        "meaningless_caption",
        "not_english",
        "low_english_ratio",
        "single_pos",
        "sensitive",
        None,
    ]


def test_chain_rows_keep_fields_scores_and_scrubbed_captions(chain):
    out = chain.run(
        [
            {"key": "k1", "url": "http://x/1.jpg", "caption": "  <b>Maria Lopez</b> holding a red star "},
            {"key": "k2", "url": "http://x/2.jpg", "caption": "Maria Lopez sostiene una estrella roja grande"},
        ]
    )
    kept, rejected = out
    assert set(kept) == {"key", "url", "caption", "reason", *TEXT_SCORES}
    assert kept["caption"] == "<person> holding a red star" and kept["reason"] is None
    assert kept["person_substituted"] is True and kept["name_gate"] is True and kept["english_ratio"] == 1.0
    assert kept["caption_empty"] is False and kept["meaningless"] is False and kept["sensitive"] is False
    assert kept["pos"] == [] and kept["lang"] == "en"
    # a rejected row is scored by every check too, and its caption is scrubbed, never raw
    assert rejected["reason"] == "not_english"
    assert "Maria" not in rejected["caption"] and rejected["caption"].startswith("<person>")
    assert 0 <= rejected["english_ratio"] < 0.8 and rejected["pos_words"] >= 5


def only(**checks):
    """`filter.checks` with every built-in filter turned off but `checks`."""
    return {**{name: False for name in builtin_names()}, **checks}


def test_chain_runs_only_the_selected_filters():
    c = TextChain(FilterConfig(checks=only(empty_caption={}), person_substitution=False))
    assert [f.name for f in c.filters] == ["empty_caption"]
    assert [r["reason"] for r in c.run([{"caption": ""}, {"caption": "IMG_0042.JPG"}])] == ["empty_caption", None]


def test_chain_is_built_in_check_order_whatever_the_yaml_order(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(
        "checks:\n  sensitive: {}\n  aspect_ratio: {}\n  meaningless_caption: {}\n  repeated_caption: {}\n"
        "  empty_caption: {}\n  not_english: false\n  low_english_ratio: false\n  single_pos: false\n"
        "  too_many_pixels: false\n  image_too_small: false\n"
    )
    cfg = load_config(FilterConfig, path)
    cfg = cfg.model_copy(update={"checks": {n: o for n, o in cfg.checks.items() if o is not False}})
    assert list(cfg.checks) == ["empty_caption", "meaningless_caption", "sensitive", "repeated_caption", "aspect_ratio"]
    # the per-row text filters only: repeated_caption is applied by the text stage, aspect_ratio by the image stage
    assert [f.name for f in TextChain(cfg).filters] == ["empty_caption", "meaningless_caption", "sensitive"]
    # a caption failing two checks gets the earlier one: "porn.jpg" is meaningless before it is sensitive
    c = TextChain(cfg.model_copy(update={"person_substitution": False}))
    assert verdicts(c, ["porn.jpg", "a porn still", "a red circle"]) == ["meaningless_caption", "sensitive", None]


def test_default_checks_are_every_built_in_filter_with_default_options():
    cfg = FilterConfig()
    assert list(cfg.checks) == [r for r in REASONS if r in FILTERS]
    assert cfg.checks["low_english_ratio"].min_ratio == 0.8 and cfg.checks["repeated_caption"].limit == 10
    assert cfg.checks["image_too_small"].min_size == 200 and cfg.checks["aspect_ratio"].max_ratio == 3.0
    assert FilterConfig.model_validate(cfg.to_dict()) == cfg  # the dump (manifests, Ray actors) round-trips


def test_chain_error_names_the_row_without_the_caption(chain):
    with pytest.raises(KeyError, match="row 1 \\(key 'k2'\\) has no 'caption'"):
        chain.run([{"key": "k1", "caption": "a dog"}, {"key": "k2", "text": "Maria Lopez"}])


def test_config_section_validates(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("checks:\n  not_english:\n  low_english_ratio: {min_ratio: 0.7}\n  single_pos: false\n")
    cfg = load_config(FilterConfig, path)
    # named checks change options, `false` turns one off, the others keep their defaults
    on = [n for n, o in cfg.checks.items() if o is not False]
    assert set(on) == set(builtin_names()) - {"single_pos"} and cfg.checks["single_pos"] is False
    assert cfg.checks["low_english_ratio"].min_ratio == 0.7 and cfg.checks["not_english"].confident_en == 0.5
    assert "single_pos" not in [f.name for f in TextChain(cfg).filters]
    assert FilterConfig.model_validate(cfg.to_dict()) == cfg  # the off filter stays off in a stored config
    # one option set with --set leaves every other filter on
    one = load_config(FilterConfig, None, ["checks.not_english.confident_en=0.6"])
    assert one.checks["not_english"].confident_en == 0.6 and all(o is not False for o in one.checks.values())
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(FilterConfig, None, ["lid_treshold=0.5"])


def test_misspelled_option_names_the_file_and_the_dotted_key(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text("filter:\n  checks:\n    low_english_ratio: {min_ratoi: 0.8}\n")
    with pytest.raises(ConfigError) as err:
        load_config(BuildConfig, path, ["source.urls=x.parquet"])
    assert str(path) in str(err.value)
    assert "'filter.checks.low_english_ratio.min_ratoi': unknown key (allowed keys: min_ratio)" in str(err.value)
    with pytest.raises(
        ConfigError, match=r"'filter.checks.low_english_ratio.min_ratio': Input should be less than or equal to 1"
    ):
        load_config(BuildConfig, None, ["source.urls=x.parquet", "filter.checks.low_english_ratio.min_ratio=2"])


def test_unknown_filter_names_the_known_filters(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text("source: {urls: x.parquet}\nfilter:\n  checks:\n    not_englsh: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(BuildConfig, path)
    message = str(err.value)
    assert (
        str(path) in message and "'filter.checks.not_englsh': unknown filter (known filters: empty_caption, " in message
    )
    assert "not_english" in message and "aspect_ratio" in message


class NoCircles(Filter):
    """A filter a test module registers: selectable by one YAML line like a built-in one."""

    name = "test_no_circles"
    reason = "sensitive"

    class Options(Config):
        word: str = "circle"

    def keep(self, row):
        return reject(self.reason) if self.options.word in row["caption"] else True


register(NoCircles)


def test_a_filter_registered_elsewhere_is_selected_by_name_and_not_on_by_default(tmp_path):
    assert "test_no_circles" not in FilterConfig().checks
    path = tmp_path / "f.yaml"
    path.write_text("person_substitution: false\nchecks:\n  test_no_circles: {word: square}\n")
    c = TextChain(load_config(FilterConfig, path))  # one YAML line turns it on, next to the built-ins
    names = [f.name for f in c.filters]
    assert names[-2:] == ["sensitive", "test_no_circles"] and names[0] == "empty_caption"  # its reason's place
    assert verdicts(c, ["a red square", "a red circle", ""]) == ["sensitive", None, "empty_caption"]
    with pytest.raises(ConfigError, match=r"'checks.test_no_circles.words': unknown key \(allowed keys: word\)"):
        load_config(FilterConfig, None, ["checks.test_no_circles.words=x"])


def test_a_filter_reason_must_be_in_the_vocabulary():
    class Blurry(Filter):
        name = "test_blurry"
        reason = "blurry"

    with pytest.raises(ValueError, match="unknown reject reason 'blurry'"):
        register(Blurry)
    assert "test_blurry" not in FILTERS
