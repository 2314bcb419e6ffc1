"""The rule file the engine runs, as the API reads and edits it: off the event loop, through
`rules.language.rulefile.RuleFile`, which validates a whole new set before it replaces the file.

A file that cannot be read is refused like an invalid one (`RuleFileError`, a 409), and a
process without a rule file serves the shipped pack read-only (503 on a write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from fastapi import HTTPException

from rules.errors import RuleFileError
from rules.language.model import Rule
from rules.language.rulefile import RuleFile

Edit = Callable[[list[Rule]], list[Rule]]


class RuleStore:
    def __init__(self, path: Path | None) -> None:
        self._file = RuleFile(path)

    async def read(self) -> list[Rule]:
        return await asyncio.to_thread(self._unless_unreadable, self._file.read)

    async def change(self, edit: Edit) -> list[Rule]:
        """Apply `edit` and write the result; raises `RuleRejected` for an invalid result."""
        if self._file.path is None:
            raise HTTPException(503, "rules are read-only here: no rule file is configured")
        return await asyncio.to_thread(self._unless_unreadable, lambda: self._file.change(edit))

    @staticmethod
    def _unless_unreadable(action: Callable[[], list[Rule]]) -> list[Rule]:
        try:
            return action()
        except OSError as exc:
            raise RuleFileError(None, str(exc)) from exc
