"""The progress bar, as ``keras.utils.Progbar``.

Its line is drawn with the pieces ``ProgbarLogger`` (callbacks) draws fit's, evaluate's and
predict's bars with: ``format_step_time`` (``12ms/step``), ``format_eta`` and ``bar_string``.
"""
import math
import sys
import time

import numpy as np

from ..callbacks import bar_string, format_eta, format_step_time
from ..io_utils import is_interactive_logging_enabled, print_msg

__all__ = ["Progbar", "format_step_time", "format_eta", "bar_string", "format_value"]


def format_value(v, signed=True):
    """A metric value: 4 decimals above 1e-3 (in magnitude when ``signed``; Keras's one-line
    ``verbose=2`` form compares the value itself), else 4-digit scientific."""
    if np.ndim(v):
        v = np.mean(v)
    v = float(v)
    big = abs(v) > 1e-3 if signed else v > 1e-3
    return f"{v:.4f}" if big else f"{v:.4e}"


class Progbar:
    """A progress bar over ``target`` steps (None: unknown).

    ``update(current, values)`` draws the bar at step ``current``; ``values`` is a list of
    ``(name, value)``. A name in ``stateful_metrics`` is shown as given; any other is shown as
    its running mean weighted by the steps since the last update,
    ``Σ vᵢ·(currentᵢ − currentᵢ₋₁) / Σ (currentᵢ − currentᵢ₋₁)``. ``add(n, values)`` advances
    by ``n`` steps. ``verbose=1`` redraws one line (at most every ``interval`` seconds, and at
    the end); ``verbose=2`` prints one line at the end; ``verbose=0`` prints nothing.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None,
                 stateless_metrics=None, unit_name="step", stream=None):
        if target is not None and (isinstance(target, bool) or not isinstance(target, (int, np.integer))
                                   or target < 0):
            raise ValueError(f"Progbar: `target` must be a non-negative integer or None, received {target!r}")
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ValueError(f"Progbar: `width` must be a positive integer, received {width!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"Progbar: `verbose` must be 0, 1 or 2, received {verbose!r}")
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: only one of `stateful_metrics` or `stateless_metrics` can be "
                             "provided")
        self.target, self.width, self.verbose = target, int(width), verbose
        self.interval, self.unit_name = interval, unit_name
        self.stream = stream
        if stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics = set(stateful_metrics or ())
            self.stateless_metrics = None
        out = self._out
        self._dynamic_display = hasattr(out, "isatty") and out.isatty() or "ipykernel" in sys.modules \
            or "posix" in sys.modules
        self._seen_so_far = 0
        self._values, self._values_order = {}, []
        self._start = time.time()
        self._last_update = 0
        self._time_after_first_step = None
        self._prev_total_width = 0

    @property
    def _out(self):
        return self.stream or sys.stdout

    def _is_stateless(self, k):
        if self.stateful_metrics is not None:
            return k not in self.stateful_metrics
        return k in self.stateless_metrics

    def _step_time(self, current, now):
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per

    def _metrics(self, signed=True):
        info = ""
        for k in self._values_order:
            total, count = self._values[k]
            if np.ndim(total):
                total = np.mean(total)
            info += f" - {k}: {format_value(total / max(1, count), signed)}"
        return info

    def update(self, current, values=None, finalize=None):
        """Move the bar to step ``current`` with the latest ``values`` ``[(name, value), …]``;
        ``finalize`` (default: ``current >= target``) ends the line."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for k, v in values or []:
            if k not in self._values_order:
                self._values_order.append(k)
            if self._is_stateless(k) and not finalize:
                base = max(current - self._seen_so_far, 1)
                if k in self._values:
                    self._values[k][0] += v * base
                    self._values[k][1] += base
                else:
                    self._values[k] = [v * base, base]
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current
        now = time.time()
        per = self._step_time(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            if not finalize and not is_interactive_logging_enabled():
                return                  # logged once, at the end
            message = ("\b" * self._prev_total_width + "\r") if self._dynamic_display else "\n"
            if self.target:
                bar, bar_width = bar_string(current, self.target, self.width, color=True)
            else:
                bar = "%7d/Unknown" % current
                bar_width = len(bar)
            if self.target and not finalize:
                info = f" \x1b[1m{format_eta(per * (self.target - current))}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            info += " " + format_step_time(per, self.unit_name) + self._metrics()
            total_width = bar_width + len(info) - 8
            message += bar + info
            if self._prev_total_width > total_width:
                message += " " * (self._prev_total_width - total_width)
            if finalize:
                message += "\n"
            print_msg(message, line_break=False, stream=self.stream)
            self._prev_total_width = total_width
        elif self.verbose == 2 and finalize and self.target:
            count = f"%{int(math.log10(self.target)) + 1}d/%d" % (current, self.target)
            print_msg(f"{count} - {now - self._start:.0f}s - "
                      f"{format_step_time(per, self.unit_name)}{self._metrics(signed=False)}",
                      stream=self.stream)
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps: ``update(seen + n, values)``."""
        self.update(self._seen_so_far + n, values)
