"""The base of every model read from a user's file (topology, evidence)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a topology must not silently drop a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)
