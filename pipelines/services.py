"""Local servers (the UIs) run under one supervisor: started, awaited, and stopped with all they started.

Each service runs in its own session (its own process group), so a Ctrl-C in the terminal reaches
only the supervisor, which then stops every group: SIGTERM to the group and to every process it
has started (some leave the group), then SIGKILL to whatever still runs after a grace period.
Airflow's scheduler, for one, ignores SIGTERM for about 90 s while it waits for its tasks; an
orphaned scheduler would go on running DAGs. Each service writes its output to a log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pipelines.config import Settings

__all__ = [
    "DEFAULT_PORTS",
    "HOST",
    "PortInUseError",
    "RunningService",
    "Service",
    "ServiceError",
    "Supervisor",
    "check_ports",
    "dbt_docs",
    "interrupt_on_signals",
    "mlflow_ui",
    "port_holder",
]

HOST = "127.0.0.1"
LOG_TAIL_LINES = 25
DEFAULT_PORTS = {"airflow": 8080, "mlflow": 5000, "dbt-docs": 8081}
# The MLflow 3 UI opens on its GenAI view unless the address asks for the machine-learning one.
MLFLOW_START = "/#/experiments?workflowType=machine_learning"


class ServiceError(RuntimeError):
    """A service could not start, did not answer in time, or stopped on its own."""


class PortInUseError(ServiceError):
    """A port a service needs is taken on 127.0.0.1."""


@dataclass(frozen=True)
class Service:
    """A server to run on 127.0.0.1.

    Attributes:
        name: Short name, also the log file's (``airflow`` -> ``airflow.log``).
        args: The command.
        port: The port it listens on (None: a worker that serves nothing, e.g. a scheduler).
        env: Its whole environment (default: this process's).
        cwd: Its working directory.
        ready_path: A path that answers over HTTP once the server is up.
        url_path: Where a person starts (appended to ``http://127.0.0.1:<port>``).
        umask: The umask it runs under (e.g. 0o077: the files it writes are its owner's alone).
        ready_timeout_s: How long it may take to answer.
    """

    name: str
    args: Sequence[str]
    port: int | None = None
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    ready_path: str = "/"
    url_path: str = "/"
    umask: int = -1
    ready_timeout_s: float = 120.0

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{HOST}:{self.port}{self.url_path}"


@dataclass
class RunningService:
    """A started service: its process (the leader of its own session) and its log."""

    service: Service
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.service.name

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def port_holder(port: int) -> str | None:
    """``pid N (name)`` of the process listening on ``port``, where this user may see it."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                with contextlib.suppress(psutil.Error):
                    return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                return f"pid {conn.pid}"
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: a port left in TIME_WAIT by a stopped server is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((HOST, port)) == 0


def check_ports(ports: Mapping[str, int]) -> None:
    """Raise PortInUseError naming every taken port, who holds it, and the option that moves it.

    Args:
        ports: Option name (``--airflow-port``) -> port.
    """
    taken = []
    for option, port in ports.items():
        if not 0 < port < 65536:
            raise PortInUseError(f"{option} {port} is not a port number (1-65535)")
        if _port_free(port):
            continue
        if not _listening(port):
            taken.append(
                f"port {port} on {HOST} is still held by the connections of a server that stopped "
                f"moments ago (for up to a minute): wait, or pass {option} PORT"
            )
            continue
        holder = port_holder(port)
        by = f" by {holder}" if holder else ""
        taken.append(f"port {port} on {HOST} is already in use{by}: stop that server or pass {option} PORT")
    if taken:
        raise PortInUseError("; ".join(taken))


def _answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only with an error or a login redirect
    except (OSError, ValueError):
        return False


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Starts services and stops them all, children included (also as a context manager).

    Args:
        log_dir: Where each service's output goes (``<name>.log``, replaced at each start).
        grace_s: Seconds between SIGTERM and SIGKILL when stopping.
        say: Called with short progress messages.
    """

    def __init__(self, log_dir: Path, *, grace_s: float = 10.0, say: Callable[[str], None] = print) -> None:
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.say = say
        self.running: list[RunningService] = []

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_file(self, name: str) -> Path:
        # Logs may hold secrets (Airflow prints the admin password it generates): owner only.
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.chmod(0o700)
        log = self.log_dir / f"{name}.log"
        log.unlink(missing_ok=True)
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return log

    def write_log(self, name: str, text: str) -> Path:
        """Write ``text`` as the log of ``name`` (a service that could not be started) and return it."""
        log = self._log_file(name)
        log.write_text(text)
        return log

    def start(self, service: Service) -> RunningService:
        """Start ``service`` in a session of its own, its output to ``<log_dir>/<name>.log``."""
        log = self._log_file(service.name)
        with log.open("wb") as out:
            try:
                process = subprocess.Popen(
                    list(service.args),
                    env=dict(service.env) if service.env is not None else None,
                    cwd=service.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    umask=service.umask,
                )
            except OSError as exc:
                raise ServiceError(f"{service.name}: cannot run {service.args[0]}: {exc}") from exc
        running = RunningService(service, process, log)
        self.running.append(running)
        return running

    def wait_ready(self, running: RunningService) -> None:
        """Wait until the service answers HTTP on its port (one without a port: until it runs).

        Raises:
            ServiceError: It exited first or did not answer within its ``ready_timeout_s``; the
                message ends with its log's last lines.
        """
        service = running.service
        url = f"http://{HOST}:{service.port}{service.ready_path}"
        deadline = running.started + service.ready_timeout_s
        while service.port is not None and not _answers(url):
            code = running.process.poll()
            if code is not None:
                raise ServiceError(
                    f"{service.name} exited with code {code} before answering on {url}; "
                    f"last lines of {running.log}:\n{running.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{service.name} did not answer on {url} within {service.ready_timeout_s:.0f}s; "
                    f"last lines of {running.log}:\n{running.log_tail()}"
                )
            time.sleep(0.5)
        if running.process.poll() is not None:
            raise ServiceError(
                f"{service.name} exited with code {running.process.returncode}; "
                f"last lines of {running.log}:\n{running.log_tail()}"
            )

    def wait(self, poll_s: float = 0.5) -> RunningService:
        """Block until a service exits (they are meant to run until stopped) and return it."""
        while True:
            for running in self.running:
                if running.process.poll() is not None:
                    return running
            time.sleep(poll_s)

    def stop(self) -> None:
        """Stop every service and everything it started: SIGTERM, then SIGKILL after the grace period."""
        if not self.running:
            return
        with _signals_ignored():
            self._stop()

    def _stop(self) -> None:
        procs: dict[int, psutil.Process] = {}
        for running in self.running:
            procs |= {p.pid: p for p in _tree(running.process.pid)}
        for running in self.running:
            _signal_group(running.process.pid, signal.SIGTERM)
        for proc in procs.values():
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        if procs:
            names = ", ".join(r.name for r in self.running)
            self.say(f"stopping {names} ({len(procs)} processes; SIGKILL after {self.grace_s:.0f}s)")
        _, alive = psutil.wait_procs(list(procs.values()), timeout=self.grace_s)
        # What the survivors started meanwhile, then the groups, then every survivor.
        for proc in list(alive):
            with contextlib.suppress(psutil.Error):
                alive += [c for c in proc.children(recursive=True) if c.pid not in procs]
        for running in self.running:
            _signal_group(running.process.pid, signal.SIGKILL)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _, left = psutil.wait_procs(alive, timeout=5)
        for running in self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.process.wait(timeout=5)
        if alive:
            self.say(f"killed {len(alive)} process(es) that outlived SIGTERM by {self.grace_s:.0f}s")
        if left:
            self.say(f"could not stop: {', '.join(f'pid {p.pid}' for p in left)}")
        self.running = []


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """Ctrl-C (or SIGTERM) again while stopping does not cut the stop short."""
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals go to the main thread anyway
        previous = {}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM raise KeyboardInterrupt, so one ``except`` stops the services.

    SIGINT too: a process started in the background by a shell script inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt.
    """
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt),
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the project's UIs (Airflow's: pipelines.orchestration.standalone) ----------------------------


def mlflow_ui(settings: Settings, port: int = DEFAULT_PORTS["mlflow"]) -> Service:
    """The MLflow UI over the project's tracking store: one worker, no job workers."""
    import sys

    from pipelines.config import TELEMETRY_OFF

    args = [
        str(Path(sys.executable).parent / "mlflow"),
        "ui",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        str(settings.mlruns_dir),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",  # one person's UI (4 by default)
        "1",
    ]
    env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return Service("mlflow", args, port, env, ready_path="/health", url_path=MLFLOW_START)


def dbt_docs(settings: Settings, port: int = DEFAULT_PORTS["dbt-docs"]) -> Service:
    """``dbt docs serve`` of the site ``dbt docs generate`` wrote under ECOM_HOME."""
    from pipelines.transform import DBT_PROJECT_DIR, dbt_env, dbt_executable

    args = [
        str(dbt_executable(settings)),
        "docs",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-browser",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    return Service("dbt-docs", args, port, {**os.environ, **dbt_env(settings)}, cwd=DBT_PROJECT_DIR)
