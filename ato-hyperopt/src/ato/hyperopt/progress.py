"""Progress a person can follow: a bar per generation and a one-line summary after it,
on a terminal only (quiet when stderr is not a TTY, unless asked)."""

from __future__ import annotations

import sys
import time


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """``enabled=None``: a live bar and summaries on a terminal, nothing otherwise;
    ``True``: the same on a terminal, summary lines only (no bar) in a log;
    ``False``: silent."""

    def __init__(self, enabled: bool | None = None, stream=None, label: str = "search"):
        self.stream = stream or sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = tty if enabled is None else bool(enabled)
        self.live = self.enabled and tty
        self.label = label
        self._total = 0
        self._done = 0
        self._start = 0.0
        self._title = ""

    def start(self, title: str, total: int) -> None:
        self._title, self._total, self._done, self._start = title, total, 0, time.monotonic()
        self._draw()

    def step(self, n: int = 1) -> None:
        self._done += n
        if self.live and (self._done == self._total or self._done % max(1, self._total // 50) == 0):
            self._draw()

    def _draw(self) -> None:
        if not self.live or not self._total:
            return
        width = 24
        filled = int(width * self._done / self._total)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label}: {self._title} [{bar}] {self._done}/{self._total}")
        self.stream.flush()

    def summary(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self._start
        line = f"{self.label}: {text} ({elapsed:.1f}s)"
        self.stream.write(f"\r{line.ljust(80)}\n" if self.live else line + "\n")
        self.stream.flush()

    format = staticmethod(_fmt)

    @staticmethod
    def describe(config, names) -> str:
        parts = []
        for name in names:
            value = config
            for part in str(name).split("."):
                value = value.get(part) if hasattr(value, "get") else None
            parts.append(f"{name}={_fmt(value)}")
        return ", ".join(parts)
