"""A description of the machine and software a run was measured on, and of
the load other processes put on it during the run."""

from __future__ import annotations

import os
import platform
from typing import NamedTuple

import tensorflow as tf

from benchmarks.models import keras_of


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict[str, str]:
    """CPU, cores, operating system and the versions that matter."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "TensorFlow": tf.__version__,
        "Keras 3": keras_of("keras3").__version__,
        "tf-keras": keras_of("tf_keras").__version__,
    }


class CpuCounters(NamedTuple):
    """CPU seconds since boot (all cores) and this process's own."""

    busy: float  # user, nice, system, irq and softirq time of every process
    steal: float  # time a hypervisor ran another machine instead
    total: float
    own: float  # this process and its finished children


def cpu_counters() -> CpuCounters | None:
    """The counters now, or None where /proc/stat is not available."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    times = os.times()
    return CpuCounters(
        busy=(user + nice + system + irq + softirq) / tick,
        steal=steal / tick,
        total=sum(fields) / tick,
        own=times.user + times.system + times.children_user + times.children_system,
    )


def load_since(start: CpuCounters | None) -> dict[str, str]:
    """The share of the CPUs other processes used since `start`, and the
    share the hypervisor took: what the run competed with. Every ratio is
    timed side by side, so load slows all variants alike; a high share
    widens the spread of the ratios (see the timer-noise targets)."""
    end = cpu_counters()
    if start is None or end is None or end.total <= start.total:
        return {"load during the run": "not measured (no /proc/stat)"}
    total = end.total - start.total
    others = (end.busy - start.busy) - (end.own - start.own)
    return {
        "CPU used by other processes during the run": f"{max(others, 0) / total:.1%}",
        "CPU stolen by the hypervisor during the run": (
            f"{(end.steal - start.steal) / total:.1%}"
        ),
    }
