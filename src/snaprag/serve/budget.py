"""A lane's latency budget: under sustained overload, refuse the arrivals that would take
longer than ``factor`` times the lane's unloaded latency.

A count of requests cannot say how long an admitted one will take (16 searches sharing
micro-batches on 2 cores take ten times as long as one), so the budget estimates it with
Little's law: the work in the lane, this request's included, over the lane's measured
throughput. Work is counted in units (a batch of 50 queries is 50 units, so it neither
hides in a count of 1 nor passes for a slow single search).

* **Throughput** is the mean gap between completions per unit, over the last
  :data:`THROUGHPUT_WINDOW` completions while the lane was busy (the gap that opens a busy
  period counts from the arrival that opened it, so idle time never enters it).
* **Unloaded latency** is a moving average over single-unit requests that found the lane
  empty, had it to themselves until they ended, and succeeded (a 504 or a cancelled stream
  says nothing about the work); once warm, each sample is clipped to within 2x of the
  average, so one slow outlier cannot switch the budget off for a whole busy period.
* **Only a standing queue is refused.** A burst that arrives at an idle lane is admitted
  (up to the lane's count limits) and drains: queues that absorb bursts are good queues.
  The budget starts refusing once every request leaving the lane for a whole window
  (:data:`MIN_WINDOW_S`, or ten unloaded latencies if longer) took longer than the
  budget, and stops once it has had nothing to refuse for :data:`OFF_WINDOWS` windows
  (at least :data:`OFF_MIN_S`): refused clients come back after about a second, and
  stopping in that pause would admit a whole queue at once.

A request to an empty lane is never refused, so no estimate can starve a lane.
"""

from __future__ import annotations

from collections import deque

#: single-unit requests that found the lane empty before the budget applies (a fresh
#: lane knows nothing of its unloaded latency)
UNLOADED_SAMPLES = 8
#: completions the lane's throughput is averaged over (a micro-batch ends many at once)
THROUGHPUT_WINDOW = 64
#: the shortest window a queue must stand (or stay refused) before the mode changes
MIN_WINDOW_S = 0.1
#: the window in unloaded latencies, for lanes whose requests take long (answers)
WINDOW_UNLOADED = 10
#: windows without a refusal before the budget stops refusing (and at least OFF_MIN_S):
#: refused clients come back after about a second, so a shorter pause is not demand
#: falling but the refused waiting; stopping then admits a whole queue at once
OFF_WINDOWS = 20
OFF_MIN_S = 2.0
#: once warm, an unloaded sample counts as at most this factor off the average
CLIP = 2.0


class LatencyBudget:
    """Observes a lane's completions and says whether an arrival is over budget.

    Not thread-safe by design: every call comes from the event loop that owns the lane;
    :meth:`report` reads only scalars, so a metrics thread may call it too.
    """

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._unloaded_s = 0.0
        self._unloaded_n = 0
        self._gaps: deque[tuple[float, int]] = deque()
        self._gap_sum = 0.0
        self._unit_sum = 0
        self._last_done = 0.0
        self._bad_since: float | None = None
        self._last_refusal = 0.0
        #: True while refusing (a standing queue was seen and demand has not fallen)
        self.limiting = False

    # ---- what the lane tells it
    def opened(self, now: float) -> None:
        """A request arrived at an empty lane: a busy period opens."""
        self._last_done = now

    def completed(self, now: float, took: float, units: int, ok: bool, alone: bool) -> None:
        """A request left the lane after ``took`` seconds in it (waiting and working)."""
        if ok:
            gap = now - self._last_done
            self._gaps.append((gap, units))
            self._gap_sum += gap
            self._unit_sum += units
            if len(self._gaps) > THROUGHPUT_WINDOW:
                old_gap, old_units = self._gaps.popleft()
                self._gap_sum -= old_gap
                self._unit_sum -= old_units
        self._last_done = now  # a failure's time is not throughput either way
        if not ok:
            return
        if alone and units == 1:
            n = self._unloaded_n = self._unloaded_n + 1
            if n > UNLOADED_SAMPLES:
                took = min(max(took, self._unloaded_s / CLIP), self._unloaded_s * CLIP)
            # a plain mean until there are enough samples, then a moving average
            self._unloaded_s += (took - self._unloaded_s) / min(n, 2 * UNLOADED_SAMPLES)
        limit = self.limit_s
        if limit is None:
            return
        if took <= limit:
            self._bad_since = None
        elif self._bad_since is None:
            self._bad_since = now
        elif not self.limiting and now - self._bad_since >= self.window_s:
            self.limiting = True  # a standing queue: every request for a window was late
            self._last_refusal = now

    # ---- what it says
    @property
    def unloaded_s(self) -> float | None:
        return self._unloaded_s if self._unloaded_n >= UNLOADED_SAMPLES else None

    @property
    def limit_s(self) -> float | None:
        """The longest a request may expect to spend in the lane (None: no budget yet)."""
        unloaded = self.unloaded_s
        return None if not self.factor or unloaded is None else self.factor * unloaded

    @property
    def window_s(self) -> float:
        return max(MIN_WINDOW_S, WINDOW_UNLOADED * (self.unloaded_s or 0.0))

    @property
    def off_after_s(self) -> float:
        return max(OFF_MIN_S, OFF_WINDOWS * self.window_s)

    def expected_s(self, units_in_lane: int, units: int = 1) -> float | None:
        """Seconds a request of ``units`` arriving now would spend in the lane."""
        if not self._unit_sum:
            return None
        return (units_in_lane + units) * self._gap_sum / self._unit_sum

    def refuses(self, now: float, units_in_lane: int, units: int = 1) -> bool:
        """Whether an arrival of ``units`` is over budget (never at an empty lane)."""
        if not self.limiting or units_in_lane == 0:
            return False
        limit, expected = self.limit_s, self.expected_s(units_in_lane, units)
        if limit is None or expected is None:
            return False
        if expected <= limit:
            if now - self._last_refusal >= self.off_after_s and self._bad_since is None:
                self.limiting = False  # long without refusing: demand has fallen
            return False
        self._last_refusal = now
        return True

    def report(self, units_in_lane: int) -> dict[str, float | int | bool | None]:
        limit = self.limit_s
        return {
            "latency_budget": self.factor,
            "limiting": self.limiting,
            "unloaded_ms": _ms(self.unloaded_s),
            "unloaded_samples": self._unloaded_n,
            "budget_ms": _ms(limit),
            # what a single request arriving now would expect
            "expected_ms": _ms(self.expected_s(units_in_lane)) if units_in_lane else None,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
