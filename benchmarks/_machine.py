"""What the machine did while a benchmark ran, for the figures' context (shared by the
benchmark scripts, which run as `python benchmarks/bench_*.py`)."""

from __future__ import annotations


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of the whole machine so far, from /proc/stat (Linux), or
    (0, 0). Steal is the time a virtual machine's cores were ready to run but the host ran
    something else: on a shared VM it moves throughput by tens of per cent from one run to
    the next, so the figures say how much there was."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def stolen_since(before: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time the host took since `before` (`cpu_ticks()`),
    or None where that is not known."""
    steal, total = (now - then for now, then in zip(cpu_ticks(), before, strict=True))
    return steal / total if total > 0 else None
