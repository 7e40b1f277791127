"""The `filter:` section of the build config: the checks to run, with their options, and
the keys the text stage shares (cleaning, person-name substitution, spaCy batch size).

```yaml
filter:
  max_caption_chars: 1000
  checks:                 # filter name -> its options; run in catalog.reasons check order
    not_english: {}
    low_english_ratio: {min_ratio: 0.8}
    repeated_caption: {limit: 10}
    image_too_small: {min_size: 200}
```

`checks` starts from every filter of this package with its default options; the YAML
(or `--set filter.checks.NAME.KEY=...`) changes a filter's options, `NAME: false` turns a
filter off, and a filter registered by any imported module (`pipelines.filters.base.FILTERS`,
looked up when the config is validated) is turned on by naming it. Each filter's options
are its own `Options` model: an unknown name or key fails validation naming the dotted key
(`filter.checks.NAME.KEY`). The resolved config lists every filter, off ones as `false`,
so a stored config validates back to the same selection.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from catalog.config import Config
from pipelines.filters.base import FILTERS, Filter, check_order

_PACKAGE = __name__.rsplit(".", 1)[0] + "."


def builtin_names() -> list[str]:
    """Names of the filters this package defines (the default `checks`)."""
    return [name for name in FILTERS.names() if FILTERS.get(name).__module__.startswith(_PACKAGE)]


def _default_checks() -> dict[str, Any]:
    return {name: {} for name in builtin_names()}


class FilterConfig(Config):
    """`filter:` section; every key has a default, so an empty section runs every check."""

    max_caption_chars: int = Field(
        1000, ge=16, description="captions longer than this are cut at the last word boundary before it"
    )
    person_substitution: bool = True
    extra_first_names: list[str] = Field(
        default_factory=list, description="first names added to the name lexicons of the person-name gate"
    )
    person_placeholder: str = "<person>"
    spacy_batch_size: int = Field(256, ge=1)
    checks: dict[str, SerializeAsAny[Config] | Literal[False]] = Field(
        default_factory=_default_checks,
        description="filter name -> its options, or false to turn it off (run in catalog.reasons check order)",
    )

    @field_validator("checks", mode="before")
    @classmethod
    def _options(cls, value: Any) -> dict[str, Config | Literal[False]]:
        """Merge the given checks onto the defaults, validate each one's options with its own model;
        keep them in check order."""
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of filter name -> options, got {type(value).__name__}")
        errors: list[InitErrorDetails] = []
        options: dict[str, Config | Literal[False]] = {}
        for name, given in {**_default_checks(), **value}.items():
            if name not in FILTERS:
                errors.append(
                    _error(
                        (name,),
                        "unknown_filter",
                        "unknown filter (known filters: {known})",
                        name,
                        known=", ".join(check_order(FILTERS.names())),
                    )
                )
                continue
            model = FILTERS.get(name).Options
            if given is False:
                options[name] = False
                continue
            if isinstance(given, model):
                options[name] = given
                continue
            try:
                options[name] = model.model_validate({} if given is None else given)
            except ValidationError as exc:
                errors += [_nested(name, model, err) for err in exc.errors()]
        if errors:
            raise ValidationError.from_exception_data("checks", errors)
        return {name: options[name] for name in check_order(options)}

    def filters(self, stage: str) -> list[Filter]:
        """The selected filters of `stage`, built with their options, in check order."""
        return [
            FILTERS.get(name)(options, self)
            for name, options in self.checks.items()
            if options is not False and FILTERS.get(name).stage() == stage
        ]

    def options(self, name: str) -> Any:
        """The options of filter `name`, or None when it is turned off."""
        return self.checks.get(name) or None


def _error(loc: tuple[Any, ...], kind: str, message: str, given: Any, **ctx: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message, ctx), loc=loc, input=given)


def _nested(name: str, model: type[Config], err: Any) -> InitErrorDetails:
    """An error of one filter's options, located under its name, unknown keys listing the allowed ones."""
    loc = (name, *err["loc"])
    if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        allowed = ", ".join(model.model_fields) or "none"
        return _error(loc, "unknown_key", "unknown key (allowed keys: {allowed})", err["input"], allowed=allowed)
    return InitErrorDetails(type=err["type"], loc=loc, input=err["input"], ctx=err.get("ctx", {}))
