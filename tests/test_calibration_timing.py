"""The timing harness: medians, spread, retries and refusal, driven by a fake clock."""

import itertools

import numpy as np
import pytest

from calibration.timing import (
    MeasurementRefused,
    Timer,
    TimingPolicy,
    measure,
    measure_best,
    pinned_threads,
    spread_of,
)


class FakeClock:
    """A clock that only moves when the fake kernel says it ran for some time."""

    def __init__(self):
        self.t = 0.0
        self.calls = 0

    def __call__(self):
        return self.t


def fake_kernel(clock, durations):
    it = iter(durations)

    def fn():
        clock.calls += 1
        clock.t += next(it)
    return fn


POLICY = TimingPolicy(warmup=1, repeats=4, min_sample_s=0.0, max_spread=0.2, retries=2)


def test_constant_kernel_gives_its_duration_and_zero_spread():
    clock = FakeClock()
    t = measure(fake_kernel(clock, itertools.repeat(1e-3)), POLICY, timer=Timer(clock))
    assert t.median_s == pytest.approx(1e-3)
    assert t.spread == 0.0
    assert t.attempts == 1 and t.inner == 1
    # warm-up 1 + the sizing call 1 + 4 samples
    assert clock.calls == 6


def test_too_noisy_is_refused_after_bounded_retries():
    clock = FakeClock()
    # samples alternate 1 ms / 3 ms: sorted [1,1,3,3] -> q1 = 1, q3 = 3, median 2 -> spread 1.0
    fn = fake_kernel(clock, itertools.cycle([1e-3, 3e-3]))
    with pytest.raises(MeasurementRefused) as info:
        measure(fn, POLICY, name="gemm 64", timer=Timer(clock))
    err = info.value
    assert err.attempts == 3
    assert err.spread == pytest.approx(1.0)
    assert "gemm 64" in str(err) and "too noisy" in str(err) and "20%" in str(err)
    # 1 warm-up + 1 sizing + 4 + 8 + 16 samples (repeats double at each retry)
    assert clock.calls == 30


def test_retry_accepts_a_quiet_second_attempt():
    clock = FakeClock()
    durations = [1e-3, 1e-3] + [1e-3, 5e-3, 1e-3, 5e-3] + [2e-3] * 8
    t = measure(fake_kernel(clock, durations), POLICY, timer=Timer(clock))
    assert t.attempts == 2
    assert t.median_s == pytest.approx(2e-3)
    assert len(t.samples_s) == 8


def test_short_kernels_are_repeated_inside_a_sample():
    clock = FakeClock()
    policy = TimingPolicy(warmup=0, repeats=3, min_sample_s=1e-3, max_spread=0.2, retries=0)
    t = measure(fake_kernel(clock, itertools.repeat(1e-4)), policy, timer=Timer(clock))
    assert t.inner == 10  # ceil(1 ms / 0.1 ms)
    assert t.median_s == pytest.approx(1e-4)
    assert clock.calls == 1 + 3 * 10


def test_measure_best_keeps_the_smallest_trusted_median():
    clock = FakeClock()
    policy = TimingPolicy(warmup=0, repeats=3, min_sample_s=0.0, max_spread=0.2, retries=0)
    # pass 1: 1 sizing call + 3 samples at 2 ms; pass 2: at 1 ms
    fn = fake_kernel(clock, [2e-3] * 4 + [1e-3] * 4)
    assert measure_best(fn, policy, passes=2, timer=Timer(clock)).median_s == pytest.approx(1e-3)


def test_measure_best_survives_one_refused_pass():
    clock = FakeClock()
    policy = TimingPolicy(warmup=0, repeats=4, min_sample_s=0.0, max_spread=0.2, retries=0)
    fn = fake_kernel(clock, [1e-3] + [1e-3, 4e-3] * 2 + [3e-3] * 5)
    assert measure_best(fn, policy, passes=2, timer=Timer(clock)).median_s == pytest.approx(3e-3)


def test_sync_runs_around_every_clock_read():
    clock = FakeClock()
    syncs = []
    policy = TimingPolicy(warmup=0, repeats=3, min_sample_s=0.0, retries=0)
    measure(fake_kernel(clock, itertools.repeat(1e-3)), policy, timer=Timer(clock, sync=lambda: syncs.append(1)))
    assert len(syncs) == 2 * (1 + 3)


def test_spread_of_by_hand():
    # [1, 2, 3, 4, 10]: q1 = 2, q3 = 4, median 3 -> 2/3
    assert spread_of([1, 2, 3, 4, 10]) == pytest.approx(2 / 3)


def test_policy_needs_three_repeats():
    with pytest.raises(ValueError):
        TimingPolicy(repeats=2)


def test_threads_are_pinned_inside_the_block():
    from threadpoolctl import threadpool_info

    with pinned_threads(1) as n:
        assert n == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())


def test_real_clock_times_a_real_kernel():
    a = np.ones((64, 64), dtype=np.float32)
    t = measure(lambda: a @ a, TimingPolicy(warmup=1, repeats=5, min_sample_s=1e-4, max_spread=10.0))
    assert 0 < t.median_s < 0.1


def test_busy_machine_warning_by_load_average():
    from calibration.fingerprint import busy_warning

    assert busy_warning({"cores_usable": 2, "load_before": [0.4, 0.3, 0.2], "load_after": [0.9, 0.5, 0.3]}) is None
    msg = busy_warning({"cores_usable": 2, "load_before": [0.4, 0.3, 0.2], "load_after": [3.1, 1.0, 0.5]})
    assert "3.1" in msg and "2 cores" in msg


def test_plain_progress_goes_to_the_given_stream_only(capsys):
    import io

    from calibration.progress import Progress

    err = io.StringIO()
    with Progress(3, "measuring", stream=err) as bar:
        for label in ("a", "b", "c"):
            bar.step(label)
    lines = err.getvalue().splitlines()
    assert lines[:3] == ["[1/3] measuring: a", "[2/3] measuring: b", "[3/3] measuring: c"]
    assert lines[3].startswith("measuring: 3 done in")
    assert capsys.readouterr().out == ""
