"""The supervisor behind `ecom ui`: services answer before their URLs are printed, a taken port is a
clear error, and stopping leaves no process behind, even one that ignores SIGTERM or left the group."""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config import Settings
from pipelines.services import PortInUseError, Service, ServiceError, Supervisor, check_ports

pytestmark = pytest.mark.integration

# A server whose process and its two children ignore SIGTERM; one child starts a session of its own
# (as some servers' workers do), so it is outside the service's process group.
STUBBORN = textwrap.dedent(
    """
    import http.server, signal, subprocess, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sleeper = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", sleeper])
    subprocess.Popen([sys.executable, "-c", sleeper], start_new_session=True)
    print("serving", flush=True)
    handler = http.server.SimpleHTTPRequestHandler
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_stopping_kills_the_whole_tree_after_the_grace_period(tmp_path: Path) -> None:
    port = free_port()
    service = Service("stubborn", [sys.executable, "-c", STUBBORN, str(port)], port, ready_timeout_s=30)
    messages: list[str] = []
    with Supervisor(tmp_path / "logs", grace_s=1.0, say=messages.append) as supervisor:
        running = supervisor.start(service)
        supervisor.wait_ready(running)
        tree = [psutil.Process(running.process.pid), *psutil.Process(running.process.pid).children()]
        assert len(tree) == 3
        started = time.monotonic()
    assert time.monotonic() - started < 10
    assert not [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert messages[0] == "stopping stubborn (3 processes; SIGKILL after 1s)"
    assert messages[1] == "killed 3 process(es) that outlived SIGTERM by 1s"
    assert "serving" in running.log.read_text()
    assert running.log.stat().st_mode & 0o777 == 0o600
    check_ports({"--port": port})  # free again


def test_a_service_that_exits_before_answering_shows_its_log(tmp_path: Path) -> None:
    port = free_port()
    crash = "import sys; print('no such table: dags'); sys.exit(3)"
    with Supervisor(tmp_path, grace_s=1.0, say=lambda _: None) as supervisor:
        running = supervisor.start(Service("crashy", [sys.executable, "-c", crash], port))
        with pytest.raises(ServiceError, match=r"crashy exited with code 3 before answering") as caught:
            supervisor.wait_ready(running)
    assert str(caught.value).endswith("no such table: dags")


def test_a_taken_port_names_the_option_that_moves_it(listening: int) -> None:
    with pytest.raises(PortInUseError) as caught:
        check_ports({"--mlflow-port": listening, "--dbt-docs-port": free_port()})
    message = str(caught.value)
    assert message.startswith(f"port {listening} on 127.0.0.1 is already in use by pid ")
    assert message.endswith("stop that server or pass --mlflow-port PORT")


def test_ecom_ui_refuses_a_taken_port_before_starting_anything(settings: Settings, listening: int) -> None:
    result = CliRunner().invoke(
        app, ["ui", "all", "--mlflow-port", str(listening), "--airflow-port", str(free_port())]
    )
    assert result.exit_code == 2
    assert f"port {listening} on 127.0.0.1 is already in use" in result.output
    assert "pass --mlflow-port PORT" in result.output
    assert not (settings.home / "airflow").exists()  # nothing was prepared or started


def test_a_port_held_by_a_stopped_servers_connections_says_so() -> None:
    # A server without SO_REUSEADDR (as `dbt docs serve`) closes first: its side of the connection
    # keeps the port for a while after nothing listens on it.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()
    server.close()
    try:
        with pytest.raises(PortInUseError, match="still held by the connections of a server that stopped"):
            check_ports({"--dbt-docs-port": port})
    finally:
        client.close()
