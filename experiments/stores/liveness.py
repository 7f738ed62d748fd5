"""Who runs a trial, and whether that worker is still alive.

Each trial records its worker: a host id, the process id and the process's start time. A rerun
on the same host can then tell at once whether a RUNNING trial's worker is gone (killed, out of
memory, power cut) instead of waiting out a heartbeat grace period; a worker on another host can
only be judged by its heartbeat.

The host id joins the host name with the machine id, the boot id and the pid namespace, so two
containers of one image (same name and machine id, separate pid namespaces) are not taken for
one host, and a process id from before a reboot is never checked against a new process.
`COLORIZE_HOST_NAME` replaces the host name, in the id too: processes given different names
judge each other as other hosts do, by heartbeat (machines that share one name, and tests).
"""

from __future__ import annotations

import hashlib
import os
import socket
from enum import Enum
from pathlib import Path

WORKER_ATTR = "worker"  # Optuna trial system attribute: {"host", "hostname", "pid", "started"}
HOST_NAME_ENV = "COLORIZE_HOST_NAME"  # this host's name, where the system's would mislead


class Liveness(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another host: only a heartbeat can tell


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def host_name() -> str:
    """This host's name: `COLORIZE_HOST_NAME`, else the system's."""
    return os.environ.get(HOST_NAME_ENV) or socket.gethostname()


def host_id() -> str:
    """This host (container, boot) as `<hostname>/<hash>`: equal only where pids are comparable."""
    parts = [
        host_name(),
        _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id"),
        _read("/proc/sys/kernel/random/boot_id"),
        _pid_namespace(),
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    return f"{parts[0]}/{digest}"


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), or None when it does not exist
    or the platform cannot tell. Compared with the recorded one, it detects a reused pid."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    return fields[19] if len(fields) > 19 else None


def this_worker() -> dict[str, object]:
    pid = os.getpid()
    return {
        "host": host_id(),
        "hostname": host_name(),
        "pid": pid,
        "started": process_start(pid),
    }


def worker_of(trial) -> dict | None:
    """The worker an Optuna trial recorded when it was created (`RecordingSampler`)."""
    return trial.system_attrs.get(WORKER_ATTR)


def judge(worker: dict | None) -> Liveness:
    """Whether the recorded worker of a trial is still running."""
    if not isinstance(worker, dict) or worker.get("host") != host_id():
        return Liveness.UNKNOWN
    if worker.get("started") is None:  # recorded where /proc was not readable
        return Liveness.UNKNOWN
    started = process_start(int(worker.get("pid", -1)))
    return Liveness.ALIVE if started == worker["started"] else Liveness.DEAD


def describe(worker: dict | None) -> str:
    """'process 123 on host vm' for messages."""
    if not isinstance(worker, dict):
        return "an unrecorded worker"
    return f"process {worker.get('pid', '?')} on host {worker.get('hostname', '?')}"
