"""Boxes from an Ansible inventory, the file a fleet's operator already keeps.

`[inventory] ansible = PATH` (and `group`, default "all") adds one box per host of that group, as a
`[[boxes]]` entry would: `ssh://ansible_user@ansible_host:ansible_port`, the key of
`ansible_ssh_private_key_file` and the interpreter of `ansible_python_interpreter`. Read: the INI
format, and the JSON that `ansible-inventory -i ANY --list` prints (for YAML or dynamic inventories:
`ansible-inventory -i inventory.yml --list > inventory.json`). Group `vars` apply to their hosts,
`children` groups are followed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from pydantic import Field

from configuration.section import COMMENTED, RelativePath, Section


class Inventory(Section):
    """Boxes from an Ansible inventory, added to the [[boxes]] entries: one per host of `group`, reached over SSH as
    its ansible_user at its ansible_host and ansible_port, with its ansible_ssh_private_key_file and
    ansible_python_interpreter."""

    ansible: RelativePath | None = Field(
        default=None, examples=["/etc/ansible/hosts"], json_schema_extra=COMMENTED,
        description="The inventory: the INI format, or the JSON that `ansible-inventory -i FILE --list` prints "
                    "(for YAML or dynamic inventories). A relative path is relative to this file.")
    group: str = Field(default="all", examples=["trading"], json_schema_extra=COMMENTED,
                       description="The group whose hosts are the boxes; its children groups' hosts too.")


class InventoryError(Exception):
    pass


def boxes_from(path: Path, group: str) -> list[dict]:
    """`[[boxes]]` entries (name and host table) for every host of `group`."""
    try:
        text = path.read_text()
    except OSError as error:
        raise InventoryError(f"cannot read the Ansible inventory {path}: {error.strerror or error}") from None
    hosts, groups = _from_json(text) if text.lstrip().startswith("{") else _from_ini(text, path)
    if group not in groups and group != "all":
        raise InventoryError(f"{path} has no group {group!r}; groups: {', '.join(sorted(groups)) or 'none'}")
    return [_box(name, variables) for name, variables in hosts.items() if name in _members(group, groups, hosts)]


def _members(group: str, groups: dict, hosts: dict, seen: frozenset = frozenset()) -> set[str]:
    if group == "all" and "all" not in groups:
        return set(hosts)
    found = set(groups.get(group, {}).get("hosts", []))
    for child in groups.get(group, {}).get("children", []):
        if child not in seen:
            found |= _members(child, groups, hosts, seen | {group})
    return found


def _box(name: str, variables: dict) -> dict:
    address = variables.get("ansible_host", name)
    user = variables.get("ansible_user") or variables.get("ansible_ssh_user")
    port = variables.get("ansible_port") or variables.get("ansible_ssh_port")
    host = {"backend": f"ssh://{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"}
    if variables.get("ansible_ssh_private_key_file"):
        host["ssh_identity_file"] = str(Path(variables["ansible_ssh_private_key_file"]).expanduser())
    if variables.get("ansible_python_interpreter"):
        host["python"] = variables["ansible_python_interpreter"]
    return {"name": name, "host": host}


def _from_ini(text: str, path: Path) -> tuple[dict, dict]:
    hosts: dict[str, dict] = {}
    groups: dict[str, dict] = {}
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InventoryError(f"{path}:{number}: a section header must end with ']': {raw.strip()}")
            section, _, kind = line[1:-1].partition(":")
            kind = kind or "hosts"
            groups.setdefault(section, {"hosts": [], "children": [], "vars": {}})
            continue
        words = shlex.split(line)
        group = groups.setdefault(section, {"hosts": [], "children": [], "vars": {}})
        if kind == "vars":
            key, _, value = line.partition("=")
            group["vars"][key.strip()] = value.strip()
        elif kind == "children":
            group["children"].append(words[0])
        else:
            name, pairs = words[0], words[1:]
            variables = hosts.setdefault(name, {})
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep:
                    raise InventoryError(f"{path}:{number}: {pair!r} is not key=value")
                variables[key] = value
            group["hosts"].append(name)
    for name, variables in hosts.items():  # a host's own variables win over its groups'
        inherited = {}
        for group in groups.values():
            if name in group["hosts"]:
                inherited.update(group["vars"])
        hosts[name] = {**inherited, **variables}
    return hosts, groups


def _from_json(text: str) -> tuple[dict, dict]:
    data = json.loads(text)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    groups = {name: {"hosts": value.get("hosts", []), "children": value.get("children", []),
                     "vars": value.get("vars", {})}
              for name, value in data.items() if name != "_meta" and isinstance(value, dict)}
    names = set(hostvars) | {host for group in groups.values() for host in group["hosts"]}
    hosts = {}
    for name in sorted(names):
        inherited = {}
        for group in groups.values():
            if name in group["hosts"]:
                inherited.update(group["vars"])
        hosts[name] = {**inherited, **hostvars.get(name, {})}
    return hosts, groups
