"""The ruleset a file builds up, command by command, and its final object list."""

from __future__ import annotations

from dataclasses import dataclass, field

from .grammar_expr import Json


@dataclass
class Table:
    family: str
    name: str
    attrs: dict[str, Json] = field(default_factory=dict)
    objects: list[tuple[str, dict[str, Json]]] = field(default_factory=list)
    sets: list[tuple[str, dict[str, Json]]] = field(default_factory=list)
    flowtables: list[dict[str, Json]] = field(default_factory=list)
    chains: dict[str, dict[str, Json]] = field(default_factory=dict)
    rules: dict[str, list[dict[str, Json]]] = field(default_factory=dict)

    def find_set(self, name: str) -> dict[str, Json] | None:
        for _kind, body in self.sets:
            if body["name"] == name:
                return body
        return None

    def objects_json(self) -> list[Json]:
        out: list[Json] = [{"table": {"family": self.family, "name": self.name, **self.attrs}}]
        out += [{kind: body} for kind, body in self.objects]
        out += [{kind: body} for kind, body in self.sets]
        out += [{"flowtable": body} for body in self.flowtables]
        out += [{"chain": body} for body in self.chains.values()]
        for chain in self.chains:
            out += [{"rule": rule} for rule in self.rules[chain]]
        return out


# A rule's or chain's body id() -> the file and line it was written at.
Places = dict[int, tuple[str, int]]


@dataclass
class Ruleset:
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    places: Places = field(default_factory=dict)

    def table(self, family: str, name: str) -> Table:
        key = (family, name)
        if key not in self.tables:
            self.tables[key] = Table(family, name)
        return self.tables[key]

    def objects(self) -> list[Json]:
        out: list[Json] = []
        for table in self.tables.values():
            out += table.objects_json()
        return out
