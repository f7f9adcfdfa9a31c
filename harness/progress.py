"""A progress bar per epoch on a terminal (tqdm), plain lines when stderr is not a TTY."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, desc: str, total: int, enabled: bool = True) -> None:
        self.desc, self.total, self.enabled = desc, total, enabled
        self.tty = sys.stderr.isatty()
        self.done = 0
        self.fields: dict[str, float] = {}
        self._last_line = time.monotonic()
        self._bar = None
        if enabled and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="img", leave=True, dynamic_ncols=True)

    def update(self, n: int, **fields: float) -> None:
        if not self.enabled:
            return
        self.done += n
        self.fields = fields
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in fields.items()}, refresh=False)
        elif time.monotonic() - self._last_line > 30:  # plain lines: at most one every 30 s
            self._last_line = time.monotonic()
            print(f"{self.desc}: {self.done}/{self.total} {self._fmt()}", file=sys.stderr, flush=True)

    def _fmt(self) -> str:
        names = {"loss": "loss", "acc": "train top-1", "ips": "img/s"}
        return " ".join(f"{names.get(k, k)} {v:.4g}" for k, v in self.fields.items())

    def close(self, summary: str = "") -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        print(f"{self.desc}: {self._fmt()} | {summary}", file=sys.stderr, flush=True)
