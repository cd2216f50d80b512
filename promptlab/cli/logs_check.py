"""`promptlab logs check`: find malformed and torn lines in the daily log files."""

from __future__ import annotations

from pathlib import Path

import click

from promptlab.cli._common import Output, get_settings, output_options, project_options
from promptlab.errors import UsageError


@click.command(name="check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False), metavar="[FILE]...")
@click.option("since", "--since", metavar="WHEN", help="Only files from this date (2026-11-01, 7d).")
@click.option("until", "--until", metavar="WHEN", help="Only files up to this date.")
@project_options
@output_options
def logs_check(files: tuple[str, ...], since: str | None, until: str | None, out: Output) -> None:
    """Check log files: entries per file and every unreadable line, with its line number.

    Exits 1 when any line is malformed (not JSON, NaN or Infinity, a field of the wrong
    type or out of range, a newer schema version) or torn. Every reader (logs, search,
    costs, compare, the index) skips exactly these lines and keeps every good line around
    them; an entry without an id is read with the id <file stem>:<line>.

    \b
    Examples:
      promptlab logs check
      promptlab logs check ~/llm-logs/2026-11-26.jsonl --json
    """
    from promptlab.logs.reader import check_files

    for name in files:
        _check_regular(name)
    log_dir = get_settings().log_dir
    reports = check_files(log_dir, files=files or None, since=since, until=until)
    if not reports:
        where = "those files" if files else str(log_dir)
        click.echo(f"No log files in {where}.", err=True)
        return
    rows = [{
        "file": str(r.path) if files else r.path.name,
        "entries": r.entries,
        "malformed": sum(1 for p in r.problems if not p.torn),
        "torn": sum(1 for p in r.problems if p.torn),
        "status": "ok" if r.ok else "PROBLEMS",
    } for r in reports]
    data = [{
        "file": str(r.path),
        "entries": r.entries,
        "bytes": r.size,
        "ok": r.ok,
        "problems": [{"line": p.line, "reason": p.reason, "torn": p.torn} for p in r.problems],
    } for r in reports]
    out.table(rows, ["file", "entries", "malformed", "torn", "status"], json_rows=data)
    bad = [p for r in reports for p in r.problems]
    if not out.structured and not out.csv:
        for problem in bad:
            click.echo(f"{problem.path}:{problem.line}: {problem.reason}")
        total = sum(r.entries for r in reports)
        summary = (f"{len(reports)} file(s), {total} entries, "
                   f"{len(bad)} unreadable line(s)")
        click.echo(summary if bad else f"{summary}: all good", err=True)
    if bad:
        raise SystemExit(1)


def _check_regular(name: str) -> None:
    """A FILE argument must be a regular file: a FIFO would block the check and a device
    (/dev/null, /dev/zero) is no log."""
    import stat

    try:
        mode = Path(name).stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"log file {name} not found") from None
    except OSError as exc:
        raise UsageError(f"log file {name}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a named pipe" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a file")
    raise UsageError(f"log file {name} is not a regular file ({kind}); give the .jsonl "
                     "files of the log folder, such as 2026-11-26.jsonl")
