"""The base of every configuration section: unknown keys are errors, values are read-only, and the rules that
hold for every key of every section are kept here, once, so that a section added later has them too:

- no control character (newline, NUL, escape...) in any text: configuration strings reach sudoers rules,
  systemd units, paths and command lines, where a newline is a new rule and a NUL cuts a path. Free text
  shown only to humans (`FreeText`) may hold newlines and tabs;
- every path (a `Path` field) is absolute and written in its normal form (no `.`, `..`, `//` or trailing
  `/`): root follows it, so it must say plainly where it leads. A field that is relative on purpose says
  so (`RelativePath`) and is still normalised;
- every number is finite (TOML has `inf` and `nan`), and a duration named by its unit (`*_days`,
  `*_hours`, `*_minutes`, `*_seconds`) is at most a century: past that, date arithmetic overflows.

The schema is also the configuration's one documentation: every field carries its `description` (a table's is
its section class's docstring unless the field gives one) and, where its default is not what the shipped
example shows, its `examples`; configuration/reference.py writes the shipped example and the reference page
from them. `per_box` says whether a [[boxes]] entry may set the section for its box.
"""

from __future__ import annotations

import math
import posixpath
import unicodedata
from pathlib import Path, PurePath
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from core.redact import url_shown


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


FREE_TEXT = _Marker("free text")  # shown to humans only: newlines and tabs allowed
RELATIVE = _Marker("relative path")  # a path that may be relative (to what: said where the field is declared)
OCTAL = _Marker("octal")  # a file mode: the example writes it as TOML's 0o640
PATH_TEXT = _Marker("path text")  # a path kept as text (a disk, a device): the reference calls it a path

FreeText = Annotated[str, FREE_TEXT]
RelativePath = Annotated[Path, RELATIVE]
FileMode = Annotated[int, OCTAL]

# How the shipped example shows a key (json_schema_extra, both may be given), when not as `key = value`:
COMMENTED = {"commented": True}  # commented out, with its example: the default holds until the operator writes it
TABLES = {"tables": True}  # a list of tables written as [[key]] tables, one per entry

CENTURY_DAYS = 36_525
DURATION_LIMITS = {"_days": CENTURY_DAYS, "_hours": CENTURY_DAYS * 24, "_minutes": CENTURY_DAYS * 1440,
                   "_seconds": CENTURY_DAYS * 86_400}


def control_character(text: str, allowed: str = "") -> str | None:
    """The first control character of `text` (as U+XXXX and its position), or None."""
    for position, char in enumerate(text):
        if char not in allowed and (unicodedata.category(char) in ("Cc", "Zl", "Zp")):
            return f"U+{ord(char):04X} at position {position}"
    return None


def path_problem(raw: str, relative_allowed: bool = False) -> str | None:
    """What is wrong with a path as written, or None: it must say plainly where it leads."""
    if not raw:
        return "is empty: write the absolute path"
    if not relative_allowed and not raw.startswith("/"):
        return "must be an absolute path (starting with /): a relative one depends on where the suite was started"
    if ".." in raw.split("/"):
        return "must not contain '..': name the directory itself (with links, '..' can lead somewhere else)"
    normal = "/" if raw == "/" else posixpath.normpath(raw).replace("//", "/")
    if raw != normal:
        return f"is not written in its normal form (no '.', '//' or trailing '/'): write {normal!r}"
    return None


def _markers(field) -> set[_Marker]:
    """The markers of a field, on it or inside its type (list[RelativePath])."""
    found = {item for item in field.metadata if isinstance(item, _Marker)}
    stack = [field.annotation]
    while stack:
        annotation = stack.pop()
        if get_origin(annotation) is Annotated:
            found |= {item for item in annotation.__metadata__ if isinstance(item, _Marker)}
        stack.extend(get_args(annotation))
    return found


def section_of(annotation) -> type[Section] | None:
    """The section class a field holds, alone, optional, in a list or as a table's values; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    return next((found for arg in get_args(annotation) if (found := section_of(arg)) is not None), None)


def _holds_paths(annotation) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return True
    return any(_holds_paths(arg) for arg in get_args(annotation))


def _strings(value: Any):
    """Every text inside a value (keys of tables too), never going into another section."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, PurePath):
        yield str(value)
    elif isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _strings(item)


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)


def _path_error(field_name: str, index: int | None, raw: str, problem: str) -> InitErrorDetails:
    """A bad path under its own key: the field's, or the item's in a list (critical_files.2)."""
    said = f"{field_name} {raw!r} {problem}" if index is None else f"{raw!r} {problem}"
    return InitErrorDetails(type=PydanticCustomError("path", "{message}", {"message": said}),
                            loc=() if index is None else (index,), input=raw)


class Section(BaseModel):
    """A table of the configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Whether a [[boxes]] entry may set this table for its box; the rest (alerts, reports, policy...) is the run's.
    per_box: ClassVar[bool] = False

    @field_validator("*", mode="before")
    @classmethod
    def _paths_say_where_they_lead(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields[info.field_name]
        if not _holds_paths(field.annotation):
            return value
        relative = RELATIVE in _markers(field)
        items = enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        errors = [_path_error(info.field_name, index, raw, problem)
                  for index, raw in items if isinstance(raw, str) and (problem := path_problem(raw, relative))]
        if errors:  # each item's own key (critical_files.2), as pydantic names the others
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        free = FREE_TEXT in _markers(cls.model_fields[info.field_name])
        for text in _strings(value):
            found = control_character(text, "\n\t" if free else "")
            if found and free:
                raise ValueError(f"holds a control character ({found}): free text may hold newlines and tabs, "
                                 f"nothing that drives a terminal; remove it")
            if found:
                raise ValueError(f"holds a control character ({found}): text that can reach a path, a command "
                                 f"line, a unit or sudoers must be one plain line; remove it")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _numbers_in_range(cls, value: Any, info: ValidationInfo) -> Any:
        for number in _numbers(value):
            if isinstance(number, float) and not math.isfinite(number):
                raise ValueError(f"{number} is not a finite number")
            limit = next((limit for suffix, limit in DURATION_LIMITS.items() if info.field_name.endswith(suffix)),
                         None)
            if limit is not None and abs(number) > limit:
                raise ValueError(f"{number} is more than a century ({limit:,} {info.field_name.rsplit('_', 1)[1]})")
        return value


def _http_url(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")  # the value is never echoed
    return value


class SecretUrlStr(SecretStr):
    """A URL whose path, query or user-info carries a secret (a Slack or Discord hook's token, a check's
    uuid): held as a secret from the moment it is read, so no repr, traceback or --showlocals prints more
    of it than its scheme and host (`https://hooks.slack.com/…`)."""

    def __str__(self) -> str:
        return url_shown(self.get_secret_value())

    def __repr__(self) -> str:
        return f"SecretUrl({str(self)!r})"


SecretUrl = Annotated[SecretUrlStr, AfterValidator(_http_url)]


def _absolute_path_text(value: str) -> str:
    problem = path_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


# A path kept as text (a disk, a device): the same rules as a Path field.
PathText = Annotated[str, AfterValidator(_absolute_path_text), PATH_TEXT]

# A systemd unit or supervisor program name: what `systemctl`, sudoers and unit files accept as one word.
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9:_.@-]*$", max_length=255)]

# A user or group name as useradd and groupadd take it (Debian's NAME_REGEX, widened to upper case and dots).
AccountName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$", max_length=32)]
