"""The base of every configuration section: unknown keys are errors, values are read-only."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
