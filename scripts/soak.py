#!/usr/bin/env python3
"""Soak test of Tessera: acknowledged writes and audited queries survive
restarts of the catalog and of PostgreSQL, and memory stays flat.

Run by hand (not in CI), through the bash entry, which installs this script's
venv (psycopg 3, and the ADBC Flight SQL driver with pyarrow when it can) and
picks the binary:

    scripts/soak [--minutes 30] [--binary PATH] [--scale 0.01] [--pause-ms 50]
                 [--writers 2] [--pg-connections 2] [--settle-seconds 60]

Setup, in a fresh temporary directory DIR (kept, with the logs and soak.json):

- a PostgreSQL database `tessera_soak_<pid>` on 127.0.0.1:5432 (dropped at
  the end);
- `tessera serve` on free ports with that database; the bootstrap admin key
  is read from its banner;
- the demo mesh (`tessera demo --scale 0.01`). The demo seeds from inside its
  own platform process (it starts the platform itself and ignores
  --endpoint), so it runs in between on the same data directory, database and
  ports: serve stops, the demo seeds the mesh and prints its personas, the
  demo stops, serve starts again. The personas' keys are read from
  DIR/data/demo/personas.json; queries run as the analyst `ana` (purpose
  `analytics`: masks and a row filter apply);
- a standalone `tessera gateway` named `soak_edge` following the catalog
  (principal soak_gateway with the gateway role, its key in the file
  DIR/gateway.key, data directory DIR/gateway).

Every process's stdout and stderr are in DIR/logs.

Load, for --minutes, on threads:

- writers: POST /api/v1/principals and /api/v1/teams with unique names; every
  name answered 2xx is recorded as acknowledged; 5xx (503 while the database
  is away) and connection errors are retried with the same name (a 409 on a
  retry means an earlier attempt went through unacknowledged);
- a policy changer: every 10 s creates or deletes a column mask on
  sales.orders, so the gateways' policy bundles change, and measures how long
  each gateway takes to report (GET /api/v1/gateways) a bundle as new as the
  catalog's version after the change;
- queries on both gateways (the embedded one: the catalog's /api/v1/query,
  PostgreSQL wire, Flight SQL; the standalone one: its HTTP, PostgreSQL wire,
  Flight SQL): HTTP requests, long-lived psycopg connections (reconnected
  when broken) and ADBC Flight SQL connections (skipped when the driver is
  missing). Every query carries a unique marker (`soak-s-...` on the
  standalone gateway, `soak-e-...` on the embedded one) in a string literal;
  each marker whose query succeeded is acknowledged;
- chaos: the catalog process is restarted (SIGTERM, then started again on the
  same ports, data directory and database) every 5 minutes (a third of the
  run when shorter, at least once), PostgreSQL once near the middle;
- a memory sampler: every 10 s, VmRSS of the catalog and of the standalone
  gateway, and the gateway's /metrics `tessera_gateway_sessions` and
  `tessera_gateway_audit_spool_pending_bytes`.

At the end (load stopped, then up to --settle-seconds for the audit spool to
drain and the sessions to close), it checks:

- every acknowledged principal and team is listed by the catalog;
- the last acknowledged state of each soak mask is the catalog's;
- every acknowledged standalone-gateway marker has exactly one audit record
  (GET /api/v1/domains/sales/products/orders/usage, every page); the embedded
  gateway's markers (on supply.part) are reported too, for information. A
  full page that comes without `next_cursor` is paged on with an id cursor
  and reported (see `Soak.pages`);
- memory flatness: median RSS of the last 20% of samples against the 20-40%
  window, as MB and MB/hour (the catalog's RSS starts over at each restart).

It prints a Markdown summary on stdout (progress goes to stderr), ending with
what misbehaved without failing the run (slow policy propagation, the
embedded gateway's audit losses, a spool counter that stays above 0,
sessions left open, a restart that needed SIGKILL...), writes the same as
JSON (with every memory sample) to DIR/soak.json, and exits 1 if an
acknowledged write or a standalone-gateway audit record is lost or
duplicated, or a mask is not in its last acknowledged state (2 when setup
fails, 130 when interrupted).
"""

import argparse
import atexit
import base64
import collections
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

try:
    import adbc_driver_flightsql.dbapi as flightsql
except ImportError:  # the bash entry could not install it: no Flight SQL load
    flightsql = None

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
STANDALONE_NAME = "soak_edge"
PERSONA, PURPOSE = "ana", "analytics"
MARKER = re.compile(r"soak-[se]-[a-z]+-[0-9a-f]{32}")
SAMPLE_EVERY_S = 10
POLICY_EVERY_S = 10
CATALOG_RESTART_EVERY_S = 300


class SetupError(Exception):
    """The soak could not start: nothing was measured."""


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- HTTP


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    body: bytes = b""
    error: str | None = None
    retry_after: float | None = None

    def json(self):
        return json.loads(self.body)

    def retryable(self):
        return self.status is None or self.status >= 500 or self.status == 429

    def describe(self):
        if self.status is None:
            return self.error or "no answer"
        try:
            problem = self.json()
            detail = problem.get("detail") or problem.get("title") or ""
        except (ValueError, AttributeError):
            detail = self.body[:120].decode(errors="replace")
        return f"HTTP {self.status} {detail}"[:160]


def call(method, url, key=None, body=None, headers=None, timeout=30.0):
    """One HTTP request; never raises for a failed request, answers what happened."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"Accept": "application/json"}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    if data is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except (OSError, http.client.HTTPException):
            body = b""
        retry_after = e.headers.get("Retry-After") if e.headers else None
        return Answer(e.code, body, retry_after=float(retry_after) if retry_after else None)
    except (OSError, http.client.HTTPException, ValueError) as e:
        return Answer(None, error=f"{type(e).__name__}: {e}"[:160])


def wait_ready(url, timeout, process=None):
    """Waits until GET url/ready answers 200; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            return False
        if call("GET", f"{url}/ready", timeout=5).status == 200:
            return True
        time.sleep(0.25)
    return False


def free_ports(count):
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# ---------------------------------------------------------------- processes


class Service:
    """One process the soak starts, stops and restarts; stdout and stderr
    are appended to logs/<name>.stdout.log and logs/<name>.stderr.log."""

    def __init__(self, name, argv, env, cwd, logs):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.stdout_path = logs / f"{name}.stdout.log"
        self.stderr_path = logs / f"{name}.stderr.log"
        self.proc = None
        self.starts = 0
        self.closed = False
        self.lock = threading.RLock()

    def start(self):
        with self.lock:
            if self.closed:
                raise SetupError(f"{self.name} is closed")
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,  # Ctrl-C reaches the soak only, which stops us in order
                )
            self.starts += 1

    def stop(self, timeout=30.0):
        """SIGTERM, then SIGKILL after `timeout`; True when it exited on SIGTERM."""
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                return True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM: killed")
                self.proc.kill()
                self.proc.wait()
                return False

    def close(self):
        with self.lock:
            self.closed = True
            self.stop(20)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.alive() else None

    def rss_mb(self):
        pid = self.pid()
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def wait_for_output(self, pattern, timeout):
        """Waits for `pattern` in its stdout; the match, or SetupError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.stdout_path.read_text(errors="replace"))
            if match:
                return match
            if not self.alive():
                raise SetupError(
                    f"{self.name} exited (status {self.proc.returncode}) before printing {pattern!r}: "
                    f"see {self.stderr_path}"
                )
            time.sleep(0.2)
        raise SetupError(f"{self.name} did not print {pattern!r} within {timeout:.0f} s: see {self.stderr_path}")


def psql(sql, database="postgres"):
    return subprocess.run(
        ["psql", f"{PG_SERVER}/{database}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pg_ready():
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0


def wait_pg_ready(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pg_ready():
            return True
        time.sleep(0.25)
    return False


def pg_cluster_version():
    """The newest installed cluster's version (for pg_ctlcluster), or None."""
    try:
        versions = os.listdir("/etc/postgresql")
    except OSError:
        return None
    versions = [v for v in versions if os.path.isdir(f"/etc/postgresql/{v}/main")]
    return max(versions, key=lambda v: [int(x) for x in re.findall(r"\d+", v)], default=None)


# ---------------------------------------------------------------- what the run records


@dataclass
class Gateway:
    """A gateway the soak queries, and how its audit records are checked."""

    name: str  # standalone or embedded
    letter: str  # in its markers
    query_url: str
    pg_port: int
    flight_port: int
    usage_product: tuple  # (domain, product) every query of it reads
    templates: list

    def marker(self, protocol):
        return f"soak-{self.letter}-{protocol}-{uuid.uuid4().hex}"

    def sql(self, index, marker):
        return self.templates[index % len(self.templates)].format(m=marker)


STANDALONE_QUERIES = [
    "SELECT count(*) FROM sales.orders WHERE o_comment <> '{m}'",
    "SELECT o_orderpriority, count(*) AS orders, sum(o_totalprice) AS total "
    "FROM sales.orders JOIN customers.customer ON o_custkey = c_custkey "
    "WHERE o_comment <> '{m}' GROUP BY o_orderpriority ORDER BY o_orderpriority",
]
EMBEDDED_QUERIES = [
    "SELECT count(*) FROM supply.part WHERE p_comment <> '{m}'",
    "SELECT p_brand, count(*) AS parts, avg(ps_supplycost) AS cost "
    "FROM supply.part JOIN supply.partsupp ON p_partkey = ps_partkey "
    "WHERE p_comment <> '{m}' GROUP BY p_brand ORDER BY p_brand LIMIT 10",
]


@dataclass
class Record:
    """Everything the load threads saw, behind one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    queries: dict = field(default_factory=lambda: collections.defaultdict(lambda: {"ok": 0, "failed": 0}))
    connect_failures: collections.Counter = field(default_factory=collections.Counter)
    errors: collections.Counter = field(default_factory=collections.Counter)
    acked_markers: dict = field(default_factory=lambda: collections.defaultdict(dict))
    acked_writes: dict = field(default_factory=lambda: {"principals": set(), "teams": set()})
    writes_retried: int = 0
    writes_committed_unacknowledged: int = 0
    writes_abandoned: int = 0
    writes_rejected: collections.Counter = field(default_factory=collections.Counter)
    mask_expected: dict = field(default_factory=dict)  # mask name -> exists, as last acknowledged
    mask_changes: int = 0
    mask_failures: collections.Counter = field(default_factory=collections.Counter)
    propagation: dict = field(default_factory=lambda: collections.defaultdict(list))  # gateway -> [s or None]
    restarts: list = field(default_factory=list)
    samples: list = field(default_factory=list)

    def query_ok(self, gateway, protocol, marker, at_s):
        with self.lock:
            self.queries[(gateway.name, protocol)]["ok"] += 1
            self.acked_markers[gateway.name][marker] = (protocol, round(at_s, 1))

    def query_failed(self, gateway, protocol, why):
        with self.lock:
            self.queries[(gateway.name, protocol)]["failed"] += 1
            self.errors[f"{gateway.name} {protocol}: {why}"] += 1

    def connect_failed(self, gateway, protocol, why):
        with self.lock:
            self.connect_failures[(gateway.name, protocol)] += 1
            self.errors[f"{gateway.name} {protocol} connect: {why}"] += 1


def short(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:160]


# ---------------------------------------------------------------- the soak


class Soak:
    """One soak run: its processes, its load threads, its checks."""

    def __init__(self, args):
        self.args = args
        self.binary = str(Path(args.binary).resolve())
        self.dir = Path(tempfile.mkdtemp(prefix="tessera-soak-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.database = f"tessera_soak_{os.getpid()}"
        self.database_created = False
        self.duration_s = args.minutes * 60
        self.stop = threading.Event()
        self.record = Record()
        self.threads = []
        self.started_at = None
        self.load_s = 0.0
        self.chaos_schedule = []
        self.cleaned = False
        self.pg_version = pg_cluster_version()

        api, pg, flight, gw_http, gw_pg, gw_flight = free_ports(6)
        self.catalog_url = f"http://127.0.0.1:{api}"
        self.api = f"{self.catalog_url}/api/v1"
        self.gateway_url = f"http://127.0.0.1:{gw_http}"
        serve_flags = [
            "--data-dir", str(self.dir / "data"),
            "--database-url", f"{PG_SERVER}/{self.database}",
            "--listen", f"127.0.0.1:{api}",
            "--pg-listen", f"127.0.0.1:{pg}",
            "--flight-listen", f"127.0.0.1:{flight}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        self.catalog = Service("catalog", [self.binary, "serve", *serve_flags], env, self.dir, self.logs)
        self.demo = Service(
            "demo", [self.binary, "demo", "--scale", str(args.scale), *serve_flags], env, self.dir, self.logs
        )
        gateway_env = dict(env, TESSERA_GATEWAY_DATA_DIR=str(self.dir / "gateway"), TESSERA_GATEWAY_NAME=STANDALONE_NAME)
        self.gateway = Service(
            "gateway",
            [
                self.binary, "gateway",
                "--endpoint", self.catalog_url,
                "--key-file", str(self.dir / "gateway.key"),
                "--http-listen", f"127.0.0.1:{gw_http}",
                "--pg-listen", f"127.0.0.1:{gw_pg}",
                "--flight-listen", f"127.0.0.1:{gw_flight}",
            ],
            gateway_env,
            self.dir,
            self.logs,
        )  # fmt: skip
        self.standalone = Gateway(
            "standalone", "s", f"{self.gateway_url}/api/v1/query", gw_pg, gw_flight, ("sales", "orders"),
            STANDALONE_QUERIES,
        )  # fmt: skip
        self.embedded = Gateway(
            "embedded", "e", f"{self.api}/query", pg, flight, ("supply", "part"), EMBEDDED_QUERIES
        )
        self.admin_key = None
        self.query_key = None
        self.truncated_listings = set()

    # ------------------------------------------------------------ setup

    def set_up(self):
        log(f"soak directory {self.dir}, binary {self.binary}")
        result = psql(f'CREATE DATABASE "{self.database}"')
        if result.returncode != 0:
            raise SetupError(f"cannot create database {self.database}: {result.stderr.strip()}")
        self.database_created = True
        log(f"database {self.database} created")

        self.catalog.start()
        match = self.catalog.wait_for_output(r"Bootstrap admin API key \(shown once\): (tsk_[0-9a-f_]+)", 120)
        self.admin_key = match.group(1)
        if not wait_ready(self.catalog_url, 60, self.catalog):
            raise SetupError(f"the catalog is not ready: see {self.catalog.stderr_path}")
        log(f"catalog serving at {self.catalog_url} (bootstrap admin key read from its banner)")

        self.seed_demo_mesh()

        # The standalone gateway's own principal: a service principal with
        # the gateway role (an admin's key reads no bundle).
        created = call("POST", f"{self.api}/principals", self.admin_key,
                       {"name": "soak_gateway", "kind": "service", "roles": ["gateway"]})
        if created.status not in (201, 409):
            raise SetupError(f"cannot create the gateway's principal: {created.describe()}")
        key = call("POST", f"{self.api}/principals/soak_gateway/keys", self.admin_key, {})
        if key.status != 201:
            raise SetupError(f"cannot issue the gateway's key: {key.describe()}")
        key_file = self.dir / "gateway.key"
        key_file.write_text(key.json()["key"] + "\n")
        key_file.chmod(0o600)
        self.gateway.start()
        if not wait_ready(self.gateway_url, 120, self.gateway):
            raise SetupError(f"the standalone gateway is not ready: see {self.gateway.stderr_path}")
        for gateway in (self.standalone, self.embedded):
            sql = gateway.sql(0, gateway.marker("setup"))
            answer = call("POST", gateway.query_url, self.query_key, {"sql": sql}, {"Tessera-Purpose": PURPOSE}, 60)
            if answer.status != 200:
                raise SetupError(f"the {gateway.name} gateway does not answer {sql!r}: {answer.describe()}")
        log(f"standalone gateway {STANDALONE_NAME} serving at {self.gateway_url}")

    def seed_demo_mesh(self):
        """`tessera demo` seeds from its own platform process, not through
        --endpoint: it runs on the same data directory, database and ports
        while serve is stopped."""
        self.catalog.stop()
        self.demo.start()
        self.demo.wait_for_output(r"Stop with Ctrl-C", 900)
        self.demo.close()
        keys = json.loads((self.dir / "data" / "demo" / "personas.json").read_text())["keys"]
        self.query_key = keys[PERSONA]
        self.catalog.start()
        if not wait_ready(self.catalog_url, 120, self.catalog):
            raise SetupError(f"the catalog is not ready after the demo: see {self.catalog.stderr_path}")
        if call("GET", f"{self.api}/whoami", self.admin_key).status != 200:
            raise SetupError("the bootstrap admin key no longer works after the demo")
        log(f"demo mesh seeded at scale factor {self.args.scale}; queries run as {PERSONA} ({PURPOSE})")

    # ------------------------------------------------------------ load

    def run_load(self):
        self.started_at = time.monotonic()
        self.chaos_schedule = self.schedule()
        log(
            f"load for {self.args.minutes:g} min; chaos: "
            + ", ".join(f"{what} at {at:.0f} s" for at, what in self.chaos_schedule)
        )
        if flightsql is None:
            log("adbc_driver_flightsql is not installed: no Flight SQL load")
        spawn = self.spawn
        for i in range(self.args.writers):
            spawn(f"writer-{i}", self.writer, i)
        spawn("policy", self.policy_changer)
        for gateway in (self.standalone, self.embedded):
            spawn(f"http-{gateway.name}", self.http_queries, gateway)
            for slot in range(self.args.pg_connections):
                spawn(f"pg-{gateway.name}-{slot}", self.pg_queries, gateway)
            if flightsql is not None:
                spawn(f"flight-{gateway.name}", self.flight_queries, gateway)
        spawn("chaos", self.chaos)
        spawn("sampler", self.sampler)

        end = self.started_at + self.duration_s
        while not self.stop.wait(min(60, max(0.1, end - time.monotonic()))):
            if time.monotonic() >= end:
                break
            self.progress()
        self.stop.set()
        self.load_s = time.monotonic() - self.started_at
        log("load stopped; waiting for the load threads")
        for thread in self.threads:
            thread.join(timeout=120)
            if thread.is_alive():
                log(f"thread {thread.name} did not finish within 120 s")

    def spawn(self, name, target, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def elapsed(self):
        return time.monotonic() - self.started_at

    def pause(self):
        return self.stop.wait(self.args.pause_ms / 1000)

    def progress(self):
        with self.record.lock:
            ok = sum(q["ok"] for q in self.record.queries.values())
            failed = sum(q["failed"] for q in self.record.queries.values())
            writes = sum(len(names) for names in self.record.acked_writes.values())
        log(f"{self.elapsed() / 60:.1f} min: {writes} writes acknowledged, {ok} queries ok, {failed} failed")

    def schedule(self):
        """Catalog restarts every 5 minutes (a third of a shorter run, at
        least once) and PostgreSQL's restart near the middle, between two
        catalog restarts; nothing in the last 10 seconds."""
        every = max(20.0, min(CATALOG_RESTART_EVERY_S, self.duration_s / 3))
        events = []
        at = every
        while at < self.duration_s - 10:
            events.append((at, "catalog"))
            at += every
        if not events:
            events.append((self.duration_s / 3, "catalog"))
        postgres_at = (int(self.duration_s / 2 // every) + 0.5) * every
        if postgres_at >= self.duration_s - 10:
            postgres_at = self.duration_s / 2
        events.append((postgres_at, "postgres"))
        return sorted(events)

    # writers

    def writer(self, index):
        """Creates principals and teams, one after the other, until the load stops."""
        n = 0
        while not self.stop.is_set():
            kind = ("principals", "teams")[n % 2]
            self.acknowledged_write(kind, f"soak_{kind[0]}{index}_{n}")
            n += 1
            self.pause()

    def acknowledged_write(self, kind, name):
        body = {"name": name, "kind": "user"} if kind == "principals" else {"name": name, "title": "Soak team"}
        retried = False
        deadline = time.monotonic() + 90
        record = self.record
        while True:
            answer = call("POST", f"{self.api}/{kind}", self.admin_key, body, timeout=30)
            if answer.status in (200, 201):
                with record.lock:
                    record.acked_writes[kind].add(name)
                return
            if answer.status == 409 and retried:
                with record.lock:  # an earlier attempt went through, its answer lost
                    record.writes_committed_unacknowledged += 1
                return
            if not answer.retryable():
                with record.lock:
                    record.writes_rejected[f"{kind}: {answer.describe()}"] += 1
                return
            if time.monotonic() > deadline:
                with record.lock:
                    record.writes_abandoned += 1
                    record.errors[f"write {kind} abandoned after 90 s: {answer.describe()}"] += 1
                return
            with record.lock:
                record.writes_retried += 1
                record.errors[f"write {kind} retried: {answer.describe()}"] += 1
            retried = True
            time.sleep(min(answer.retry_after or 0.5, 2))

    # policy changer

    def policy_changer(self):
        """Every 10 s: creates soak_mask_<n> on sales.orders, or deletes it."""
        n, current, existing, attempted = 0, None, False, False
        tick = time.monotonic()
        while True:
            tick += POLICY_EVERY_S
            if self.stop.wait(max(0.0, tick - time.monotonic())):
                return
            if current is None:
                current, existing = f"soak_mask_{n}", False
                n += 1
            if not existing:
                spec = {
                    "name": current,
                    "target": {"kind": "product", "domain": "sales", "product": "orders"},
                    "columns": {"kind": "column", "column": "o_orderpriority"},
                    "function": {"kind": "partial", "keep": 3},
                }
                done = self.policy_call("POST", f"{self.api}/masks", spec, (200, 201), 409, attempted)
            else:
                done = self.policy_call("DELETE", f"{self.api}/masks/{current}", None, (200, 204), 404, attempted)
            attempted = not done
            if done:
                existing = not existing
                with self.record.lock:
                    self.record.mask_expected[current] = existing
                    self.record.mask_changes += 1
                if not existing:
                    current = None
                self.measure_propagation(tick + POLICY_EVERY_S - 1)

    def measure_propagation(self, deadline):
        """Seconds from an acknowledged policy change until each gateway
        reports (GET /api/v1/gateways) a bundle at least as new as the
        catalog's version after it; None for one not there by `deadline`."""
        began = time.monotonic()
        answer = call("GET", f"{self.api}/version", self.admin_key, timeout=5)
        if answer.status != 200:
            return
        version = answer.json()["version"]
        lag = {"standalone": None, "embedded": None}
        while True:
            if self.stop.is_set():
                return  # the run ended meanwhile: not measured
            answer = call("GET", f"{self.api}/gateways", self.admin_key, timeout=5)
            if answer.status == 200:
                for gateway in answer.json():
                    which = "standalone" if gateway["name"] == STANDALONE_NAME else "embedded"
                    if lag[which] is None and gateway.get("version", -1) >= version:
                        lag[which] = round(time.monotonic() - began, 2)
            if None not in lag.values() or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        with self.record.lock:
            for which, seconds in lag.items():
                self.record.propagation[which].append(seconds)

    def policy_call(self, method, url, body, ok, done_earlier, retried):
        """One acknowledged policy change, retried for up to 8 s; `done_earlier`
        on a retry (also of an earlier tick's attempt: `retried`) means an
        unacknowledged earlier attempt went through."""
        deadline = time.monotonic() + 8
        while True:
            answer = call(method, url, self.admin_key, body, timeout=10)
            if answer.status in ok or (retried and answer.status == done_earlier):
                return True
            with self.record.lock:
                self.record.mask_failures[f"{method} mask: {answer.describe()}"] += 1
            if not answer.retryable() or time.monotonic() > deadline or self.stop.is_set():
                return False
            retried = True
            time.sleep(0.5)

    # queries

    def http_queries(self, gateway):
        index = 0
        while not self.stop.is_set():
            marker = gateway.marker("http")
            sql = gateway.sql(index, marker)
            index += 1
            answer = call("POST", gateway.query_url, self.query_key, {"sql": sql}, {"Tessera-Purpose": PURPOSE}, 60)
            try:
                answered = answer.status == 200 and isinstance(answer.json().get("rows"), list)
            except ValueError:
                answered = False
            if answered:
                self.record.query_ok(gateway, "http", marker, self.elapsed())
            else:
                self.record.query_failed(gateway, "http", answer.describe())
                self.stop.wait(0.5)
            self.pause()

    def pg_queries(self, gateway):
        """One long-lived PostgreSQL-wire connection, reconnected when broken."""
        conn, index = None, 0
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = psycopg.connect(
                        host="127.0.0.1",
                        port=gateway.pg_port,
                        dbname="tessera",
                        user=PERSONA,
                        password=self.query_key,
                        options=f"-c tessera.purpose={PURPOSE}",
                        autocommit=True,
                        connect_timeout=10,
                    )
                except Exception as e:  # noqa: BLE001 - any failure is recorded and retried
                    self.record.connect_failed(gateway, "pg", short(e))
                    self.stop.wait(1)
                    continue
            marker = gateway.marker("pg")
            sql = gateway.sql(index, marker)
            index += 1
            try:
                conn.execute(sql).fetchall()
                self.record.query_ok(gateway, "pg", marker, self.elapsed())
            except Exception as e:  # noqa: BLE001
                self.record.query_failed(gateway, "pg", short(e))
                if conn.broken or conn.closed:
                    conn.close()
                    conn = None
                    self.stop.wait(0.5)
            self.pause()
        if conn is not None:
            conn.close()

    def flight_queries(self, gateway):
        """One ADBC Flight SQL connection, made anew after a failure."""
        conn, index = None, 0
        options = {
            "adbc.flight.sql.authorization_header": f"Bearer {self.query_key}",
            "adbc.flight.sql.rpc.call_header.tessera-purpose": PURPOSE,
            "adbc.flight.sql.rpc.timeout_seconds.query": "60",
            "adbc.flight.sql.rpc.timeout_seconds.fetch": "60",
        }
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = flightsql.connect(
                        f"grpc://127.0.0.1:{gateway.flight_port}", db_kwargs=options, autocommit=True
                    )
                except Exception as e:  # noqa: BLE001
                    self.record.connect_failed(gateway, "flight", short(e))
                    self.stop.wait(1)
                    continue
            marker = gateway.marker("flight")
            sql = gateway.sql(index, marker)
            index += 1
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetchall()
                self.record.query_ok(gateway, "flight", marker, self.elapsed())
            except Exception as e:  # noqa: BLE001
                self.record.query_failed(gateway, "flight", short(e))
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                self.stop.wait(0.5)
            self.pause()
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    # chaos

    def chaos(self):
        for at, what in self.chaos_schedule:
            if self.stop.wait(max(0.0, self.started_at + at - time.monotonic())):
                return
            if what == "catalog":
                self.restart_catalog()
            else:
                self.restart_postgres()

    def restart_catalog(self):
        at = self.elapsed()
        log(f"chaos: restarting the catalog (SIGTERM) at {at:.0f} s")
        began = time.monotonic()
        graceful = self.catalog.stop(30)
        stopped_s = time.monotonic() - began
        try:
            self.catalog.start()
        except SetupError:
            return
        ready = wait_ready(self.catalog_url, 120, self.catalog)
        downtime = time.monotonic() - began
        log(f"chaos: catalog back in {downtime:.1f} s (stopped in {stopped_s:.1f} s)" if ready else "catalog NOT back")
        with self.record.lock:
            self.record.restarts.append(
                {"what": "catalog", "at_s": round(at, 1), "stop_s": round(stopped_s, 2),
                 "downtime_s": round(downtime, 2), "graceful": graceful, "back": ready}
            )  # fmt: skip

    def restart_postgres(self):
        at = self.elapsed()
        if self.pg_version is None:
            log("chaos: no /etc/postgresql cluster: PostgreSQL is not restarted")
            return
        log(f"chaos: restarting PostgreSQL {self.pg_version} at {at:.0f} s")
        began = time.monotonic()
        result = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.pg_version, "main", "restart"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        pg_back = wait_pg_ready(120)
        pg_s = time.monotonic() - began
        catalog_back = wait_ready(self.catalog_url, 120, self.catalog)
        catalog_s = time.monotonic() - began
        log(f"chaos: PostgreSQL back in {pg_s:.1f} s, the catalog ready again after {catalog_s:.1f} s")
        with self.record.lock:
            self.record.restarts.append(
                {"what": "postgres", "at_s": round(at, 1), "downtime_s": round(pg_s, 2),
                 "catalog_ready_s": round(catalog_s, 2), "back": pg_back and catalog_back,
                 "exit_status": result.returncode, "stderr": result.stderr.strip()[:300]}
            )  # fmt: skip

    # memory

    def sampler(self):
        while True:
            self.take_sample()
            if self.stop.wait(SAMPLE_EVERY_S):
                return

    def gateway_metrics(self):
        answer = call("GET", f"{self.gateway_url}/metrics", self.admin_key, timeout=5)
        if answer.status != 200:
            return {}
        metrics = {}
        for line in answer.body.decode(errors="replace").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition(" ")
                try:
                    metrics[name] = float(value)
                except ValueError:
                    pass
        return metrics

    def take_sample(self):
        metrics = self.gateway_metrics()
        sample = {
            "t_s": round(self.elapsed(), 1),
            "catalog_run": self.catalog.starts,
            "catalog_rss_mb": self.catalog.rss_mb(),
            "gateway_rss_mb": self.gateway.rss_mb(),
            "sessions": metrics.get("tessera_gateway_sessions"),
            "spool_pending_bytes": metrics.get("tessera_gateway_audit_spool_pending_bytes"),
        }
        with self.record.lock:
            self.record.samples.append(sample)

    # ------------------------------------------------------------ verification

    def settle_and_verify(self):
        """Waits (up to --settle-seconds) for the spool to drain and the
        sessions to close, then checks; checks again while the audit is
        incomplete and settle time is left."""
        began = time.monotonic()
        deadline = began + self.args.settle_seconds
        metrics = {}
        time.sleep(min(5, self.args.settle_seconds))  # the embedded gateway ships from memory
        while time.monotonic() < deadline:
            metrics = self.gateway_metrics()
            written = metrics.get("tessera_gateway_audit_spool_written_total", 0)
            shipped = metrics.get("tessera_gateway_audit_spool_shipped_total", -1)
            if shipped >= written and metrics.get("tessera_gateway_sessions") == 0:
                break
            time.sleep(1)
        while True:
            audit = {gateway.name: self.verify_audit(gateway) for gateway in (self.standalone, self.embedded)}
            if not audit["standalone"]["lost"] or time.monotonic() >= deadline:
                break
            time.sleep(3)
        metrics = self.gateway_metrics()
        settled = {"settle_s": round(time.monotonic() - began, 1)} | {
            key: number(metrics.get(f"tessera_gateway_{name}"))
            for key, name in [
                ("sessions", "sessions"),
                ("spool_pending_bytes", "audit_spool_pending_bytes"),
                ("spool_written_total", "audit_spool_written_total"),
                ("spool_shipped_total", "audit_spool_shipped_total"),
                ("spool_dropped_total", "audit_spool_dropped_total"),
                ("spool_refused_total", "audit_spool_refused_total"),
            ]
        }
        return {
            "writes": self.verify_writes(),
            "masks": self.verify_masks(),
            "audit": audit,
            "gateways": self.gateway_sync(),
            "after_settle": settled,
        }

    def get_json(self, url, attempts=30):
        """GET with retries (the catalog may still be coming back); the JSON answer."""
        for _ in range(attempts):
            answer = call("GET", url, self.admin_key, timeout=60)
            if answer.status == 200:
                return answer.json()
            if not answer.retryable():
                raise RuntimeError(f"GET {url}: {answer.describe()}")
            time.sleep(1)
        raise RuntimeError(f"GET {url}: {answer.describe()}")

    def pages(self, path, id_cursor=False):
        """Every item of a paginated listing (limit 500, next_cursor).

        `id_cursor`: a listing keyed by `id` whose full pages may come without
        a `next_cursor` (Tessera's usage listing did, at the time of writing:
        its store fetches `limit` rows where the paging helper needs
        `limit + 1` to see more). Then the listing goes on with a cursor made
        as the API makes its own (base64url of the last id), and the run
        reports the listing as truncated by the API.
        """
        cursor, limit = None, 500
        while True:
            query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = self.get_json(f"{self.api}/{path}?{urllib.parse.urlencode(query)}")
            items = page["items"]
            yield from items
            cursor = page.get("next_cursor")
            if not cursor and id_cursor and len(items) == limit:
                self.truncated_listings.add(path)
                cursor = base64.urlsafe_b64encode(str(items[-1]["id"]).encode()).rstrip(b"=").decode()
            if not cursor:
                return

    def verify_writes(self):
        result = {}
        for kind, acked in self.record.acked_writes.items():
            listed = {item["name"] for item in self.pages(kind)}
            lost = sorted(acked - listed)
            result[kind] = {"acknowledged": len(acked), "lost": len(lost), "lost_names": lost[:50]}
        return result

    def verify_masks(self):
        wrong = []
        for name, exists in self.record.mask_expected.items():
            status = call("GET", f"{self.api}/masks/{name}", self.admin_key).status
            if status != (200 if exists else 404):
                wrong.append({"mask": name, "expected": "present" if exists else "absent", "status": status})
        return {"changes_acknowledged": self.record.mask_changes, "wrong_final_state": wrong}

    def verify_audit(self, gateway):
        """Counts the audit records of each acknowledged marker of `gateway`."""
        domain, product = gateway.usage_product
        expected = self.record.acked_markers[gateway.name]
        counts = collections.Counter()
        not_ok, wrong_gateway = [], []
        prefix = f"soak-{gateway.letter}-"
        for item in self.pages(f"domains/{domain}/products/{product}/usage", id_cursor=True):
            record = item["record"]
            for marker in set(MARKER.findall(record.get("sql", ""))):
                if not marker.startswith(prefix):
                    continue
                counts[marker] += 1
                if marker in expected and record.get("outcome") != "ok":
                    not_ok.append({"marker": marker, "outcome": record.get("outcome")})
                if gateway is self.standalone and item.get("gateway") != STANDALONE_NAME:
                    wrong_gateway.append({"marker": marker, "gateway": item.get("gateway")})
        lost = sorted(m for m in expected if counts[m] == 0)
        duplicated = sorted(m for m in expected if counts[m] > 1)
        by_protocol = collections.Counter(expected[m][0] for m in lost)
        return {
            "usage_of": f"{domain}.{product}",
            "expected": len(expected),
            "found": sum(1 for m in expected if counts[m] >= 1),
            "lost": len(lost),
            "lost_by_protocol": dict(by_protocol),
            "duplicated": len(duplicated),
            "unacknowledged_audited": sum(1 for m in counts if m not in expected and "-setup-" not in m),
            "not_ok": not_ok[:20],
            "wrong_gateway": wrong_gateway[:20],
            # When each lost query was answered (seconds into the load): compare with the restarts.
            "lost_at_s": sorted(collections.Counter(expected[m][1] // 1 for m in lost).items()),
            "lost_markers": [{"marker": m, "protocol": expected[m][0], "at_s": expected[m][1]} for m in lost[:50]],
            "duplicated_markers": [
                {"marker": m, "records": counts[m], "protocol": expected[m][0], "at_s": expected[m][1]}
                for m in duplicated[:50]
            ],
        }

    def gateway_sync(self):
        try:
            version = self.get_json(f"{self.api}/version")
            gateways = self.get_json(f"{self.api}/gateways")
        except RuntimeError as e:
            return {"error": str(e)}
        items = gateways if isinstance(gateways, list) else gateways.get("items", [])
        return {
            "catalog_version": version.get("version") if isinstance(version, dict) else version,
            "gateways": [{k: g.get(k) for k in ("name", "state", "version", "error")} for g in items],
        }


# ---------------------------------------------------------------- memory flatness


def flatness(samples, key):
    """RSS start, end, peak, and the growth of the median of the last 20% of
    samples over the median of the 20%-40% window (MB and MB/hour)."""
    points = [(s["t_s"], s[key]) for s in samples if s.get(key) is not None]
    if not points:
        return {"samples": 0}
    values = [v for _, v in points]
    result = {
        "samples": len(points),
        "start_mb": round(values[0], 1),
        "end_mb": round(values[-1], 1),
        "peak_mb": round(max(values), 1),
    }
    n = len(points)
    early = points[int(n * 0.2) : max(int(n * 0.4), int(n * 0.2) + 1)]
    late = points[int(n * 0.8) :]
    if n < 5 or not early or not late:
        return result | {"growth_mb": None, "mb_per_hour": None, "note": "too few samples"}
    growth = statistics.median(v for _, v in late) - statistics.median(v for _, v in early)
    hours = (statistics.median(t for t, _ in late) - statistics.median(t for t, _ in early)) / 3600
    return result | {
        "growth_mb": round(growth, 1),
        "mb_per_hour": round(growth / hours, 1) if hours > 0 else None,
    }


def propagation_stats(lags):
    """Median and max of the measured policy propagation delays, and how
    many changes were not served within the measuring window."""
    seen = [lag for lag in lags if lag is not None]
    return {
        "changes": len(lags),
        "median_s": round(statistics.median(seen), 2) if seen else None,
        "max_s": max(seen) if seen else None,
        "not_within_window": len(lags) - len(seen),
        "window_s": f"about {POLICY_EVERY_S - 1}",
    }


def number(value):
    """A metric's value as people read it: 3, not 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def spread(samples, key):
    values = [s[key] for s in samples if s.get(key) is not None]
    if not values:
        return {}
    return {"start": number(values[0]), "end": number(values[-1]), "peak": number(max(values))}


# ---------------------------------------------------------------- the report


def summarize(soak, checks):
    record = soak.record
    queries = {}
    for (gateway, protocol), counts in sorted(record.queries.items()):
        queries.setdefault(gateway, {})[protocol] = dict(
            counts, connect_failures=record.connect_failures.get((gateway, protocol), 0)
        )
    for gateway, protocol in record.connect_failures:
        queries.setdefault(gateway, {}).setdefault(
            protocol, {"ok": 0, "failed": 0, "connect_failures": record.connect_failures[(gateway, protocol)]}
        )
    writes = checks["writes"]
    audit = checks["audit"]
    standalone = audit["standalone"]
    failures = []
    lost_writes = sum(w["lost"] for w in writes.values())
    if lost_writes:
        failures.append(f"{lost_writes} acknowledged writes lost")
    if standalone["lost"]:
        failures.append(f"{standalone['lost']} acknowledged standalone-gateway queries have no audit record")
    if standalone["duplicated"]:
        failures.append(f"{standalone['duplicated']} standalone-gateway queries have more than one audit record")
    if checks["masks"]["wrong_final_state"]:
        failures.append(f"{len(checks['masks']['wrong_final_state'])} masks not in their acknowledged state")
    restarts = collections.Counter(r["what"] for r in record.restarts)
    warnings = noticed(soak, checks, record)
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - soak.load_s)),
        "minutes": round(soak.load_s / 60, 2),
        "binary": soak.binary,
        "scale": soak.args.scale,
        "data_dir": str(soak.dir),
        "flight_sql": "adbc_driver_flightsql" if flightsql is not None else "skipped (adbc_driver_flightsql missing)",
        "writes": {
            "acknowledged": sum(w["acknowledged"] for w in writes.values()),
            "lost": lost_writes,
            "by_kind": writes,
            "retried": record.writes_retried,
            "committed_unacknowledged": record.writes_committed_unacknowledged,
            "abandoned": record.writes_abandoned,
            "rejected": dict(record.writes_rejected),
        },
        "policy": checks["masks"]
        | {
            "failed_attempts": dict(record.mask_failures),
            "propagation": {gateway: propagation_stats(lags) for gateway, lags in sorted(record.propagation.items())},
        },
        "queries": queries,
        "audit": audit,
        "restarts": {"catalog": restarts["catalog"], "postgres": restarts["postgres"], "events": record.restarts},
        "memory": {
            "catalog": flatness(record.samples, "catalog_rss_mb")
            | {"note": f"restarted {restarts['catalog']} times: its RSS starts over at each start"},
            "gateway": flatness(record.samples, "gateway_rss_mb"),
            "gateway_sessions": spread(record.samples, "sessions"),
            "gateway_spool_pending_bytes": spread(record.samples, "spool_pending_bytes"),
        },
        "after_settle": checks["after_settle"],
        "gateways": checks["gateways"],
        "top_errors": [{"count": n, "error": e} for e, n in record.errors.most_common(15)],
        "listings_without_next_cursor": sorted(soak.truncated_listings),
        "failures": failures,
        "warnings": warnings,
        "samples": record.samples,
    }


def noticed(soak, checks, record):
    """What misbehaved without failing the run (the run fails on lost or
    duplicated writes and standalone-gateway audit records only)."""
    warnings = []
    after = checks["after_settle"]
    if (after.get("spool_pending_bytes") or 0) > 0:
        drained = (after.get("spool_shipped_total") or 0) >= (after.get("spool_written_total") or 0)
        warnings.append(
            f"the standalone gateway's audit spool still counts {after['spool_pending_bytes']} bytes pending after "
            f"the settle period"
            + (" although every record written was shipped (a drifting counter)" if drained else "")
        )
    if after.get("sessions"):
        warnings.append(f"{after['sessions']} gateway sessions still alive after the load stopped")
    standalone = checks["audit"]["standalone"]
    if standalone["not_ok"] or standalone["wrong_gateway"]:
        warnings.append(
            f"standalone-gateway audit records of successful queries: {len(standalone['not_ok'])} with an error "
            f"outcome, {len(standalone['wrong_gateway'])} under another gateway's name"
        )
    embedded = checks["audit"]["embedded"]
    if embedded["lost"] or embedded["duplicated"]:
        warnings.append(
            f"the embedded gateway lost {embedded['lost']} and duplicated {embedded['duplicated']} audit records"
            f"{lost_when(embedded)}"
        )
    for gateway, lags in sorted(record.propagation.items()):
        late = sum(1 for lag in lags if lag is None)
        if late:
            warnings.append(
                f"{late} of {len(lags)} policy changes did not reach the {gateway} gateway within about "
                f"{POLICY_EVERY_S - 1} s"
            )
    killed = sum(1 for r in record.restarts if r["what"] == "catalog" and not r["graceful"])
    if killed:
        warnings.append(f"the catalog needed SIGKILL {killed} times")
    if any(not r["back"] for r in record.restarts):
        warnings.append("a restart did not come back within 120 s")
    if soak.truncated_listings:
        listings = ", ".join(f"`{path}`" for path in sorted(soak.truncated_listings))
        warnings.append(f"full pages came without next_cursor (paged on with id cursors): {listings}")
    return warnings


def lost_when(audit):
    """Where in the load the lost queries were answered, e.g. ` (answered at 60 s: 7, 120 s: 11)`."""
    if not audit["lost_at_s"]:
        return ""
    return " (answered at " + ", ".join(f"{t:g} s: {n}" for t, n in audit["lost_at_s"][:8]) + ")"


def markdown(summary):
    s = summary
    w = s["writes"]
    a, e = s["audit"]["standalone"], s["audit"]["embedded"]
    events = s["restarts"]["events"]
    catalog_downtimes = ", ".join(f"{r['downtime_s']:.1f} s" for r in events if r["what"] == "catalog")
    pg_downtimes = ", ".join(
        f"{r['downtime_s']:.1f} s (catalog ready after {r['catalog_ready_s']:.1f} s)"
        for r in events
        if r["what"] == "postgres"
    )
    killed = sum(1 for r in events if r["what"] == "catalog" and not r["graceful"])
    after = s["after_settle"]
    lines = [
        f"### Soak run of {s['started']}: {s['minutes']:g} min, {Path(s['binary']).parent.name} binary, "
        f"scale factor {s['scale']:g}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| catalog writes | {w['acknowledged']} acknowledged, **{w['lost']} lost**; {w['retried']} retries after 5xx "
        f"or connection errors, {w['committed_unacknowledged']} committed unacknowledged, {w['abandoned']} abandoned, "
        f"{sum(w['rejected'].values())} rejected |",
        f"| policy changes (mask created or deleted every {POLICY_EVERY_S} s) | {s['policy']['changes_acknowledged']} "
        f"acknowledged, {len(s['policy']['wrong_final_state'])} not in their acknowledged state |",
        *[
            f"| policy propagation to the {gateway} gateway | median {p['median_s'] or '-'} s, max {p['max_s'] or '-'} s; "
            f"{p['not_within_window']} of {p['changes']} changes not served within {p['window_s']} s |"
            for gateway, p in s["policy"]["propagation"].items()
        ],
        f"| audit, standalone gateway ({a['usage_of']}) | {a['expected']} expected, {a['found']} found, "
        f"**{a['lost']} lost{lost_when(a)}, {a['duplicated']} duplicated**; "
        f"{a['unacknowledged_audited']} failed queries audited |",
        f"| audit, embedded gateway ({e['usage_of']}, for information) | {e['expected']} expected, {e['found']} found, "
        f"{e['lost']} lost{lost_when(e)}, {e['duplicated']} duplicated |",
        f"| catalog restarts | {s['restarts']['catalog']} (back after {catalog_downtimes or '-'}"
        f"{f'; {killed} needed SIGKILL' if killed else ''}) |",
        f"| PostgreSQL restarts | {s['restarts']['postgres']} (back after {pg_downtimes or '-'}) |",
        f"| after the load (settled {after['settle_s']} s) | {after['sessions']} gateway sessions, "
        f"{after['spool_pending_bytes']} audit spool bytes pending, {after['spool_dropped_total']} dropped |",
        f"| Flight SQL | {s['flight_sql']} |",
        "",
        "| gateway | protocol | queries ok | failed | connect failures |",
        "|---|---|---:|---:|---:|",
    ]
    for gateway, protocols in s["queries"].items():
        for protocol, q in protocols.items():
            lines.append(f"| {gateway} | {protocol} | {q['ok']} | {q['failed']} | {q['connect_failures']} |")
    lines += [
        "",
        "| process | RSS start MB | end MB | peak MB | growth MB (last 20% vs 20-40%) | MB/hour |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("catalog", "gateway"):
        m = s["memory"][name]
        label = "catalog (restarted)" if name == "catalog" else "standalone gateway"
        lines.append(
            f"| {label} | {m.get('start_mb', '-')} | {m.get('end_mb', '-')} | {m.get('peak_mb', '-')} "
            f"| {m.get('growth_mb', '-')} | {m.get('mb_per_hour', '-')} |"
        )
    sessions, pending = s["memory"]["gateway_sessions"], s["memory"]["gateway_spool_pending_bytes"]
    if sessions:
        lines.append("")
        lines.append(
            f"Gateway sessions during the load: start {sessions['start']:g}, end {sessions['end']:g}, "
            f"peak {sessions['peak']:g}; audit spool pending bytes: peak {pending.get('peak', 0):g}."
        )
    if s["top_errors"]:
        lines += ["", "| errors seen by clients (top 15) | count |", "|---|---:|"]
        for item in s["top_errors"]:
            lines.append(f"| {item['error'].replace('|', '/')} | {item['count']} |")
    if s["warnings"]:
        lines += ["", "Noticed (not failing the run):", ""] + [f"- {warning}" for warning in s["warnings"]]
    lines += ["", "**Result: " + ("FAILED: " + "; ".join(s["failures"]) if s["failures"] else "passed") + "**"]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def clean_up(soak):
    if soak.cleaned:
        return
    soak.cleaned = True
    soak.stop.set()
    for service in (soak.gateway, soak.catalog, soak.demo):
        service.close()
    if soak.database_created:
        if not pg_ready():
            wait_pg_ready(60)
        result = psql(f'DROP DATABASE IF EXISTS "{soak.database}" WITH (FORCE)')
        if result.returncode == 0:
            log(f"database {soak.database} dropped")
        else:
            log(f"could not drop database {soak.database}: {result.stderr.strip()}")
    kept = "logs and soak.json" if (soak.dir / "soak.json").exists() else "logs"
    log(f"{kept} kept in {soak.dir}")


def quiet_adbc_finalizers(unraisable):
    """ADBC's cursor finalizer raises once its connection is gone (after a
    connection error): noise, not a finding; everything else is shown."""
    if "adbc" in repr(getattr(unraisable, "object", "")).lower() or "Adbc" in str(unraisable.exc_value):
        return
    sys.__unraisablehook__(unraisable)


def interrupted(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30, help="how long the load runs (default 30)")
    parser.add_argument("--binary", required=True, help="the tessera binary")
    parser.add_argument("--scale", type=float, default=0.01, help="TPC-H scale factor of the demo mesh (default 0.01)")
    parser.add_argument("--writers", type=int, default=2, help="writer threads (default 2)")
    parser.add_argument("--pg-connections", type=int, default=2, help="psycopg connections per gateway (default 2)")
    parser.add_argument("--pause-ms", type=float, default=50, help="pause after each query or write (default 50)")
    parser.add_argument("--settle-seconds", type=float, default=60, help="settle time after the load (default 60)")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return args


def main():
    args = parse_args()
    soak = Soak(args)
    atexit.register(clean_up, soak)
    sys.unraisablehook = quiet_adbc_finalizers
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)  # also when started in the background, where SIGINT is ignored
    try:
        soak.set_up()
    except SetupError as e:
        log(f"setup failed: {e}")
        return 2
    soak.run_load()
    try:
        checks = soak.settle_and_verify()
    except RuntimeError as e:
        log(f"verification failed: the catalog did not answer: {e}")
        return 1
    summary = summarize(soak, checks)
    (soak.dir / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary), flush=True)
    log(f"summary written to {soak.dir / 'soak.json'}")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted: stopping")
        sys.exit(130)
