"""A description of the machine and software a run was measured on."""

from __future__ import annotations

import os
import platform

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
