"""The [[retention]] rules: the guide's daily cleanup (`find DIR -name PATTERN -mtime +DAYS -delete`), limited to
what each rule owns, and refused at load where no rule may delete.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from configuration.section import AccountName, Section

# Where no retention rule may delete, whatever its pattern and owners: the system's own trees and everything
# below them (programs, libraries, configuration, package and database state, root's home, the kernel's and
# the running services' files) ...
SYSTEM_TREES = tuple(Path(tree) for tree in ("/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                             "/libx32", "/var/lib", "/root", "/proc", "/sys", "/dev", "/run"))
# ... and directories that hold other directories, not clutter: a rule names the one below that it cleans.
WHOLE_TREES = tuple(Path(tree) for tree in ("/", "/home", "/var"))


class RetentionRule(Section):
    """The daily \"Log Rotation and Cleanup\", one rule per directory: the guide's `find DIR -name PATTERN -mtime
    +MAX_AGE_DAYS -delete`, limited to what the rule owns: files directly in DIR (`recursive = true` to go down),
    owned by [services] user (`owners` to name others), on DIR's own filesystem, never through a link. Each rule
    has a name of its own and an absolute DIR, never / or a system tree (/etc, /usr, /boot, /bin, /sbin, /lib*,
    /var/lib, /root, /proc, /sys, /dev, /run, or a whole /home or /var).

    The guide's \"Clean old backups (keep 30 days)\" would delete the backups themselves: they are kept by their
    kind ([backups.kinds.*] keep_days), and a rule that would delete one before its kind's keep_days is refused
    at load. The rule for the backups' directory keeps the rest of it: the emergency's diagnostics bundles."""

    per_box = True

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64, examples=["temp-files"],
                      description="The rule's own name: the check's instance, and what the deletion acts on.")
    dir: Path = Field(examples=["/tmp"], description="The directory cleaned, absolute.")
    pattern: str = Field(min_length=1, examples=["trading-*"],
                         description="A file name pattern (find -name; no '/').")
    max_age_days: int = Field(ge=0, le=3660, examples=[1],
                              description="A file whose age in whole days (since its last change) is more "
                                          "than this is expired, as find -mtime +N counts.")
    recursive: bool = Field(default=False, description="true: files in the directories below too.")
    owners: list[AccountName] = Field(default_factory=list, examples=[["trading", "www-data"]],
                                      description="Whose files the rule deletes; empty: [services] user's only.")
    allow_root_owned: bool = Field(default=False,
                                   description="root's files are the system's: a rule deletes them only when this "
                                               "is true.")

    @field_validator("dir")
    @classmethod
    def _not_a_system_tree(cls, value: Path) -> Path:
        tree = next((tree for tree in SYSTEM_TREES if value.is_relative_to(tree)), None)
        if tree is not None:
            raise ValueError(f"{str(value)!r} is in {tree}, a system tree: a retention rule never deletes there")
        if value in WHOLE_TREES:
            raise ValueError(f"{str(value)!r} holds whole trees, not clutter: name the directory below it to clean")
        return value

    @model_validator(mode="after")
    def _pattern_is_a_name(self) -> RetentionRule:
        if "/" in self.pattern:
            raise ValueError(f"pattern {self.pattern!r} must be a file name pattern, without '/'")
        return self

    @model_validator(mode="after")
    def _root_only_when_said(self) -> RetentionRule:
        if not self.allow_root_owned and any(owner in ("root", "0") for owner in self.owners):
            raise ValueError(f"owners {self.owners} include root: root's files are the system's; if this rule "
                             f"must delete them, say so with allow_root_owned = true")
        return self
