"""Errors a user can act on.

Anything raised as :class:`MusegenError` is printed by the CLI as one line (``musegen: ...``)
with exit code 2 and no traceback (unless ``--debug``).
"""

from __future__ import annotations

from pathlib import Path


class MusegenError(Exception):
    """An error caused by input or settings the user can fix."""


class InputError(MusegenError):
    """A file or reference that cannot be read: says which one and why."""

    def __init__(self, source: str | Path, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class Interrupted(KeyboardInterrupt):
    """Work stopped by the user (Ctrl-C) after saving what it had: the message says where
    and how to go on. The CLI prints it as one line and exits 130."""

    @classmethod
    def after_step(cls, step: int, saved: str | Path) -> Interrupted:
        """A run stopped after ``step`` with its checkpoint in ``saved``: ``--resume`` goes on."""
        return cls(
            f"stopped after step {step:,}, saved in {saved}: "
            "the same command with --resume goes on from there"
        )
