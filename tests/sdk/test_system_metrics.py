import os
import sys
import threading
import time

import psutil
import pytest

from runbase.sdk.system import SamplerState, SystemSampler, gpu_metrics, nvml_session, sample_system

pytestmark = pytest.mark.usefixtures("sdk_transport")

SYSTEM_KEYS = {
    "system.cpu",
    "system.proc.cpu.threads",
    "system.memory_percent",
    "system.proc.memory.availableMB",
    "system.proc.memory.rssMB",
    "system.proc.memory.percent",
    "system.disk./.usagePercent",
    "system.disk./.usageGB",
    "system.network.sent",
    "system.network.recv",
}
PROCESS_KEYS = {
    "system.cpu",
    "system.proc.cpu.threads",
    "system.proc.memory.rssMB",
    "system.proc.memory.percent",
}
GPU_KEYS = {"gpu", "memory", "memoryAllocated", "memoryAllocatedBytes", "temp"}


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def sampler_threads():
    return [t for t in threading.enumerate() if t.name == "runbase-system"]


@pytest.fixture
def process():
    return psutil.Process()


def test_sample_has_wandb_keys_and_numbers(process):
    sample = sample_system(process, SamplerState.start(process))

    assert set(sample) >= SYSTEM_KEYS
    cores = [k for k in sample if k.startswith("system.cpu.") and k.endswith(".cpu_percent")]
    assert len(cores) == psutil.cpu_count()
    assert all(is_number(v) for v in sample.values())
    assert all(k.startswith("system.") for k in sample)


def test_counters_count_from_the_start(process):
    state = SamplerState.start(process)
    sample = sample_system(process, state)

    assert sample["system.network.sent"] >= 0
    assert sample["system.network.recv"] >= 0
    if state.disk_read is not None:
        assert sample["system.disk.in"] >= 0
        assert sample["system.disk.out"] >= 0


def test_a_vanished_process_leaves_out_only_its_own_metrics():
    child = psutil.Popen([sys.executable, "-c", "pass"])
    state = SamplerState.start(child)
    child.wait()

    sample = sample_system(child, state)

    assert not set(sample) & PROCESS_KEYS
    assert set(sample) >= SYSTEM_KEYS - PROCESS_KEYS


def test_sampler_emits_samples_from_its_thread():
    samples: list[dict[str, float]] = []
    sampler = SystemSampler(samples.append, interval=0.05)
    sampler.start()
    try:
        assert wait_for(lambda: len(samples) >= 2)
    finally:
        sampler.stop()

    assert set(samples[0]) >= SYSTEM_KEYS
    assert not sampler_threads()


def test_stop_is_prompt_and_takes_no_final_sample():
    samples: list[dict[str, float]] = []
    sampler = SystemSampler(samples.append, interval=60)
    sampler.start()
    started = time.monotonic()
    sampler.stop()

    assert time.monotonic() - started < 1.0
    assert not sampler_threads()
    assert samples == []


@pytest.mark.parametrize("interval", [0, -1])
def test_interval_zero_or_less_disables_sampling(interval):
    samples: list[dict[str, float]] = []
    sampler = SystemSampler(samples.append, interval=interval)
    sampler.start()

    assert not sampler_threads()
    sampler.stop()
    assert samples == []


def test_a_failing_probe_is_skipped_and_the_rest_still_sampled():
    def broken():
        raise psutil.AccessDenied(os.getpid())

    samples: list[dict[str, float]] = []
    sampler = SystemSampler(
        samples.append, interval=0.05, probes=[broken, lambda: {"custom.value": 1.0}]
    )
    sampler.start()
    try:
        assert wait_for(lambda: len(samples) >= 2)
    finally:
        sampler.stop()

    assert samples[0]["custom.value"] == 1.0
    assert set(samples[0]) >= SYSTEM_KEYS


def test_a_failing_emit_does_not_end_the_thread():
    samples: list[dict[str, float]] = []

    def emit(sample):
        samples.append(sample)
        if len(samples) == 1:
            raise RuntimeError("queue full")

    sampler = SystemSampler(emit, interval=0.05)
    sampler.start()
    try:
        assert wait_for(lambda: len(samples) >= 2)
    finally:
        sampler.stop()


def test_a_missing_process_ends_the_sampler_quietly():
    child = psutil.Popen([sys.executable, "-c", "pass"])
    child.wait()
    samples: list[dict[str, float]] = []
    sampler = SystemSampler(samples.append, interval=0.05, pid=child.pid)
    sampler.start()

    assert wait_for(lambda: not sampler_threads())
    sampler.stop()
    assert samples == []


def test_gpu_metrics_match_the_machine():
    with nvml_session() as has_gpu:
        metrics = gpu_metrics()

    if not has_gpu:
        assert metrics == {}
        return
    assert {f"system.gpu.0.{key}" for key in GPU_KEYS} <= set(metrics)
    assert all(is_number(v) for v in metrics.values())
    assert 0 <= metrics["system.gpu.0.memoryAllocated"] <= 100
