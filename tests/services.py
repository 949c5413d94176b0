"""The shared Redis and PostgreSQL the suite talks to, and throwaway instances of them.

Tests never disturb other users of the shared servers: each gets its own
database or key prefix and removes it after. When a service is missing, the
test is skipped with the reason printed, except in CI (CI=true), where a
skipped Redis or PostgreSQL test is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
# The database we connect to in order to create and drop per-test databases.
PG_ADMIN_DB = os.environ.get("TEST_PG_DATABASE", "test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing(service: str, reason: str) -> None:
    """Skip locally with a printed reason; fail in CI, where every service must be there."""
    message = f"{service} is not available: {reason}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: a skipped {service} test is a failure)")
    print(f"SKIP: {message}")
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- PostgreSQL --------------------------------------------------------------


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_url(PG_ADMIN_DB), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pg_admin(*statements: str) -> None:
    """Run statements on the admin database (from sync code or a running loop alike)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_pg_admin(*statements))
        return
    # Inside a test's event loop: run on a private loop in a thread.
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_pg_admin(*statements))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def create_pg_database() -> str:
    """A fresh database on the shared PostgreSQL; returns its URL. Skips if unreachable."""
    if not _port_open(PG_HOST, PG_PORT):
        missing("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    name = f"pitchey_test_{uuid.uuid4().hex[:12]}"
    try:
        pg_admin(f"CREATE DATABASE {name}")
    except Exception as exc:
        missing("PostgreSQL", f"cannot create a database: {exc!r}")
    return pg_url(name)


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    assert name.startswith("pitchey_test_"), name  # only ever our own databases
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---- Redis -------------------------------------------------------------------------


def require_redis() -> str:
    """The shared Redis URL; skips (fails in CI) if it does not answer."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as exc:
        missing("Redis", f"{REDIS_URL} does not answer: {exc!r}")
    return REDIS_URL


def redis_prefix() -> str:
    return f"pitchey-test-{uuid.uuid4().hex[:10]}:"


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class ThrowawayRedis:
    """A private redis-server on its own port, which tests may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("Redis", "redis-server is not installed")
        assert binary is not None
        self.binary = binary
        self.workdir = workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / f"redis-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _port_open("127.0.0.1", self.port):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class ThrowawayCluster:
    """A private three-master Redis Cluster (Redis >= 7) on free ports, in its own folder.

    Without replicas a master killed with `kill(i)` is down until `start(i)` runs it again
    with its nodes.conf, so it takes back its own slots (empty: nothing is saved), as a master
    restarted by a supervisor would. With `replicas=1` each master has a replica that takes
    over its slots when it dies (failover). `cluster-require-full-coverage no` keeps the other
    masters serving their slots meanwhile; a short node timeout lets them notice quickly.
    """

    MASTERS = 3

    def __init__(self, workdir: Path, replicas: int = 0) -> None:
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            missing("Redis", "redis-server and redis-cli are needed for a cluster")
        assert binary is not None and cli is not None
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        major = version.split("v=", 1)[-1].split(".", 1)[0]
        if not major.isdigit() or int(major) < 7:
            missing("Redis", f"sharded pub/sub needs redis-server 7 or later: {version.strip()}")
        self.binary, self.cli = binary, cli
        self.workdir = workdir
        self.ports: list[int] = []
        self.replicas = replicas
        size = self.MASTERS * (1 + replicas)
        while len(self.ports) < size:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port: int = sock.getsockname()[1]
            # The cluster bus listens on port + 10000.
            if port + 10000 < 65536 and port not in self.ports:
                self.ports.append(port)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def create(self, timeout: float = 10.0) -> None:
        for index in range(len(self.ports)):
            self.start(index, wait=False)
        for port in self.ports:
            _wait_port(port, timeout)
        addresses = [f"127.0.0.1:{p}" for p in self.ports]
        options = ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        subprocess.run(
            [self.cli, "--cluster", "create", *addresses, *options],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_ok(timeout)

    def start(self, index: int, wait: bool = True, timeout: float = 10.0) -> None:
        port = self.ports[index]
        folder = self.workdir / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        log = open(folder / "redis.log", "ab")
        self.procs[index] = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "500",
                "--cluster-require-full-coverage",
                "no",
                # A replica whose master went quiet takes over however old its copy: the
                # tests' masters see little traffic, and with the short node timeout the
                # default factor can refuse every failover.
                "--cluster-replica-validity-factor",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            _wait_port(port, timeout)

    def wait_ok(self, timeout: float = 10.0) -> None:
        """Until every running node says the cluster is ok: each knows the others and its
        slots. (With full coverage off a dead master's slots do not make it fail: this does
        not wait for a failover.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    [self.cli, "-p", str(port), "cluster", "info"],
                    capture_output=True,
                    text=True,
                ).stdout
                for port, proc in zip(self.ports, self.procs, strict=True)
                if proc is not None
            ]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.05)
        raise RuntimeError(f"Redis Cluster not ok within {timeout}s: {states}")

    def owner_of(self, key: str) -> int:
        """The index of the master that serves the key's slot (asked of a live master)."""
        from redis.crc import key_slot

        return self.owner_of_slot(key_slot(key.encode()))

    def owner_of_slot(self, slot: int) -> int:
        import redis

        for port in self.ports:
            client = redis.Redis(port=port, socket_connect_timeout=0.5)
            try:
                ranges = client.execute_command("CLUSTER SLOTS")
            except redis.ConnectionError:
                continue
            finally:
                client.close()
            for start, end, master, *_ in ranges:
                if start <= slot <= end:
                    return self.ports.index(int(master[1]))
        raise RuntimeError(f"no master serves slot {slot}")

    def move_slot(self, slot: int, to: int) -> None:
        """Reshard one slot, keys and all, to master `to` (what `redis-cli --cluster reshard`
        does, for one slot): IMPORTING/MIGRATING, MIGRATE each key, then tell every master."""
        import redis

        clients = [redis.Redis(port=port) for port in self.ports]
        try:
            ids = [c.execute_command("CLUSTER MYID").decode() for c in clients]
            source = self.owner_of_slot(slot)
            if source == to:
                return
            clients[to].execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source])
            clients[source].execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[to])
            while keys := clients[source].execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                clients[source].execute_command(
                    "MIGRATE", "127.0.0.1", self.ports[to], "", 0, 5000, "KEYS", *keys
                )
            for client in (clients[to], clients[source], *clients):
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", ids[to])
        finally:
            for client in clients:
                client.close()

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.procs[index] = None

    def destroy(self) -> None:
        for index in range(len(self.ports)):
            self.kill(index)


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open("127.0.0.1", port):
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not start on port {port}")
