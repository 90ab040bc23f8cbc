"""The reference's tables, made from the code: they cannot drift from it.

    .venv/bin/python scripts/docs.py           rewrite the generated tables in docs/
    .venv/bin/python scripts/docs.py --check   exit 1, naming the file, if one is stale

The options of `pytest scenarios/` are read from the plugin as pytest would register them
(`harness.plugin.pytest_addoption`: the thresholds, the load settings, the backends...); the
topology's fields from its model (`harness.config.Topology`, every field's description is its
docstring). Each table sits in its file between `<!-- generated: NAME -->` and
`<!-- end: NAME -->`; the prose around it is written by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def options_table() -> str:
    """Every option the plugin gives `pytest scenarios/`, with its default and help."""
    from _pytest.config.argparsing import Parser

    from harness import plugin

    parser = Parser(_ispytest=True)  # what pytest itself builds, for its own plugins
    plugin.pytest_addoption(parser)
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for option in parser.getgroup("harness").options:
        attrs = option.attrs()
        names = ", ".join(f"`{n}`" for n in option.names())
        default = attrs.get("default")
        shown = "" if default in (None, False) else f"`{default}`"
        meaning = re.sub(r"\s*\(default [^()]*\)$", "", str(attrs.get("help", ""))).replace("|", "\\|")
        choices = attrs.get("choices")
        if choices and len(choices) < 8:
            meaning += f" (one of {', '.join(map(str, choices))})"
        rows.append(f"| {names} | {shown} | {meaning} |")
    return "\n".join(rows)


def _models(annotation: object) -> list[type[BaseModel]]:
    found = [m for a in typing.get_args(annotation) for m in _models(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    return found


def _type(annotation: object) -> str:
    text = re.sub(r"\bharness\.(\w+\.)+", "", str(annotation)).replace("typing.", "").replace(
        "pathlib.", "")
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    text = re.sub(r"Annotated\[([^,\]]+(?:\[[^\]]*\])?),[^\]]*\]", r"\1", text)
    return text.replace("NoneType", "None").replace("|", "or")


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value == [] or value == {} or isinstance(value, BaseModel):
        return ""
    if isinstance(value, list):
        return f"`{', '.join(str(getattr(v, 'value', v)) for v in value)}`"
    return f"`{value}`"


def _fields(model: type[BaseModel], path: str, first: dict[type[BaseModel], str]) -> Iterator[str]:
    """A row per field, by its path; a model met again (a `Source`, a `Call`) is expanded
    only where it is met first, and its later fields point there."""
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        is_list = typing.get_origin(field.annotation) is list or "list[" in str(field.annotation)
        described = (field.description or "").replace("\n", " ").replace("|", "\\|")
        inner = [m for m in _models(field.annotation) if m not in first]
        again = [first[m] for m in _models(field.annotation) if m in first]
        if again and not inner:
            described += f" (its fields as under `{again[0]}`)"
        yield f"| `{where}` | {_type(field.annotation)} | {_default(field)} | {described} |"
        for m in inner:
            first[m] = where + ("[]" if is_list else "")
            yield from _fields(m, first[m], first)


def fields_table() -> str:
    """Every field of a topology file, by its path, with its type, default and description."""
    from harness.config import Topology

    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    return "\n".join([*rows, *_fields(Topology, "", {Topology: ""})])


def field_names() -> dict[str, set[str]]:
    """Every model of a topology and its fields' names (what an example that shows every
    field must name)."""
    from harness.config import Topology

    names: dict[str, set[str]] = {}
    todo = [Topology]
    while todo:
        model = todo.pop()
        if model.__name__ in names:
            continue
        names[model.__name__] = set(model.model_fields)
        todo += [m for f in model.model_fields.values() for m in _models(f.annotation)]
    return names


TABLES: dict[str, tuple[Path, Callable[[], str]]] = {
    "options": (ROOT / "docs" / "running.md", options_table),
    "fields": (ROOT / "docs" / "topology.md", fields_table),
}


def rewritten(text: str, name: str, table: str) -> str:
    begin, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    if begin not in text or end not in text:
        raise SystemExit(f"scripts/docs.py: no {begin} ... {end} region to fill")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated table is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, (path, make) in TABLES.items():
        text = path.read_text()
        fresh = rewritten(text, name, make())
        if fresh != text:
            stale.append(path)
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        print(f"scripts/docs.py: stale tables in {', '.join(str(p.relative_to(ROOT)) for p in stale)}: "
              "run `.venv/bin/python scripts/docs.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
