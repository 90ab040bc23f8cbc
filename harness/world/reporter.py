"""Where a world's steps, figures and evidence go for a reader: Allure's, in the pytest
adapter (`harness.plugin.AllureReporter`); nothing, by default (the CLI's soak and capacity
runs write report files of their own)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Literal, Protocol

AttachmentKind = Literal["text", "json"]


class Reporter(Protocol):
    """Steps, parameters and attachments, as Allure has them."""

    def step(self, title: str) -> AbstractContextManager[object]: ...

    def parameter(self, name: str, value: object) -> None: ...

    def attach(self, name: str, text: str, kind: AttachmentKind = "text") -> None: ...

    def attach_file(self, name: str, path: Path) -> None:
        """A file, its type told by its name's suffix."""


class Unreported:
    """A reporter that keeps nothing."""

    def step(self, title: str) -> AbstractContextManager[object]:
        return nullcontext()

    def parameter(self, name: str, value: object) -> None:
        pass

    def attach(self, name: str, text: str, kind: AttachmentKind = "text") -> None:
        pass

    def attach_file(self, name: str, path: Path) -> None:
        pass
