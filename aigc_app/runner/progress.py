"""Progress of a run: a rich bar on stderr with ETA and the live pass rate, or nothing (quiet, not a terminal)."""

from __future__ import annotations

from typing import Any, Protocol

from aigc_app.results import CaseResult

__all__ = ["NullReporter", "Reporter", "RichReporter"]


class Reporter(Protocol):
    """Progress of a run, as it happens."""

    def start(self, total: int, done: int) -> None: ...
    def case(self, case: CaseResult) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


class NullReporter:
    """Reports nothing."""

    def start(self, total: int, done: int) -> None:
        pass

    def case(self, case: CaseResult) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class RichReporter:
    """A progress bar on stderr with ETA and the live pass rate."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]eval[/]"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("pass {task.fields[rate]}"),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.passed = self.seen = 0
        self.task: Any = None

    def start(self, total: int, done: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("eval", total=total, completed=done, rate="-")

    def case(self, case: CaseResult) -> None:
        self.seen += 1
        self.passed += case.passed
        self.progress.update(self.task, advance=1, rate=f"{self.passed / self.seen:.0%}")

    def note(self, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}[/]")

    def stop(self) -> None:
        self.progress.stop()
