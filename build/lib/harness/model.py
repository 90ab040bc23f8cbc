"""The base of every model read from a user's file (topology, evidence)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a topology must not silently drop a setting. A
    field's docstring is its description, in the JSON Schema and in the docs' field table."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
