"""What every CLI command shares: clean errors instead of tracebacks, loading the assistant, dates, and
stopping on SIGTERM."""

from __future__ import annotations

from datetime import date

import typer


def fail(message: str, code: int = 1) -> None:
    """Print a clean error (never a traceback) and exit non-zero."""
    typer.secho(f"错误：{message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def stop_on_sigterm() -> None:
    """Let SIGTERM (a service manager stopping us) unwind like Ctrl-C, so a build removes its staging
    directory and shuts its embedding workers down instead of dying mid-write."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def parse_day(value: str | None) -> date | None:
    """A YYYY-MM-DD option as a date; a clear error otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"日期“{value}”无效：请写成 YYYY-MM-DD，例如 2021-01-01", code=2)


def load_assistant():  # noqa: ANN201 - keeps the heavy import out of `--help`
    """The Assistant over the configured index, or a clean error saying what to do."""
    from ..config import get_settings
    from ..errors import PolicyQAError
    from ..service import Assistant

    try:
        return Assistant.load(get_settings())
    except PolicyQAError as exc:
        fail(str(exc))
