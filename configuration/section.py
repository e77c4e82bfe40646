"""The base of every configuration section: unknown keys are errors, values are read-only."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")  # the value is never echoed
    return value


# A URL that carries a secret (a token in its query or path): held as a secret from the moment it is
# read, so no repr, traceback or --showlocals prints it, cut or whole.
SecretUrl = Annotated[SecretStr, AfterValidator(_http_url)]
