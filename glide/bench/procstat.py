"""CPU time and memory of a process from /proc, sampled once a second on a thread; machine facts."""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcSample:
    """One reading: wall time (monotonic s), CPU seconds used so far, resident set (KiB)."""

    t: float
    cpu_s: float
    rss_kb: int


def read_proc(pid: int) -> ProcSample | None:
    """CPU (user + system) and RSS of ``pid`` now; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK
    return ProcSample(time.monotonic(), cpu, _status_field(status, "VmRSS"))


def wakeups(pid: int) -> int:
    """How often the threads of ``pid`` went to sleep and were woken (the voluntary context switches so far of
    the threads alive now); 0 once the process is gone."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += _status_field(f.read(), "voluntary_ctxt_switches")
        except OSError:
            continue  # a thread that ended meanwhile
    return total


def machine_cpu_s() -> float:
    """CPU seconds the whole machine spent busy so far (every process on it: the server, its database, Redis,
    the load generator; not idle, I/O wait or time stolen by the hypervisor), from /proc/stat; 0 if unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0
    if not fields or fields[0] != "cpu":
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / _TICK


def peak_rss_kb(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM, KiB); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return _status_field(f.read(), "VmHWM")
    except OSError:
        return 0


def _status_field(status: str, key: str) -> int:
    """A number of a /proc status text (``VmRSS:  1234 kB``: 1234, in its unit); 0 if absent."""
    m = re.search(rf"^{key}:\s+(\d+)", status, re.MULTILINE)
    return int(m.group(1)) if m else 0


@dataclass
class ProcSampler:
    """Samples ``pid`` every ``interval`` seconds until :meth:`stop`."""

    pid: int
    interval: float = 1.0
    samples: list[ProcSample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="glide-bench-procstat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.sample() is None:
                return

    def sample(self) -> ProcSample | None:
        s = read_proc(self.pid)
        if s is not None:
            self.samples.append(s)
        return s

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sample()


def harness_cpu_s() -> float:
    """CPU seconds used by this process so far (every thread, including the load generator's)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raise_fd_limit(wanted: int) -> int:
    """Raises the soft RLIMIT_NOFILE towards ``wanted`` (up to the hard limit); returns the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if m:
            info["cpu_model"] = m.group(1).strip()
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = _status_field(f.read(), "MemTotal")
        info["load_avg"] = list(os.getloadavg())
    except OSError:
        pass
    return info
