"""What an attempt ran on and what it used, for attempts.jsonl (the run folder contract: ``rundir.ENV_FIELDS``,
``rundir.USAGE_FIELDS``): mtl-collect's drift audit compares the environments of a section's runs, and its
--cost table shows the peaks against the job's limits (right-sizing).

Nothing here may fail a run: every probe answers None when it cannot tell (no git, no NVML, no nvidia-smi, no
Slurm), and every command it runs has a short timeout. Cheap: three git commands and, in a Slurm job, one squeue
at the start of an attempt; on a GPU one NVML (or nvidia-smi) sample every few seconds in a daemon thread.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import torch

log = logging.getLogger("mtl_cluster.train")

PACKAGE_ROOT = Path(__file__).resolve().parents[2]   # the folder holding mtl_cluster/ (a git checkout or not)
COMMAND_TIMEOUT_S = 5.0
NVML_EVERY_S = 5.0         # GPU utilisation sample interval through NVML (a library call)
SMI_EVERY_S = 15.0         # ... through nvidia-smi (a process start each time)
MIB = 2 ** 20


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT_S) -> bytes | None:
    """A command's stdout, or None when it is missing, fails or takes longer than ``timeout``."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, check=False,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def git_state(root: Path = PACKAGE_ROOT) -> tuple[str | None, str | None]:
    """(commit, sha256 of ``git diff HEAD`` or None for a clean tree) of the package's checkout; (None, None) when
    the package is not a checkout of its own (installed into site-packages, or inside another repository).
    Untracked files are not in the diff. GIT_OPTIONAL_LOCKS=0: array tasks on one checkout never race for
    its index lock."""
    top = _run(["git", "rev-parse", "--show-toplevel"], root)
    if top is None or Path(top.decode().strip()).resolve() != root.resolve():
        return None, None
    head = _run(["git", "rev-parse", "HEAD"], root)
    if head is None:
        return None, None
    diff = _run(["git", "diff", "--no-ext-diff", "--binary", "HEAD"], root, timeout=2 * COMMAND_TIMEOUT_S)
    dirty = hashlib.sha256(diff).hexdigest() if diff else None
    return head.decode().strip(), dirty


def uses_cuda(spec: str) -> bool:
    """Whether a run of config ``device`` ``spec`` trains on a GPU here (loop.pick_device's rule)."""
    return spec != "cpu" and torch.cuda.is_available()


def cuda_index(spec: str) -> int:
    """The torch device index ``spec`` names (``cuda:1`` -> 1), else the current one."""
    m = re.fullmatch(r"cuda:(\d+)", spec)
    return int(m.group(1)) if m else torch.cuda.current_device()


def gpu_uuid(index: int) -> str | None:
    """The GPU's NVML UUID (``GPU-...``), which names the same card to NVML and nvidia-smi whatever
    CUDA_VISIBLE_DEVICES renumbers; None when torch does not say."""
    try:
        text = str(torch.cuda.get_device_properties(index).uuid)
    except Exception:  # noqa: BLE001 - an old torch without .uuid, a broken driver: no UUID, no failure
        return None
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def _nvml() -> Any:
    """pynvml, initialised, or None (it is optional: not a dependency)."""
    try:
        import pynvml  # type: ignore[import-not-found]
        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - not installed, no driver
        return None


def driver_version(uuid: str | None) -> str | None:
    """The NVIDIA driver through NVML, else nvidia-smi; None where neither answers."""
    nvml = _nvml()
    if nvml is not None:
        try:
            value = nvml.nvmlSystemGetDriverVersion()
            return value.decode() if isinstance(value, bytes) else str(value)
        except Exception:  # noqa: BLE001
            pass
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader",
                *(["-i", uuid] if uuid else [])])
    lines = out.decode().split() if out else []
    return lines[0] if lines else None


def environment(device_spec: str) -> dict[str, str | None]:
    """The attempt's ``env`` (rundir.ENV_FIELDS): software, GPU, host and the package's commit."""
    try:
        import torchvision
        vision: str | None = torchvision.__version__
    except Exception:  # noqa: BLE001 - recorded as missing, never fatal
        vision = None
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    gpu = driver = None
    if uses_cuda(device_spec):
        try:
            index = cuda_index(device_spec)
            gpu = torch.cuda.get_device_name(index)
            driver = driver_version(gpu_uuid(index))
        except Exception as exc:  # noqa: BLE001
            log.warning("environment: could not name the GPU (%s: %s)", type(exc).__name__, exc)
    commit, diff = git_state()
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": vision,
            "cuda": torch.version.cuda, "cudnn": str(cudnn) if cudnn else None, "gpu": gpu, "driver": driver,
            "git_commit": commit, "git_diff": diff, "host": socket.gethostname()}


def parse_time_limit(text: str) -> int | None:
    """Seconds of a Slurm time limit as squeue's %l prints it (``[days-]hours:minutes:seconds``, ``minutes:seconds``
    or ``minutes``); None for UNLIMITED, NOT_SET or anything else."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        return None
    days, a, b, c = (int(x) if x else None for x in m.groups())
    if c is not None:                       # h:m:s
        h, mnt, s = a or 0, b or 0, c
    elif b is not None:                     # m:s, or d-h:m
        h, mnt, s = (a or 0, b, 0) if days is not None else (0, a or 0, b)
    else:                                   # minutes, or d-h
        h, mnt, s = (a or 0, 0, 0) if days is not None else (0, a or 0, 0)
    return (days or 0) * 86400 + h * 3600 + mnt * 60 + s


def slurm_limits() -> dict[str, float | None] | None:
    """The job's time limit (seconds, squeue) and memory (MiB, from SLURM_MEM_PER_NODE or SLURM_MEM_PER_CPU x CPUs)
    in a Slurm job; None outside one. Either is None when Slurm does not say."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    out = _run(["squeue", "-h", "-j", job, "-o", "%l"])
    limit = parse_time_limit(out.decode().splitlines()[0]) if out and out.strip() else None
    mem: float | None = None
    per_node, per_cpu = os.environ.get("SLURM_MEM_PER_NODE"), os.environ.get("SLURM_MEM_PER_CPU")
    cpus = os.environ.get("SLURM_CPUS_ON_NODE") or os.environ.get("SLURM_CPUS_PER_TASK")
    if per_node and per_node.isdigit():
        mem = float(per_node)
    elif per_cpu and per_cpu.isdigit() and cpus and cpus.isdigit():
        mem = float(per_cpu) * int(cpus)
    return {"time_limit_s": limit, "mem_mib": mem}


def _peak_mib(who: int) -> float:
    """ru_maxrss in MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(who).ru_maxrss
    return round(rss / (MIB if sys.platform == "darwin" else 1024), 1)


_HWM = re.compile(r"^VmHWM:\s+(\d+) kB$", re.M)


def reset_peak_memory() -> bool:
    """Start this process's resident-memory high-water mark afresh (Linux: ``5`` into /proc/self/clear_refs
    resets VmHWM), so that an attempt's peak is its own when one process trains several runs (``mtl-train
    --worker``), not the largest of every run before it. False where the kernel refuses or has no such file:
    the peak is then the process's lifetime peak (``ru_maxrss``); pass the answer to ``usage``."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _self_peak_mib() is not None


def _self_peak_mib() -> float | None:
    """VmHWM (since the last reset) in MiB, or None where /proc does not say."""
    try:
        m = _HWM.search(Path("/proc/self/status").read_text())
    except OSError:
        return None
    return round(int(m.group(1)) / 1024, 1) if m else None


class GpuSampler:
    """Mean GPU utilisation (%) of one card while an attempt runs: NVML every NVML_EVERY_S, else nvidia-smi every
    SMI_EVERY_S, in a daemon thread; ``mean()`` is None without a sample (a CPU run, neither answers, or an
    attempt shorter than one interval)."""

    def __init__(self, device_spec: str):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not uses_cuda(device_spec):
            return
        try:
            index = cuda_index(device_spec)
        except Exception:  # noqa: BLE001
            return
        probe = self._probe(gpu_uuid(index), index)
        if probe is not None:
            read, every = probe
            self._thread = threading.Thread(target=self._loop, args=(read, every), name="gpu-util", daemon=True)
            self._thread.start()

    @staticmethod
    def _probe(uuid: str | None, index: int) -> tuple[Callable[[], float | None], float] | None:
        """How to read this card's utilisation, and how often; None when nothing can tell it apart from the
        node's other cards (a renumbered CUDA_VISIBLE_DEVICES without a UUID)."""
        if uuid is None and os.environ.get("CUDA_VISIBLE_DEVICES"):
            return None
        nvml = _nvml()
        if nvml is not None:
            try:
                handle = (nvml.nvmlDeviceGetHandleByUUID(uuid.encode()) if uuid else
                          nvml.nvmlDeviceGetHandleByIndex(index))
                return (lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)), NVML_EVERY_S
            except Exception:  # noqa: BLE001 - fall back to nvidia-smi
                pass
        if shutil.which("nvidia-smi") is None:
            return None
        cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
               "-i", uuid or str(index)]

        def smi() -> float | None:
            out = _run(cmd)
            try:
                return float(out.decode().split()[0]) if out else None
            except (ValueError, IndexError):
                return None
        return smi, SMI_EVERY_S

    def _loop(self, read: Callable[[], float | None], every: float) -> None:
        while not self._stop.wait(every):
            try:
                value = read()
            except Exception:  # noqa: BLE001 - a driver hiccup loses one sample
                value = None
            if value is not None:
                self.samples.append(value)

    def stop(self) -> float | None:
        """Stop sampling; the mean of the samples (None without any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=COMMAND_TIMEOUT_S + 1)
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def usage(elapsed_s: float, device: torch.device | None, gpu_util: float | None,
          since_reset: bool = False) -> dict[str, float | None]:
    """The attempt's ``usage`` (rundir.USAGE_FIELDS). Peak memory is the process's since ``reset_peak_memory``
    (the attempt's start) where it answered True (``since_reset``), else over the process's life; the
    children's counts the worker processes reaped by then (DataLoader workers), over the process's life (no
    reset exists for it)."""
    gpu_peak = gpu_reserved = None
    if device is not None and device.type == "cuda":
        try:
            gpu_peak = round(torch.cuda.max_memory_allocated(device) / MIB, 1)
            gpu_reserved = round(torch.cuda.max_memory_reserved(device) / MIB, 1)
        except Exception:  # noqa: BLE001
            pass
    own = (since_reset and _self_peak_mib()) or _peak_mib(resource.RUSAGE_SELF)
    return {"elapsed_s": round(elapsed_s, 3), "host_peak_mib": own,
            "children_peak_mib": _peak_mib(resource.RUSAGE_CHILDREN), "gpu_peak_mib": gpu_peak,
            "gpu_reserved_peak_mib": gpu_reserved, "gpu_util_mean": gpu_util}
