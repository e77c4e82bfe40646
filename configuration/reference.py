"""The shipped example configuration and the configuration reference, both written from the schema.

The sections' fields carry their descriptions and examples where they are declared (configuration/section.py
says how), so a comment kept by hand beside the schema cannot drift from it: `make example-config` writes
config/maintenance.example.toml and docs/configuration.md from here, and a test keeps the shipped files equal
to what this writes.

    python -m configuration.reference example|markdown [PATH]     (stdout without PATH)

The example shows every key: set to its example (the guide's box) or its default, or commented out where the
field says so (COMMENTED: the default holds until the operator writes the key). A class's keys are described
the first time the example shows it.
"""

from __future__ import annotations

import datetime
import enum
import inspect
import json
import re
import sys
import textwrap
import types
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from configuration.schema import BOX_EXAMPLE, BOX_SECTIONS, BOXES_DESCRIPTION, EXAMPLE, Settings
from configuration.section import OCTAL, PATH_TEXT, SecretUrlStr, Section, section_of
from core import atomic

REFERENCE = EXAMPLE.parent.parent / "docs" / "configuration.md"
WIDTH = 118  # a comment line of the example, "# " included
EXAMPLE_HEADER = """\
Maintenance suite configuration for the trading box: the shipped example.

Copy this file to /etc/trading-maintenance/maintenance.toml (or anywhere) and point the suite at it:
  make daily CONFIG=/etc/trading-maintenance/maintenance.toml
  pytest -m daily --maintenance-config=/etc/trading-maintenance/maintenance.toml
  MAINTENANCE_CONFIG=/etc/trading-maintenance/maintenance.toml pytest -m daily
Every value below is the maintenance guide's; change what differs on your box. The file is validated before any \
check runs: a bad value stops the run and names the key. A key commented out keeps its default.

Written from the schema (configuration/) by `make example-config`; docs/configuration.md lists every key."""
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
NO_BREAK = "\x00"  # a space inside `code`, while a paragraph is wrapped


class Unshowable(Exception):
    """A field the example cannot show: no example and no default TOML can write. Give it `examples=[...]`."""


# -- what a field says and shows


def description(owner: type[Section], name: str) -> str:
    """The field's own description, else (a table) its section's docstring."""
    field = owner.model_fields[name]
    if field.description:
        return field.description
    section = section_of(field.annotation)
    return docstring(section) if section else ""


def is_commented(field: FieldInfo) -> bool:
    return isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("commented", False)


def as_tables(field: FieldInfo) -> bool:
    return isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("tables", False)


def default_of(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def example_of(field: FieldInfo, given: Any = PydanticUndefined) -> Any:
    """What the example shows for a field: what its table holds where that is not the field's own default (the
    levels of [resources.memory]), else its example, else its default."""
    default = default_of(field)
    if given is not PydanticUndefined and (default is PydanticUndefined or given != default):
        return given
    if field.examples:
        return field.examples[0]
    if default is PydanticUndefined or default is None:
        raise Unshowable(f"{field!r} has neither an example nor a default")
    return default


def plain(value: Any) -> Any:
    """The value as TOML data: tables as dicts (a section's fields in their order), paths and enums as text."""
    if isinstance(value, Section):
        return {name: plain(item) for name, field in type(value).model_fields.items()
                if not field.exclude and (item := getattr(value, name)) is not None}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    return value


# -- TOML


def toml_key(key: str) -> str:
    return key if BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def toml_value(value: Any, octal: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and octal:
        return f"0o{value:o}"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(key)} = {toml_value(item)}" for key, item in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML for {value!r}")


def assignment(key: str, value: Any, octal: bool = False, width: int = WIDTH) -> list[str]:
    """`key = value`, an array that does not fit spread over lines (an inline table stays on one: TOML says so)."""
    line = f"{toml_key(key)} = {toml_value(value, octal)}"
    if len(line) <= width or not isinstance(value, list) or not value:
        return [line]
    items = [toml_value(item) + "," for item in value]
    if any(isinstance(item, (dict, list)) for item in value):
        return [f"{toml_key(key)} = [", *(f"  {item}" for item in items), "]"]
    packed = textwrap.wrap(" ".join(items), width - 2, break_long_words=False, break_on_hyphens=False)
    return [f"{toml_key(key)} = [", *(f"  {row}" for row in packed), "]"]


def prose(text: str, width: int) -> list[str]:
    """Text as lines: a paragraph rewrapped, a line that starts with spaces kept as it is (a command)."""
    lines, paragraph = [], []
    for raw in inspect.cleandoc(text).splitlines():
        if raw.strip() and not raw.startswith(" "):
            paragraph.append(raw.strip())
            continue
        lines += wrapped(" ".join(paragraph), width)
        paragraph = []
        lines.append(raw.rstrip())
    return lines + wrapped(" ".join(paragraph), width)


def wrapped(text: str, width: int) -> list[str]:
    """A paragraph in lines of at most `width`, never broken inside `code`."""
    kept = re.sub(r"`[^`]*`", lambda span: span[0].replace(" ", NO_BREAK), text)
    rows = textwrap.wrap(kept, width, break_long_words=False, break_on_hyphens=False)
    return [row.replace(NO_BREAK, " ") for row in rows]


def comment(text: str) -> list[str]:
    return [f"# {line}".rstrip() for line in prose(text, WIDTH - 2)] if text else []


def octal(field: FieldInfo) -> bool:
    return any(item is OCTAL for item in field.metadata) or OCTAL in _annotated(field.annotation)


def _annotated(annotation) -> tuple:
    return get_args(annotation)[1:] if get_origin(annotation) is Annotated else ()


# -- the example


class ExampleWriter:
    """The example file, table by table; each class's keys described the first time it is shown."""

    def __init__(self):
        self.lines: list[str] = []
        self.described: set[type[Section]] = set()

    def emit(self, lines: list[str], commented: bool) -> None:
        self.lines += [f"# {line}" if commented else line for line in lines]

    def table(self, cls: type[Section], value: Section | dict, path: list[str], commented: bool, about: str,
              many: bool = False) -> None:
        """One table: its description, its header, its keys (each with its own), then the tables below it."""
        entries = list(self.entries(cls, value))
        keys = [entry for entry in entries if not is_table(entry[1], entry[2])]
        below = [entry for entry in entries if is_table(entry[1], entry[2])]
        self.lines += ["", *comment(about)]
        if keys or not below or many:
            self.emit([f"[[{'.'.join(path)}]]" if many else f"[{'.'.join(path)}]"], commented)
        describe = cls not in self.described
        self.described.add(cls)
        for name, field, shown, hidden in keys:
            if describe:
                self.lines += comment(description(cls, name))
            self.emit(assignment(name, plain(shown), octal(field)), commented or hidden)
        for name, field, shown, hidden in below:
            self.below(cls, name, field, shown, path, commented or hidden)

    @staticmethod
    def entries(cls: type[Section], value: Section | dict):
        """(name, field, value shown, whether it is commented out): an example table's keys in its order, or every
        field of a section's value."""
        if isinstance(value, dict):
            return [(name, cls.model_fields[name], item, False) for name, item in value.items()]
        return [(name, field, example_of(field, getattr(value, name)), is_commented(field))
                for name, field in cls.model_fields.items() if not field.exclude]

    def below(self, cls: type[Section], name: str, field: FieldInfo, shown: Any, path: list[str],
              commented: bool) -> None:
        """A table under `path`: a section's, [[tables]] one per entry, tables by key, or a table of plain values."""
        section, about = section_of(field.annotation), description(cls, name)
        if isinstance(shown, list):
            for index, item in enumerate(shown):
                self.table(section, item, [*path, name], commented, about if index == 0 else "", many=True)
        elif section is not None and get_origin(field.annotation) is dict:
            self.lines += ["", *comment(about)]
            for key, item in shown.items():
                self.table(section, item, [*path, name, toml_key(key)], commented, "")
        elif section is not None:
            self.table(section, shown, [*path, name], commented, about)
        else:
            self.lines += ["", *comment(about)]
            self.emit([f"[{'.'.join([*path, name])}]",
                       *(line for key, item in plain(shown).items() for line in assignment(key, item))], commented)


def is_table(field: FieldInfo, shown: Any) -> bool:
    """Whether the example writes the field as a table of its own rather than `key = value`."""
    if get_origin(field.annotation) is dict:
        return True
    if isinstance(shown, list):
        return as_tables(field)
    return section_of(field.annotation) is not None and isinstance(shown, (Section, dict))


def example() -> str:
    """The shipped example configuration, comments included."""
    writer = ExampleWriter()
    writer.lines += comment(EXAMPLE_HEADER)
    settings = Settings()
    for name, field in Settings.model_fields.items():
        if not field.exclude:
            writer.below(Settings, name, field, example_of(field, getattr(settings, name)), [], is_commented(field))
    boxes(writer)
    return "\n".join(writer.lines) + "\n"


def boxes(writer: ExampleWriter) -> None:
    """[[boxes]], commented out: read by the loader, not a field of Settings (schema.py documents it)."""
    writer.lines += ["", *comment(BOXES_DESCRIPTION)]
    writer.emit(["[[boxes]]", *assignment("name", BOX_EXAMPLE["name"])], True)
    for key, table in BOX_EXAMPLE.items():
        if key != "name":
            lines = [line for item, value in table.items() for line in assignment(item, value)]
            writer.emit([f"[boxes.{key}]", *lines], True)


# -- the reference page


def type_name(annotation) -> str:
    """The field's type in an operator's words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        markers = {OCTAL: "file mode (octal)", PATH_TEXT: "path"}
        return next((markers[item] for item in args[1:] if item in markers), None) or type_name(args[0])
    if origin is Union or isinstance(annotation, types.UnionType):
        named = [type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(named)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in args)
    if origin in (list, tuple):
        inner = type_name(args[0]) if args else "value"
        return f"[{inner}, {inner}]" if origin is tuple else f"list of {inner}"
    if origin is dict:
        return f"table of {type_name(args[1])}"
    return _simple_type(annotation)


def _simple_type(annotation) -> str:
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(json.dumps(member.value) for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return "table"
    names = [(bool, "boolean"), (int, "integer"), (float, "number"), (SecretUrlStr, "URL (a secret)"),
             (str, "string"), (PurePath, "path"), (datetime.datetime, "date-time"), (datetime.date, "date")]
    return next((name for kind, name in names if isinstance(annotation, type) and issubclass(annotation, kind)),
                str(annotation))


def md(text: str) -> str:
    """Text for markdown: what would be markup (<tag>, *, |) escaped outside `code`."""
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(part if part.startswith("`") else
                   part.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*") for part in parts)


def cell(text: str) -> str:
    """One table cell: a line that starts with spaces (a command) as `code`, the rest joined."""
    lines = [f"`{line.strip()}`" if line.startswith(" ") else line for line in prose(text, 10_000)]
    return pipes(md(" ".join(line for line in lines if line)))


def pipes(text: str) -> str:
    """A table cell's | escaped, `code` too (GitHub's tables split on it there as well)."""
    return text.replace("|", "\\|")


def paragraphs(text: str) -> list[str]:
    """A docstring as markdown: paragraphs, and lines that start with spaces as a block of code."""
    out, block = [], []
    for line in prose(text, 10_000):
        if line.startswith(" "):
            block.append(line)
            continue
        if block:
            out += ["```text", *block, "```"]
            block = []
        out.append(md(line) if line else "")
    if block:
        out += ["```text", *block, "```"]
    return out


def code(value: Any, octal_mode: bool = False) -> str:
    return "`" + toml_value(plain(value), octal_mode).replace("`", "'") + "`"


def default_cell(field: FieldInfo) -> str:
    default = default_of(field)
    if default is PydanticUndefined:
        return "required"
    return "not set" if default is None else code(default, octal(field))


def row(owner: type[Section], name: str, field: FieldInfo) -> str:
    about = cell(description(owner, name))
    if field.examples and plain(field.examples[0]) != plain(default_of(field)):
        about += f" Example: {pipes(code(field.examples[0]))}."
    kind = "file mode (octal)" if octal(field) else type_name(field.annotation)
    return f"| `{name}` | {cell(kind)} | {pipes(default_cell(field))} | {about} |"


def tables(cls: type[Section], path: str, many: bool = False):
    """(heading, section) for a table and every table below it, in the order the example shows them."""
    yield (f"[[{path}]]" if many else f"[{path}]"), cls
    for name, field in cls.model_fields.items():
        section = section_of(field.annotation)
        if section is None or field.exclude:
            continue
        if get_origin(field.annotation) is dict:
            yield from tables(section, f"{path}.{name}.<key>")
        else:
            yield from tables(section, f"{path}.{name}", many=get_origin(field.annotation) is list)


def markdown() -> str:
    """The configuration reference: every table, and every key with its type, default and description."""
    lines = ["# Configuration reference", "",
             "<!-- Written from the schema (configuration/) by `make example-config`: edit the descriptions there. -->",
             "", *paragraphs(docstring(Settings)), "",
             "The shipped example, `config/maintenance.example.toml`, is written from the same descriptions. A table "
             "marked *per box* may also be set for one box in a `[[boxes]]` entry.", ""]
    for name, field in Settings.model_fields.items():
        section = section_of(field.annotation)
        if field.exclude or section is None:
            continue
        for heading, cls in tables(section, name, many=get_origin(field.annotation) is list):
            top = heading.strip("[]") == name
            lines += table_reference(heading, cls, top, per_box=top and name in BOX_SECTIONS)
    lines += ["## `[[boxes]]`", "", *paragraphs(BOXES_DESCRIPTION), "", *TABLE_HEAD,
              "| `name` | string | required | The box's name ([host] name). |",
              f"| a table | table | | One of: {', '.join(f'`{name}`' for name in sorted(BOX_SECTIONS))}. |", ""]
    return "\n".join(lines)


TABLE_HEAD = ["| key | type | default | description |", "| --- | --- | --- | --- |"]


def docstring(cls: type[Section]) -> str:
    return inspect.cleandoc(cls.__dict__.get("__doc__") or "")


def table_reference(heading: str, cls: type[Section], top: bool, per_box: bool) -> list[str]:
    title = f"{'##' if top else '###'} `{heading}`" + (" (per box)" if per_box else "")
    rows = [row(cls, name, field) for name, field in cls.model_fields.items() if not field.exclude]
    return [title, "", *paragraphs(docstring(cls)), "", *TABLE_HEAD, *rows, ""]


# -- writing them


WRITERS = {"example": example, "markdown": markdown}


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] not in WRITERS:
        print(f"usage: python -m configuration.reference {'|'.join(WRITERS)} [PATH]", file=sys.stderr)
        return 2
    text = WRITERS[argv[0]]()
    if len(argv) == 1:
        sys.stdout.write(text)
    else:
        atomic.write_atomically(Path(argv[1]), text, mode=0o644)  # shipped in the checkout: everyone reads it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
