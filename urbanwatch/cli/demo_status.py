"""What `urbanwatch demo` shows: the pages with their logins, then one live status line."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rules.detection import Severity
from urbanwatch.demo import DemoStatus
from urbanwatch.demo_logins import DemoLogins

# severity by name and mark too, not by colour alone
MARKS = ((Severity.RED, "■", "red"), (Severity.ORANGE, "▲", "dark_orange"),
         (Severity.YELLOW, "◆", "yellow"), (Severity.BLUE, "●", "blue"))


def announce_pages(console: Console, api_url: str, logins: DemoLogins) -> None:
    """The dashboard, field page and wall screen, each with the login that opens it (one line
    each, never wrapped, so every address can be copied whole)."""
    lines = (
        f"  dashboard    {api_url}/   log in as {logins.operator} / {logins.operator_password}",
        f"  field page   {api_url}/field   log in as {logins.responder} / "
        f"{logins.responder_password} (team {logins.responder_team})",
        f"  wall screen  {api_url}/wall#key={logins.wall_key}   (read-only key, no login)",
    )
    console.print("[bold]Pages[/bold] (new passwords each run):")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def status_text(status: DemoStatus) -> Text:
    """One line: cut short with an ellipsis rather than wrapped on a narrow terminal."""
    line = Text.assemble(
        (f"{status.readings_per_s:,.0f} readings/s", "bold"),
        f"  stored {status.stored:,}  rejected {status.rejected:,}  open:",
        no_wrap=True, overflow="ellipsis",
    )
    for severity, mark, style in MARKS:
        name = severity.name.lower()
        line.append(f" {mark}{name} {status.open_incidents.get(severity, 0)}", style=style)
    return line


class DemoStatusLine:
    """One line, redrawn in place on a terminal (printed once at the end elsewhere)."""

    def __init__(self, console: Console) -> None:
        self._live = Live(Text("starting…"), console=console, refresh_per_second=2,
                          transient=False, redirect_stdout=False, redirect_stderr=False)
        self._started = False

    def __enter__(self) -> DemoStatusLine:
        return self

    def start(self) -> None:
        """Show it from now on (after the banner, which it would otherwise redraw over)."""
        self._live.start()
        self._started = True

    def show(self, status: DemoStatus) -> None:
        self._live.update(status_text(status))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._started:
            self._live.stop()
            if not self._live.console.is_terminal:  # there the last line ends with no newline
                self._live.console.line()
