"""The schema is the configuration's one documentation: every field carries its description and an example, the
shipped example configuration and docs/configuration.md are what configuration/reference.py writes from it, and
which tables a box may set is a flag on the section.
"""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import get_origin

import pytest
from pydantic import Field

from configuration import ConfigError, load, machine, reference
from configuration.schema import BOX_EXAMPLE, BOX_SECTIONS, EXAMPLE, Settings
from configuration.section import COMMENTED, TABLES, FileMode, Section, section_of

REGENERATE = "run `make example-config` and commit what it writes"


def sections(cls: type[Section] = Settings, found: dict | None = None) -> dict[type[Section], None]:
    """Every section class the file can hold, the root's first."""
    found = {} if found is None else found
    found[cls] = None
    for field in cls.model_fields.values():
        inner = section_of(field.annotation)
        if inner is not None and inner not in found:
            sections(inner, found)
    return found


def fields():
    return [(cls, name, field) for cls in sections() for name, field in cls.model_fields.items() if not field.exclude]


def test_the_shipped_example_is_what_the_schema_writes():
    assert EXAMPLE.read_text() == reference.example(), f"{EXAMPLE} differs from the schema: {REGENERATE}"


def test_the_reference_page_is_what_the_schema_writes():
    page = reference.REFERENCE
    assert page.read_text() == reference.markdown(), f"{page} differs from the schema: {REGENERATE}"


def test_every_section_says_what_it_is():
    silent = [f"{cls.__module__}.{cls.__name__}" for cls in sections() if not reference.docstring(cls)]
    assert not silent, f"sections without a docstring (say what the table is): {silent}"


def test_every_field_has_a_description_and_an_example():
    undescribed = [f"{cls.__name__}.{name}" for cls, name, _ in fields() if not reference.description(cls, name)]
    assert not undescribed, f"fields without Field(description=...): {undescribed}"
    unshowable = []
    for cls, name, field in fields():
        try:
            reference.example_of(field)  # an example, or a default the example can write
        except reference.Unshowable:
            unshowable.append(f"{cls.__name__}.{name}")
    assert not unshowable, f"fields without examples=[...] nor a default: {unshowable}"


def headed_blocks(page: str) -> dict[str, str]:
    """The reference page's tables by heading (`[host]`, `[[retention]]`, ...)."""
    chunks = re.split(r"^#{2,3} ", page, flags=re.M)[1:]
    return {chunk.split("`")[1]: chunk for chunk in chunks}


def test_the_reference_lists_every_key_of_every_table():
    blocks = headed_blocks(reference.markdown())
    for name, field in Settings.model_fields.items():
        section = section_of(field.annotation)
        if field.exclude or section is None:
            continue
        for heading, cls in reference.tables(section, name, many=get_origin(field.annotation) is list):
            missing = [key for key, inner in cls.model_fields.items()
                       if not inner.exclude and f"| `{key}` |" not in blocks[heading]]
            assert not missing, f"{heading}: {missing} not in docs/configuration.md"


def example_tables():
    """(section, table) for every example that is a whole table: a channel, a rule, a waiver, a check's policy."""
    for _, _, field in fields():
        section = section_of(field.annotation)
        if section is None or not field.examples:
            continue
        example = field.examples[0]
        if get_origin(field.annotation) is dict:
            yield from ((section, table) for table in example.values())
        else:
            yield from ((section, table) for table in (example if isinstance(example, list) else [example]))


def test_the_example_tables_an_operator_uncomments_are_valid():
    checked = [section.model_validate(table) for section, table in example_tables()]
    assert len(checked) >= 8  # three rules, a waiver, a silence, a check's policy, the channels, an endpoint
    Settings.model_validate({key: value for key, value in BOX_EXAMPLE.items() if key != "name"})


def test_a_box_may_set_the_tables_whose_section_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "account_uid", lambda name: 1000)
    assert {"host", "services", "retention", "database", "hardware"} <= BOX_SECTIONS
    assert not {"alerts", "reports", "policy", "remediation", "schedule", "emergency"} & BOX_SECTIONS
    assert all(section_of(Settings.model_fields[name].annotation).per_box for name in BOX_SECTIONS)
    path = tmp_path / "fleet.toml"
    path.write_text(f'[policy]\nstate_dir = "{tmp_path}"\n[[boxes]]\nname = "a"\n[boxes.hardware]\ndisks = ["/dev/nvme0"]\n')
    assert load(path).box("a").hardware.disks == ["/dev/nvme0"]
    path.write_text(f'[policy]\nstate_dir = "{tmp_path}"\n[[boxes]]\nname = "a"\n[boxes.policy]\nflap_window = 8\n')
    with pytest.raises(ConfigError, match="policy cannot differ per box; a box may set: api, application"):
        load(path)


class Inner(Section):
    """An inner table."""

    level: int = Field(examples=[1], description="A level.")


class Toy(Section):
    """A toy table."""

    plain: str = Field(default="a", description="A plain key.")
    shown: str = Field(default="a", examples=["b"], description="Shown with its example.")
    hidden: Path | None = Field(default=None, examples=["/x"], json_schema_extra=COMMENTED, description="Hidden.")
    mode: FileMode = Field(default=0o640, description="A file mode.")
    low: Inner = Field(default=Inner(level=1), description="The low level.")
    high: Inner = Field(default=Inner(level=9), description="The high level.")
    rules: list[Inner] = Field(default_factory=list, examples=[[{"level": 2}, {"level": 3}]], json_schema_extra=TABLES,
                               description="Rules.")


def test_the_writer_shows_examples_defaults_tables_and_keys_commented_out():
    writer = reference.ExampleWriter()
    writer.table(Toy, Toy(), ["toy"], False, reference.docstring(Toy))
    text = "\n".join(writer.lines)
    assert tomllib.loads(text) == {"toy": {"plain": "a", "shown": "b", "mode": 0o640, "low": {"level": 1},
                                           "high": {"level": 9}, "rules": [{"level": 2}, {"level": 3}]}}
    assert '# hidden = "/x"' in text and "mode = 0o640" in text and "[[toy.rules]]" in text
    assert text.count("# A level.") == 1, "a class's keys are described the first time it is shown"
    assert "# A toy table.\n[toy]\n# A plain key.\nplain = " in text


def test_a_field_the_example_cannot_show_is_named():
    class Bare(Section):
        """Bare."""

        value: int | None = None

    with pytest.raises(reference.Unshowable):
        reference.example_of(Bare.model_fields["value"])


@pytest.mark.parametrize("kind, check", [("example", tomllib.loads), ("markdown", str)])
def test_the_command_writes_the_file_readable_by_everyone(tmp_path, kind, check):
    target = tmp_path / f"written.{kind}"
    assert reference.main([kind, str(target)]) == 0
    check(target.read_text())
    assert target.read_text() == reference.WRITERS[kind]()
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_the_command_says_how_it_is_used(capsys):
    assert reference.main(["yaml"]) == 2
    assert "usage: python -m configuration.reference example|markdown [PATH]" in capsys.readouterr().err
