"""The progress bar of a sweep: done / failed / remaining, and an ETA (rich, on stderr).

On a terminal a live bar; otherwise nothing until the closing line the caller prints.
Runs already done before this sweep started count as done but not in the ETA.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

__all__ = ["SweepProgress"]


class SweepProgress:
    """A context manager: ``with SweepProgress(total, done) as bar: bar.advance(ok)``."""

    def __init__(self, total: int, done: int, console: Console | None = None) -> None:
        self.total, self.done, self.failed = total, done, 0
        console = console or Console(stderr=True)
        self._bar = Progress(
            TextColumn("sweep"),
            BarColumn(),
            TextColumn(
                "{task.fields[done]} done, {task.fields[failed]} failed, "
                "{task.fields[remaining]} remaining"
            ),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> SweepProgress:
        self._bar.__enter__()
        # The ETA counts only this sweep's runs: the bar starts at the runs left.
        f = self._fields()
        self._task = self._bar.add_task(
            "sweep",
            total=self.total - self.done,
            done=f["done"],
            failed=f["failed"],
            remaining=f["remaining"],
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.__exit__(kind, exc, tb)

    def _fields(self) -> dict[str, int]:
        left = self.total - self.done - self.failed
        return {"done": self.done, "failed": self.failed, "remaining": left}

    def advance(self, ok: bool) -> None:
        """One more run finished (``ok``) or failed."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self._task is not None:
            f = self._fields()
            self._bar.update(
                self._task, advance=1, done=f["done"], failed=f["failed"], remaining=f["remaining"]
            )
