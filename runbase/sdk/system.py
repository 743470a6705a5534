"""System metrics for a run's ``system`` history stream, under Weights & Biases key names.

A ``SystemSampler`` thread takes one sample every ``interval`` seconds and hands it to
``emit`` as one flat dict, e.g. ``{"system.cpu": 3.5, "system.gpu.0.temp": 41.0, ...}``.
Each probe (CPU, memory, disk, network, NVIDIA GPUs) is read on its own: one that fails
(no GPU, ``AccessDenied``, a vanished process) is left out of the sample, and nothing a
probe or ``emit`` raises leaves the thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import psutil

try:
    import pynvml as pynvml  # also used by metadata
except ImportError:  # nvidia-ml-py is a dependency, but a broken install must not break runs
    pynvml = None

__all__ = [
    "Probe",
    "SamplerState",
    "SystemSampler",
    "gpu_metrics",
    "nvml_session",
    "sample_system",
]

logger = logging.getLogger(__name__)

Probe = Callable[[], dict[str, float]]
"""A function returning some metrics; if it raises, its metrics are left out of that sample."""

MB = 1024 * 1024
GB = 1024 * MB


@dataclass
class SamplerState:
    """Baselines a sample is measured against: counters are reported as totals since start."""

    cpu_count: int = 1
    disk_read: int | None = None
    disk_write: int | None = None
    net_sent: int | None = None
    net_recv: int | None = None
    disk_paths: tuple[str, ...] = ("/",)

    @classmethod
    def start(cls, process: psutil.Process, disk_paths: tuple[str, ...] = ("/",)) -> SamplerState:
        """Read the baselines now, and prime CPU percentages so the first sample is real."""
        state = cls(cpu_count=psutil.cpu_count() or 1, disk_paths=disk_paths)
        with contextlib.suppress(Exception):
            process.cpu_percent()
            psutil.cpu_percent(percpu=True)
        with contextlib.suppress(Exception):
            disk = psutil.disk_io_counters()
            if disk is not None:
                state.disk_read, state.disk_write = disk.read_bytes, disk.write_bytes
        with contextlib.suppress(Exception):
            net = psutil.net_io_counters()
            state.net_sent, state.net_recv = net.bytes_sent, net.bytes_recv
        return state


def _process_cpu(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    return {
        "system.cpu": process.cpu_percent() / state.cpu_count,
        "system.proc.cpu.threads": process.num_threads(),
    }


def _cpu_cores(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    per_core = psutil.cpu_percent(percpu=True)
    return {f"system.cpu.{i}.cpu_percent": percent for i, percent in enumerate(per_core)}


def _system_memory(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    memory = psutil.virtual_memory()
    return {
        "system.memory_percent": memory.percent,
        "system.proc.memory.availableMB": memory.available / MB,
    }


def _process_memory(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    return {
        "system.proc.memory.rssMB": process.memory_info().rss / MB,
        "system.proc.memory.percent": process.memory_percent(),
    }


def _disk_io(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    disk = psutil.disk_io_counters()
    if disk is None or state.disk_read is None or state.disk_write is None:
        return {}
    return {
        "system.disk.in": (disk.read_bytes - state.disk_read) / MB,
        "system.disk.out": (disk.write_bytes - state.disk_write) / MB,
    }


def _disk_usage(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for path in state.disk_paths:
        with contextlib.suppress(OSError):
            usage = psutil.disk_usage(path)
            metrics[f"system.disk.{path}.usagePercent"] = usage.percent
            metrics[f"system.disk.{path}.usageGB"] = usage.used / GB
    return metrics


def _network(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    if state.net_sent is None or state.net_recv is None:
        return {}
    net = psutil.net_io_counters()
    return {
        "system.network.sent": net.bytes_sent - state.net_sent,
        "system.network.recv": net.bytes_recv - state.net_recv,
    }


_PSUTIL_PROBES = (
    _process_cpu,
    _cpu_cores,
    _system_memory,
    _process_memory,
    _disk_io,
    _disk_usage,
    _network,
)


def sample_system(process: psutil.Process, state: SamplerState) -> dict[str, float]:
    """One reading of CPU, memory, disk and network; a probe that fails is left out."""
    sample: dict[str, float] = {}
    for probe in _PSUTIL_PROBES:
        sample.update(_read(probe, process, state))
    return sample


def _read(probe: Callable[..., dict[str, float]], *args: object) -> dict[str, float]:
    try:
        return probe(*args)
    except Exception:
        name = getattr(probe, "__name__", probe)
        logger.debug("system probe %s failed", name, exc_info=True)
        return {}


@contextlib.contextmanager
def nvml_session() -> Iterator[bool]:
    """Hold NVML open for the block; yields False when there is no NVIDIA driver.

    NVML counts nested sessions, so a session inside a longer one costs little.
    """
    try:
        pynvml.nvmlInit()
    except Exception:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def gpu_metrics(pid: int | None = None) -> dict[str, float]:
    """One reading of every NVIDIA GPU; {} when there is no GPU or driver.

    GPUs that ``pid`` (default: this process) or its children use are also reported as
    ``system.gpu.process.{i}.*``. A reading a board does not support is left out.
    """
    with nvml_session() as ok:
        if not ok:
            return {}
        ours = _our_pids(os.getpid() if pid is None else pid)
        metrics: dict[str, float] = {}
        for index in range(int(_read(_device_count).get("count", 0))):
            metrics.update(_read(_device_metrics, index, ours))
        return metrics


def _device_count() -> dict[str, float]:
    return {"count": pynvml.nvmlDeviceGetCount()}


def _device_metrics(index: int, ours: set[int]) -> dict[str, float]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    readings = _device_readings(handle)
    metrics = {f"system.gpu.{index}.{k}": v for k, v in readings.items()}
    if _device_pids(handle) & ours:
        metrics.update({f"system.gpu.process.{index}.{k}": v for k, v in readings.items()})
    return metrics


def _utilization(handle: object) -> dict[str, float]:
    rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
    return {"gpu": rates.gpu, "memory": rates.memory}


def _memory(handle: object) -> dict[str, float]:
    info = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return {"memoryAllocated": info.used / info.total * 100, "memoryAllocatedBytes": info.used}


def _temperature(handle: object) -> dict[str, float]:
    return {"temp": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)}


def _power(handle: object) -> dict[str, float]:
    watts = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000
    limit = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
    return {
        "powerWatts": watts,
        "enforcedPowerLimitWatts": limit,
        "powerPercent": watts / limit * 100,
    }


def _clocks(handle: object) -> dict[str, float]:
    return {
        "smClock": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
        "memoryClock": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
        "graphicsClock": pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_GRAPHICS),
    }


_GPU_READINGS = (_utilization, _memory, _temperature, _power, _clocks)


def _device_readings(handle: object) -> dict[str, float]:
    readings: dict[str, float] = {}
    for read in _GPU_READINGS:
        # Some boards do not support some readings (power on many consumer GPUs).
        readings.update(_read(read, handle))
    return readings


def _device_pids(handle: object) -> set[int]:
    pids: set[int] = set()
    for list_processes in (
        pynvml.nvmlDeviceGetComputeRunningProcesses,
        pynvml.nvmlDeviceGetGraphicsRunningProcesses,
    ):
        with contextlib.suppress(Exception):
            pids.update(p.pid for p in list_processes(handle))
    return pids


def _our_pids(pid: int) -> set[int]:
    pids = {pid}
    with contextlib.suppress(psutil.Error):
        pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    return pids


class SystemSampler:
    """A daemon thread that emits one system sample every ``interval`` seconds.

    The first sample comes one interval after ``start()`` (as in W&B); ``stop()`` takes no
    final one. ``interval <= 0`` disables sampling. ``probes`` are extra functions whose
    metrics are merged into each sample after the built-in ones.
    """

    def __init__(
        self,
        emit: Callable[[dict[str, float]], None],
        interval: float = 10.0,
        pid: int | None = None,
        probes: Sequence[Probe] = (),
    ) -> None:
        self.emit = emit
        self.interval = interval
        self.pid = os.getpid() if pid is None else pid
        self.probes = list(probes)
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in the background; does nothing when disabled or already started."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="runbase-system", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sampling and wait (at most ``timeout`` seconds) for the thread to end."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            process = psutil.Process(self.pid)
            state = SamplerState.start(process)
        except Exception:
            logger.debug("cannot watch process %s", self.pid, exc_info=True)
            return
        with nvml_session() as has_gpu:
            probes = [lambda: sample_system(process, state)]
            if has_gpu:
                probes.append(lambda: gpu_metrics(self.pid))
            probes.extend(self.probes)
            while not self._stopped.wait(self.interval):
                self._sample(probes)

    def _sample(self, probes: Sequence[Probe]) -> None:
        sample: dict[str, float] = {}
        for probe in probes:
            sample.update(_read(probe))
        if not sample:
            return
        try:
            self.emit(sample)
        except Exception:
            logger.debug("emitting a system sample failed", exc_info=True)
