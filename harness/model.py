"""The base of every model read from a user's file (topology, evidence)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, PrivateAttr


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a topology must not silently drop a setting. A
    field's docstring is its description, in the JSON Schema and in the docs' field table.

    Each model knows where it sits in its file (`field`), stamped when the topology is
    validated (`stamp`), so whatever reads it (an evidence source, a toggle) names its field in
    every error without being told it."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    _field: str = PrivateAttr("")

    @property
    def field(self) -> str:
        """Its place in the file, e.g. `evidence.pools.connections` or `evidence.admin.undo[0]`;
        empty for a model made in code."""
        return self._field


def stamp(model: Strict, path: str = "") -> None:
    """Tell `model` and every model inside it (in fields, lists and maps) where it sits."""
    model._field = path
    for name, _ in type(model).model_fields.items():
        here = f"{path}.{name}" if path else name
        for where, item in _inside(getattr(model, name), here):
            stamp(item, where)


def _inside(value: object, here: str) -> Iterator[tuple[str, Strict]]:
    if isinstance(value, Strict):
        yield here, value
    elif isinstance(value, list):
        yield from ((f"{here}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Strict))
    elif isinstance(value, dict):
        yield from ((f"{here}.{k}", v) for k, v in value.items() if isinstance(v, Strict))


def within(model: Strict, kind: type[Strict]) -> Iterator[Strict]:
    """Every model of `kind` inside `model`, depth first, in field order."""
    for name in type(model).model_fields:
        for _, item in _inside(getattr(model, name), name):
            if isinstance(item, kind):
                yield item
            yield from within(item, kind)
