"""The latency budget: refuse, under a standing queue only, the arrivals that would take
longer than factor x the unloaded latency; robust to outliers, failures and big requests."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from snaprag.serve.admission import Lane
from snaprag.serve.budget import MIN_WINDOW_S, OFF_MIN_S, UNLOADED_SAMPLES, LatencyBudget
from snaprag.serve.errors import HTTPError


def warm(budget: LatencyBudget, seconds: float = 0.010, now: float = 100.0) -> float:
    """UNLOADED_SAMPLES requests alone, each ``seconds`` long; the time after them."""
    for _ in range(UNLOADED_SAMPLES):
        budget.opened(now)
        now += seconds
        budget.completed(now, seconds, 1, ok=True, alone=True)
        now += 1.0
    return now


def stand(budget: LatencyBudget, now: float, took: float = 0.1, gap: float = 0.005) -> float:
    """A standing queue: a busy period opens, then requests leave ``gap`` apart, each
    after ``took`` in the lane, for longer than a window (and than the throughput
    window, so the gaps are all ``gap``)."""
    budget.opened(now)
    for _ in range(max(int(2 * MIN_WINDOW_S / gap) + 2, 70)):
        now += gap
        budget.completed(now, took, 1, ok=True, alone=False)
    return now


def test_nothing_is_refused_before_the_lane_knows_its_unloaded_latency() -> None:
    budget = LatencyBudget(3)
    now = 100.0
    for _ in range(UNLOADED_SAMPLES - 1):
        budget.opened(now)
        now += 0.01
        budget.completed(now, 0.01, 1, ok=True, alone=True)
    assert budget.unloaded_s is None and budget.limit_s is None
    now = stand(budget, now)
    assert not budget.limiting and not budget.refuses(now, 100)
    assert not LatencyBudget(0).refuses(now, 100)  # 0: off


def test_a_burst_at_an_idle_lane_is_admitted_a_standing_queue_is_refused() -> None:
    budget = LatencyBudget(3)
    now = warm(budget)
    assert budget.unloaded_s == pytest.approx(0.010) and budget.limit_s == pytest.approx(0.030)
    # a burst arriving at an idle lane: nothing has stood yet, every arrival passes
    assert not any(budget.refuses(now, n) for n in range(1, 30))
    now = stand(budget, now)  # every request for a window took 100 ms > 30 ms
    assert budget.limiting
    # requests leave 5 ms apart: 5 in the lane + 1 expect 30 ms (within), 6 + 1 do not
    assert not budget.refuses(now, 5)
    assert budget.refuses(now, 6)
    assert not budget.refuses(now, 0)  # an empty lane is never refused
    # a request of 3 units counts as 3
    assert budget.refuses(now, 4, units=3) and not budget.refuses(now, 3, units=3)


def test_the_budget_stops_refusing_once_it_had_nothing_to_refuse_for_a_while() -> None:
    budget = LatencyBudget(3)
    now = stand(budget, warm(budget))
    assert budget.refuses(now, 10)
    now += 0.001
    budget.completed(now, 0.02, 1, ok=True, alone=False)  # on time again
    # refused clients come back after about a second: a pause shorter than that is not
    # demand falling
    assert not budget.refuses(now + 1.0, 2) and budget.limiting
    assert not budget.refuses(now + OFF_MIN_S + 0.01, 2)
    assert not budget.limiting


def test_one_slow_request_alone_cannot_switch_the_budget_off() -> None:
    budget = LatencyBudget(3)
    now = warm(budget)
    budget.opened(now)
    budget.completed(now + 0.6, 0.6, 1, ok=True, alone=True)  # 60x the unloaded latency
    # clipped to 2x, weighed as the 9th sample: the estimate moves by 11 %, not to 75 ms
    assert budget.unloaded_s == pytest.approx(0.010 + 0.010 / 9)


def test_failures_and_big_requests_are_not_unloaded_samples_nor_throughput() -> None:
    budget = LatencyBudget(3)
    now = warm(budget)
    gaps_before = budget.expected_s(0)
    budget.opened(now)
    budget.completed(now + 30.0, 30.0, 1, ok=False, alone=True)  # a 504 after 30 s
    assert budget.unloaded_s == pytest.approx(0.010)
    assert budget.expected_s(0) == pytest.approx(gaps_before)
    budget.opened(now + 40)
    budget.completed(now + 40.5, 0.5, 50, ok=True, alone=True)  # 50 queries, 10 ms each
    assert budget.unloaded_s == pytest.approx(0.010)
    # its 0.5 s counts as 50 completions of 10 ms, not as one of 500 ms
    assert budget.expected_s(0) == pytest.approx((8 * 0.010 + 0.5) / (8 + 50), rel=1e-6)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _limiting_lane() -> tuple[Lane, FakeClock]:
    clock = FakeClock()
    lane = Lane("search", concurrency=16, queue=16, timeout_s=30, latency_budget=3, clock=clock)
    clock.now = stand(lane.budget, warm(lane.budget))
    return lane, clock


def _arrivals(lane: Lane, n: int, budget: bool = True) -> Counter:
    """``n`` requests arriving together that hold the lane (none finishes before all
    arrived)."""

    async def main() -> Counter:
        hold = asyncio.Event()

        async def request() -> str:
            try:
                async with lane.admit(budget=budget):
                    await hold.wait()
                return "ok"
            except HTTPError as exc:
                assert int(exc.headers["Retry-After"]) >= 1
                assert (
                    500
                    <= int(exc.headers["retry-after-ms"])
                    <= 1500 * int(exc.headers["Retry-After"])
                )
                return f"{exc.status} {'budget' if 'latency budget' in exc.message else 'full'}"

        tasks = [asyncio.ensure_future(request()) for _ in range(n)]
        await asyncio.sleep(0.01)
        hold.set()
        return Counter(await asyncio.gather(*tasks))

    return asyncio.run(main())


def test_a_lane_over_its_budget_refuses_long_before_its_queue_is_full() -> None:
    lane, _ = _limiting_lane()
    assert _arrivals(lane, 10) == {"ok": 6, "429 budget": 4}
    report = lane.report()
    assert report["over_budget"] == 4 and report["rejected"] == 4
    assert report["limiting"] is True and report["budget_ms"] == pytest.approx(30.0)
    assert report["unloaded_samples"] == UNLOADED_SAMPLES


def test_a_stream_checked_before_its_200_is_not_refused_by_the_budget_after_it() -> None:
    """refuse() runs before the stream's 200; admit() after must not answer 429 for the
    budget (only the hard count limit still holds)."""
    lane, _ = _limiting_lane()
    assert _arrivals(lane, 40, budget=False) == {"ok": 32, "429 full": 8}


def test_without_a_budget_only_the_queue_bounds_the_lane() -> None:
    clock = FakeClock()
    lane = Lane("search", concurrency=2, queue=2, timeout_s=30, latency_budget=0, clock=clock)
    clock.now = stand(lane.budget, warm(lane.budget))
    assert _arrivals(lane, 10) == {"ok": 4, "429 full": 6}


def test_requests_of_many_units_fill_the_budget_by_their_units() -> None:
    lane, _ = _limiting_lane()

    async def main() -> str:
        hold = asyncio.Event()

        async def one(units: int) -> str:
            try:
                async with lane.admit(units):
                    await hold.wait()
                return "ok"
            except HTTPError as exc:
                return str(exc.status)

        first = asyncio.ensure_future(one(1))
        await asyncio.sleep(0)
        big = await one(50)  # 1 + 50 units expect 255 ms > 30 ms
        hold.set()
        await first
        return big

    assert asyncio.run(main()) == "429"
