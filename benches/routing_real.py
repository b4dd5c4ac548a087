#!/usr/bin/env python3
"""Routing benchmark on real processes: one llm-router, two llm-nodes, real llama-server.

For each balancing policy (default: round_robin,auto,cache_aware) the benchmark starts a fresh
fleet on 127.0.0.1 -- one `llm-router --load-balancer-mode POLICY` and two `llm-node`s, each node
with its own data directory and its own llama-server (1 thread, 2 slots) serving the same small
GGUF model -- replays a fixed multi-tenant chat trace through the router's OpenAI API
(`/v1/chat/completions`, streamed, temperature 0) with two concurrent clients, stops everything,
and moves on to the next policy. Every policy starts from cold caches, so runs are comparable.

Traces (deterministic; the text is generated from a seeded word list, nothing is downloaded):
  shared    TENANTS tenants, each with its own ~PROMPT_WORDS-word system prompt shared by its
            conversations (tenant i has CONVERSATIONS conversations, odd tenants one fewer, at
            least one), TURNS user turns each; the real assistant answers go back into the
            history for the next turn. Prefix reuse pays here.
  distinct  the same shape, but every conversation has its own unrelated system prompt: nothing
            to gain from cache affinity, so a cache-aware policy should cost nothing here.

The two clients pull conversations from one pool, one turn at a time: a client takes a
conversation at random from those waiting (seeded, --seed), sends its next turn, and puts it back,
so conversations interleave in an irregular order, as users do, while each conversation's turns
stay in order. (Taken in a fixed rotation instead, an even number of conversations over two nodes
lets round robin send every turn of a conversation to the same node, an affinity by parity that
real traffic does not give it.)

Per request it records the node that served it (`x-llm-router-node`), every other
`x-llm-router-*` header, client-side TTFT (first streamed content) and total time, and the
node's llama.cpp `timings` from the stream (prompt_n: prompt tokens computed, cache_n: prompt
tokens reused, prompt_ms). Per policy it reports requests, tokens computed and reused, TTFT mean
and p90, makespan, the busiest node's share of requests, and ratios against round_robin. It
prints a Markdown table and writes everything (also each request) as JSON.

A policy the router refuses (e.g. `cache_aware` on a binary that predates it) is reported as
refused, with the router's own message, and the other policies still run.

Bounded: every HTTP call has a timeout, start-up has a deadline, and every process started is
stopped (SIGTERM to its process group, SIGKILL after a grace period) on exit, error or Ctrl-C.
It talks to 127.0.0.1 only.

Binaries: --router-bin/--node-bin (env ROUTER_BIN/NODE_BIN, default
${CARGO_TARGET_DIR:-~/.cache/llm-router/target}/release/llm-router and llm-node), --llama-server
(env LLAMA_SERVER), --model (env LLM_MODEL_PATH); scripts/install-runtime.sh provides the last two,
scripts/bench-routing.sh fills all of them in.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MODEL_NAME = "gemma3-270m"
HOST = "127.0.0.1"
DEFAULT_POLICIES = "round_robin,auto,cache_aware"
BASELINE_POLICY = "round_robin"
NODE_NAMES = ("bench-node-a", "bench-node-b")
ADMIN_PASSWORD = "bench-admin-password"

CACHE_DIR = Path(os.environ.get("LLM_ROUTER_CACHE", Path.home() / ".cache/llm-router"))
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", CACHE_DIR / "target"))

# A fixed vocabulary for the generated English-like text. Order matters (it is what the seeded
# generator picks from), so only append to it.
WORDS = """
account action address agreement answer area arrival article aspect assistant balance basis
battery billing board border branch budget building cable calendar camera capacity card care
carrier case catalog category centre chain change channel charge check choice claim client
climate code colour column comfort company component condition connection contract control
copy corner cost country coverage credit culture customer cycle damage data date deadline
delivery demand deposit design detail device difference direction discount distance document
door draft driver duty edge effort element energy engine entry error estimate event evidence
exchange expense factor family feature fee field figure file filter finance floor format frame
fuel function garden gate guide handle health history holiday home hour image income index
insurance interest invoice issue item journey kitchen label language layer lease level licence
limit line list load loan location lock machine maintenance manager map margin market material
measure meeting member memory message method metre model moment month motor network notice
number object offer office option order owner package page panel parcel part partner payment
period permit person phone picture piece plan platform point policy portal position power
premium price priority process product profile project property quality quantity question rate
reason receipt record refund region reminder rental repair report request reserve resource
return review reward risk road room route rule safety sample schedule screen season seat
section sensor service session setting share shipment signal size slot software source space
speed staff stage standard station status step stock storage store strategy structure subject
supply support surface system table target task tax team term test ticket time tool total tour
track trade traffic training transfer travel trip unit update usage user value vehicle version
visit volume voucher wallet warranty water week weight window work year zone
""".split()
VERBS = """
accept adjust approve arrange book cancel change check choose collect compare confirm contact
cover create deliver describe enable explain extend find fix follow handle include inform keep
limit list manage measure move notify offer order pay plan prepare protect provide record reduce
refund register renew replace report request reserve resolve review schedule send share ship
start stop store suggest supply track transfer update upgrade verify
""".split()
JOINERS = "and but because so while when after before unless although".split()
DETERMINERS = "the a every each their our your this that any".split()
ADJECTIVES = """
active annual basic careful clear current daily digital direct early easy exact extra fair fast
final fixed formal free full general green hourly internal large late local main manual minimal
monthly new normal official open optional personal previous private quick recent regular remote
safe secure short simple single small special standard strict temporary total usual valid weekly
""".split()


# --------------------------------------------------------------------------------------------
# Trace
# --------------------------------------------------------------------------------------------


@dataclass
class Conversation:
    """One chat: a system prompt and the user turns, in order."""

    id: str
    tenant: str
    system: str
    user_turns: list[str]
    # Filled in during the replay: the history sent with the next turn.
    history: list[dict[str, str]] = field(default_factory=list)
    next_turn: int = 0
    failed: bool = False


def sentence(rng: random.Random, min_words: int = 8, max_words: int = 16) -> str:
    """One English-like sentence from the fixed vocabulary."""
    words: list[str] = []
    target = rng.randint(min_words, max_words)
    while len(words) < target:
        words += [rng.choice(DETERMINERS), rng.choice(ADJECTIVES), rng.choice(WORDS)]
        words += [rng.choice(VERBS) + "s", rng.choice(DETERMINERS), rng.choice(WORDS)]
        if len(words) < target - 3:
            words.append(rng.choice(JOINERS))
    text = " ".join(words[:target])
    return text[0].upper() + text[1:] + "."


def system_prompt(seed: str, words: int) -> str:
    """A deterministic system prompt of about `words` words, distinct for every seed."""
    rng = random.Random(f"system:{seed}")
    name = rng.choice(WORDS).capitalize() + rng.choice(WORDS).capitalize()
    parts = [
        f"{name} support assistant. You answer customers of {name} briefly and politely, "
        f"following the house rules below."
    ]
    count = len(parts[0].split())
    rule = 1
    while count < words:
        text = f"Rule {rule}: {sentence(rng)} {sentence(rng)}"
        parts.append(text)
        count += len(text.split())
        rule += 1
    return "\n".join(parts)


def user_turn(seed: str) -> str:
    rng = random.Random(f"user:{seed}")
    topic = f"{rng.choice(ADJECTIVES)} {rng.choice(WORDS)}"
    return f"Question about the {topic}: {sentence(rng, 10, 18)} Can you {rng.choice(VERBS)} it?"


def build_trace(
    kind: str, tenants: int, conversations: int, turns: int, prompt_words: int
) -> list[Conversation]:
    """The conversations of trace `kind` ("shared" or "distinct"), interleaved by tenant."""
    per_tenant: list[list[Conversation]] = []
    for t in range(tenants):
        tenant = f"tenant-{t}"
        count = max(1, conversations - (t % 2))
        convs = []
        for c in range(count):
            conv_id = f"{tenant}/conv-{c}"
            seed = tenant if kind == "shared" else f"{kind}/{conv_id}"
            convs.append(
                Conversation(
                    id=conv_id,
                    tenant=tenant,
                    system=system_prompt(seed, prompt_words),
                    user_turns=[user_turn(f"{conv_id}/turn-{k}") for k in range(turns)],
                )
            )
        per_tenant.append(convs)
    # Round-robin over tenants: t0c0, t1c0, t2c0, t3c0, t0c1, ...
    order: list[Conversation] = []
    for c in range(max(len(convs) for convs in per_tenant)):
        order += [convs[c] for convs in per_tenant if c < len(convs)]
    return order


# --------------------------------------------------------------------------------------------
# HTTP (stdlib, loopback only, always with a timeout)
# --------------------------------------------------------------------------------------------


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.hostname != HOST:
        raise ValueError(f"refusing to talk to {parts.hostname}: only {HOST}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return http.client.HTTPConnection(HOST, parts.port, timeout=timeout), path


def http_json(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10.0
) -> Any:
    """One JSON request; the decoded answer, or HttpError for a non-2xx status."""
    conn, path = _connection(url, timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if not 200 <= resp.status < 300:
        raise HttpError(resp.status, data)
    return json.loads(data) if data else None


@dataclass
class RequestRecord:
    """What one replayed request measured."""

    conversation: str
    tenant: str
    turn: int
    client: int
    prompt_chars: int
    started_s: float  # since the replay's start
    status: int = 0
    node: str | None = None
    router_headers: dict[str, str] = field(default_factory=dict)
    ttft_s: float | None = None  # first streamed content
    first_event_s: float | None = None  # first SSE event of any kind
    total_s: float | None = None
    prompt_n: int | None = None  # prompt tokens the node computed
    cache_n: int | None = None  # prompt tokens the node reused from its cache
    prompt_ms: float | None = None
    predicted_n: int | None = None
    usage: dict[str, Any] | None = None
    answer: str = ""
    error: str | None = None


def stream_chat(url: str, api_key: str, body: dict, timeout: float, record: RequestRecord) -> None:
    """POSTs a streamed chat completion and fills `record` as the stream arrives.

    `timeout` bounds every socket operation and the request as a whole.
    """
    conn, path = _connection(url, timeout)
    t0 = time.monotonic()
    deadline = t0 + timeout
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api_key}",
        "Accept": "text/event-stream",
    }
    pieces: list[str] = []
    try:
        conn.request("POST", path, json.dumps(body), headers)
        resp = conn.getresponse()
        record.status = resp.status
        for name, value in resp.getheaders():
            if name.lower().startswith("x-llm-router-"):
                record.router_headers[name.lower()] = value
        record.node = record.router_headers.get("x-llm-router-node")
        if resp.status != 200:
            record.error = f"HTTP {resp.status}: {resp.read(2000).decode('utf-8', 'replace')}"
            return
        while True:
            if time.monotonic() > deadline:
                record.error = f"stream not finished within {timeout} s"
                return
            line = resp.readline()
            if not line:
                break  # end of the body
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if record.first_event_s is None:
                record.first_event_s = time.monotonic() - t0
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if "error" in chunk:
                record.error = f"stream error: {json.dumps(chunk['error'])[:300]}"
                return
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    if record.ttft_s is None:
                        record.ttft_s = time.monotonic() - t0
                    pieces.append(text)
            if chunk.get("usage"):
                record.usage = chunk["usage"]
            timings = chunk.get("timings")
            if timings:
                record.prompt_n = timings.get("prompt_n")
                record.cache_n = timings.get("cache_n")
                record.prompt_ms = timings.get("prompt_ms")
                record.predicted_n = timings.get("predicted_n")
        record.total_s = time.monotonic() - t0
        record.answer = "".join(pieces)
    except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
        record.error = f"{type(e).__name__}: {e}"
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class PolicyRefused(Exception):
    """The router would not start with this policy."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Processes:
    """Child processes started by the benchmark, each in its own process group, all stopped by
    stop_all() (SIGTERM to the group, SIGKILL after `grace` seconds)."""

    # llm-node lets in-flight requests finish for up to 15 s, then gives its runtime 5 s.
    def __init__(self, grace: float = 25.0):
        self.grace = grace
        self.children: list[tuple[str, subprocess.Popen, Any]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        out = open(log, "wb")
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own group: our Ctrl-C does not reach it, we stop it
        )
        self.children.append((name, proc, out))
        return proc

    def check_alive(self) -> None:
        for name, proc, _ in self.children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}")

    def stop_all(self) -> None:
        # Nodes first (they stop their llama-server), the router last.
        for name, proc, _ in reversed(self.children):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for name, proc, out in reversed(self.children):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"[bench] {name} ignored SIGTERM; killing it", file=sys.stderr)
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            # Anything left in its group (a runtime that outlived its node) goes too.
            _signal_group(proc, signal.SIGKILL)
            out.close()
        self.children.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Fleet:
    router_url: str
    api_key: str
    session: str
    run_dir: Path


def start_router(procs: Processes, args: argparse.Namespace, policy: str, run_dir: Path,
                 enrollment: str) -> str:
    port = free_port()
    url = f"http://{HOST}:{port}"
    log = run_dir / "router.out"
    proc = procs.start(
        "llm-router",
        [
            args.router_bin,
            "--listen", f"{HOST}:{port}",
            "--database-url", f"sqlite://{run_dir / 'router.db'}",
            "--log-dir", str(run_dir / "router-logs"),
            "--load-balancer-mode", policy,
            "--auto-distribute", "false",
            *args.router_arg,
        ],
        {
            "LLM_ROUTER_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LLM_ROUTER_ENROLLMENT_TOKEN": enrollment,
        },
        log,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            message = log.read_text(errors="replace").strip()
            if "load-balancer-mode" in message or "invalid value" in message:
                raise PolicyRefused(message[-800:])
            raise RuntimeError(f"llm-router exited with status {proc.returncode}: {message[-800:]}")
        try:
            http_json("GET", f"{url}/health", timeout=2)
            return url
        except (OSError, HttpError):
            time.sleep(0.1)
    raise RuntimeError("llm-router did not answer /health within 30 s")


def start_node(procs: Processes, args: argparse.Namespace, name: str, router_url: str,
               run_dir: Path, enrollment: str) -> None:
    data = run_dir / name
    data.mkdir(parents=True)
    # The model goes in a config file so extra llama-server arguments can ride along.
    model_args = ", ".join(json.dumps(a) for a in args.llama_arg)
    (data / "node.toml").write_text(
        "[[models]]\n"
        f"name = {json.dumps(MODEL_NAME)}\n"
        f"path = {json.dumps(str(args.model))}\n"
        f"chat_template = {json.dumps(args.chat_template)}\n"
        f"args = [{model_args}]\n"
    )
    procs.start(
        name,
        [
            args.node_bin,
            "--config", str(data / "node.toml"),
            "--router-url", router_url,
            "--host", HOST,
            "--port", str(free_port()),
            "--name", name,
            "--llama-server", str(args.llama_server),
            "--ctx-size", str(args.ctx_size),
            "--parallel", str(args.parallel),
            "--threads", str(args.threads),
            "--log-dir", str(data / "logs"),
            "--models-dir", str(data / "models"),
            "--runtimes-dir", str(data / "runtimes"),
        ],
        {"LLM_NODE_ENROLLMENT_TOKEN": enrollment},
        data / "node.out",
    )


def login_and_key(router_url: str) -> tuple[str, str]:
    session = http_json("POST", f"{router_url}/api/auth/login",
                        {"username": "admin", "password": ADMIN_PASSWORD})["token"]
    key = http_json("POST", f"{router_url}/api/keys", {"name": "bench"}, token=session)["key"]
    return session, key


def wait_fleet_ready(procs: Processes, fleet: Fleet, timeout: float) -> list[dict]:
    """Waits until both nodes are online with the model ready; returns the agents."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            agents = http_json("GET", f"{fleet.router_url}/api/agents", token=fleet.session)
            ready = [
                a for a in agents
                if a["status"] == "online"
                and any(m["name"] == MODEL_NAME and m["state"] == "ready" for m in a["models"])
            ]
            if len(ready) == len(NODE_NAMES):
                return agents
            last = ", ".join(f"{a['machine_name']}={a['status']}" for a in agents) or "no node"
        except (OSError, HttpError) as e:
            last = str(e)
        time.sleep(0.3)
    raise RuntimeError(f"the fleet was not ready within {timeout} s ({last})")


def start_fleet(procs: Processes, args: argparse.Namespace, policy: str, run_dir: Path) -> Fleet:
    enrollment = secrets.token_hex(24)
    router_url = start_router(procs, args, policy, run_dir, enrollment)
    for name in NODE_NAMES:
        start_node(procs, args, name, router_url, run_dir, enrollment)
    session, key = login_and_key(router_url)
    fleet = Fleet(router_url=router_url, api_key=key, session=session, run_dir=run_dir)
    wait_fleet_ready(procs, fleet, args.ready_timeout)
    return fleet


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------


class Replay:
    """Two (or --clients) workers pulling conversations turn by turn from one queue."""

    def __init__(self, fleet: Fleet, conversations: list[Conversation], args: argparse.Namespace):
        self.fleet = fleet
        self.args = args
        self.queue: deque[Conversation] = deque(conversations)
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.records: list[RequestRecord] = []
        self.t0 = 0.0
        self.stop = threading.Event()

    def _take(self) -> Conversation | None:
        """The next conversation with a turn to send; None when all are done. A conversation
        whose turn is in flight is out of the queue, so its turns never overlap."""
        while not self.stop.is_set():
            with self.lock:
                if self.queue:
                    self.in_flight += 1
                    self.queue.rotate(-self.rng.randrange(len(self.queue)))
                    return self.queue.popleft()
                if self.in_flight == 0:
                    return None
            time.sleep(0.01)  # another worker holds the only conversations left
        return None

    def _give_back(self, conv: Conversation) -> None:
        with self.lock:
            self.in_flight -= 1
            if not conv.failed and conv.next_turn < len(conv.user_turns):
                self.queue.append(conv)

    def _send_turn(self, conv: Conversation, client: int) -> RequestRecord:
        if not conv.history:
            conv.history = [{"role": "system", "content": conv.system}]
        messages = conv.history + [{"role": "user", "content": conv.user_turns[conv.next_turn]}]
        body = {
            "model": MODEL_NAME,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "max_tokens": self.args.max_tokens,
        }
        record = RequestRecord(
            conversation=conv.id,
            tenant=conv.tenant,
            turn=conv.next_turn,
            client=client,
            prompt_chars=sum(len(m["content"]) for m in messages),
            started_s=time.monotonic() - self.t0,
        )
        stream_chat(f"{self.fleet.router_url}/v1/chat/completions", self.fleet.api_key, body,
                    self.args.request_timeout, record)
        if record.error:
            conv.failed = True  # its later turns would build on a missing answer
        else:
            conv.history = messages + [{"role": "assistant", "content": record.answer}]
        conv.next_turn += 1
        return record

    def _worker(self, client: int) -> None:
        while (conv := self._take()) is not None:
            try:
                record = self._send_turn(conv, client)
            except Exception as e:  # noqa: BLE001 -- recorded, the replay goes on
                conv.failed = True
                record = RequestRecord(conv.id, conv.tenant, conv.next_turn, client, 0,
                                       time.monotonic() - self.t0, error=repr(e))
            with self.lock:
                self.records.append(record)
            self._give_back(conv)
            mark = "x" if record.error else "."
            print(mark, end="", flush=True, file=sys.stderr)

    def run(self) -> float:
        """Replays everything; the makespan in seconds."""
        self.t0 = time.monotonic()
        workers = [threading.Thread(target=self._worker, args=(i,), daemon=True)
                   for i in range(self.args.clients)]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(timeout=0.5)  # short joins keep Ctrl-C responsive
        finally:
            self.stop.set()
        print("", file=sys.stderr)
        return time.monotonic() - self.t0


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(records: list[RequestRecord], makespan: float) -> dict[str, Any]:
    ok = [r for r in records if not r.error]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    nodes = Counter(r.node or "?" for r in ok)
    predicted = [int(r.router_headers["x-llm-router-predicted-cached-tokens"])
                 for r in ok if "x-llm-router-predicted-cached-tokens" in r.router_headers]
    return {
        "requests": len(records),
        "errors": len(records) - len(ok),
        "with_timings": sum(1 for r in ok if r.prompt_n is not None),
        "prompt_tokens_computed": sum(r.prompt_n or 0 for r in ok),
        "prompt_tokens_reused": sum(r.cache_n or 0 for r in ok),
        "prompt_ms_total": round(sum(r.prompt_ms or 0 for r in ok), 1),
        "ttft_mean_s": sum(ttfts) / len(ttfts) if ttfts else None,
        "ttft_p50_s": percentile(ttfts, 50),
        "ttft_p90_s": percentile(ttfts, 90),
        "total_mean_s": (sum(r.total_s for r in ok if r.total_s) / len(ok)) if ok else None,
        "makespan_s": makespan,
        "requests_per_node": dict(sorted(nodes.items())),
        "max_node_share": max(nodes.values()) / len(ok) if ok else None,
        "predicted_cached_tokens": sum(predicted) if predicted else None,
    }


def add_ratios(results: dict[str, dict]) -> None:
    """computed_ratio and ttft_ratio of every measured policy against round_robin."""
    base = results.get(BASELINE_POLICY, {}).get("summary")
    for res in results.values():
        s = res.get("summary")
        if not s or not base:
            continue
        s["computed_vs_round_robin"] = (
            s["prompt_tokens_computed"] / base["prompt_tokens_computed"]
            if base["prompt_tokens_computed"] else None)
        s["ttft_mean_vs_round_robin"] = (
            s["ttft_mean_s"] / base["ttft_mean_s"]
            if s["ttft_mean_s"] and base["ttft_mean_s"] else None)


def _fmt(value: Any, spec: str = "", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def markdown_table(trace: str, results: dict[str, dict]) -> str:
    lines = [
        f"trace `{trace}`",
        "",
        "| policy | requests | errors | prompt tokens computed | reused | TTFT mean | TTFT p90 "
        "| makespan | busiest node | computed vs rr | TTFT vs rr |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for policy, res in results.items():
        s = res.get("summary")
        if not s:
            lines.append(f"| {policy} | {res['status']} | | | | | | | | | |")
            notes.append(f"{policy} {res['status']}: {res.get('reason', '')}")
            continue
        lines.append(
            f"| {policy} | {s['requests']} | {s['errors']} | {s['prompt_tokens_computed']} "
            f"| {s['prompt_tokens_reused']} | {_fmt(s['ttft_mean_s'], '.2f', ' s')} "
            f"| {_fmt(s['ttft_p90_s'], '.2f', ' s')} | {s['makespan_s']:.1f} s "
            f"| {_fmt(s['max_node_share'] and 100 * s['max_node_share'], '.0f', ' %')} "
            f"| {_fmt(s.get('computed_vs_round_robin'), '.2f')} "
            f"| {_fmt(s.get('ttft_mean_vs_round_robin'), '.2f')} |"
        )
    if notes:
        lines += [""] + notes
    return "\n".join(lines)


def environment(args: argparse.Namespace) -> dict[str, Any]:
    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=20, text=True)
            lines = (out.stdout + out.stderr).strip().splitlines()
            return next((ln for ln in lines if ln.startswith("version")), lines[-1])[:200]
        except (OSError, subprocess.SubprocessError, IndexError) as e:
            return f"unknown ({e})"

    def digest(path: str) -> str:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()[:16]

    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "router_bin": args.router_bin,
        "router_sha256_16": digest(args.router_bin),
        "node_bin": args.node_bin,
        "node_sha256_16": digest(args.node_bin),
        "llama_server": str(args.llama_server),
        "llama_server_version": version([str(args.llama_server), "--version"]),
        "model": str(args.model),
    }


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def run_policy(args: argparse.Namespace, policy: str, trace: list[Conversation],
               run_dir: Path) -> dict[str, Any]:
    """Fresh fleet, one replay, everything stopped; the policy's results."""
    shutil.rmtree(run_dir, ignore_errors=True)  # an earlier run written to the same --output
    run_dir.mkdir(parents=True)
    procs = Processes()
    try:
        print(f"[bench] {policy}: starting router + {len(NODE_NAMES)} nodes in {run_dir}",
              file=sys.stderr)
        started = time.monotonic()
        fleet = start_fleet(procs, args, policy, run_dir)
        print(f"[bench] {policy}: fleet ready in {time.monotonic() - started:.1f} s; replaying "
              f"{sum(len(c.user_turns) for c in trace)} requests", file=sys.stderr)
        # Fresh conversation state: every policy replays the trace from its first turn.
        fresh = [replace(c, history=[], next_turn=0, failed=False) for c in trace]
        replay = Replay(fleet, fresh, args)
        makespan = replay.run()
        records = sorted(replay.records, key=lambda r: r.started_s)
        return {"status": "measured", "summary": summarize(records, makespan),
                "requests": [asdict(r) for r in records]}
    except PolicyRefused as e:
        print(f"[bench] {policy}: the router refused this policy:\n{e}", file=sys.stderr)
        return {"status": "refused", "reason": str(e).strip().splitlines()[0]
                if str(e).strip() else "refused", "router_output": str(e)}
    finally:
        procs.stop_all()


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    missing = []
    for attr, hint in [("router_bin", "ROUTER_BIN"), ("node_bin", "NODE_BIN"),
                       ("llama_server", "LLAMA_SERVER"), ("model", "LLM_MODEL_PATH")]:
        value = getattr(args, attr)
        if not value or not Path(value).exists():
            missing.append(f"--{attr.replace('_', '-')} / ${hint} ({value or 'unset'})")
    if missing:
        sys.exit("missing: " + "; ".join(missing)
                 + "\n(scripts/bench-routing.sh finds them; see --help)")
    if args.output is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        args.output = CACHE_DIR / "bench" / f"routing-{args.trace}-{stamp}.json"
    return args


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="routing_real.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help=f"comma-separated --load-balancer-mode values, each run on a fresh fleet "
                        f"(default {DEFAULT_POLICIES}); ratios are against {BASELINE_POLICY}")
    p.add_argument("--trace", choices=["shared", "distinct"], default="shared",
                   help="shared: tenants' conversations share their system prompt; distinct: "
                        "every conversation its own (default shared)")
    p.add_argument("--tenants", type=int, default=4, help="default 4")
    p.add_argument("--conversations", type=int, default=3,
                   help="conversations per tenant, odd tenants one fewer (default 3: 3,2,3,2)")
    p.add_argument("--turns", type=int, default=4, help="user turns per conversation (default 4)")
    p.add_argument("--prompt-words", type=int, default=500,
                   help="words per system prompt (default 500, about 700 tokens)")
    p.add_argument("--clients", type=int, default=2, help="concurrent clients (default 2)")
    p.add_argument("--seed", type=int, default=7,
                   help="seed of the order in which waiting conversations are taken (default 7); "
                        "the same for every policy")
    p.add_argument("--max-tokens", type=int, default=32, help="default 32")
    p.add_argument("--output", type=Path, default=None,
                   help="JSON results file (default ~/.cache/llm-router/bench/"
                        "routing-TRACE-DATE.json); run logs go next to it")
    p.add_argument("--router-bin", default=os.environ.get(
        "ROUTER_BIN", str(TARGET_DIR / "release/llm-router")))
    p.add_argument("--node-bin", default=os.environ.get(
        "NODE_BIN", str(TARGET_DIR / "release/llm-node")))
    p.add_argument("--llama-server", default=os.environ.get(
        "LLAMA_SERVER", str(CACHE_DIR / "bin/llama-server")))
    p.add_argument("--model", default=os.environ.get(
        "LLM_MODEL_PATH", str(CACHE_DIR / "models/gemma-3-270m-q4_k_m.gguf")))
    p.add_argument("--chat-template", default="gemma",
                   help="llama-server chat template (default gemma: the GGUF has none)")
    p.add_argument("--ctx-size", type=int, default=8192,
                   help="llama-server context, shared by the slots (default 8192)")
    p.add_argument("--parallel", type=int, default=2, help="slots per node (default 2)")
    p.add_argument("--threads", type=int, default=1, help="llama-server threads (default 1)")
    p.add_argument("--llama-arg", action="append", default=[],
                   help="extra llama-server argument, repeatable (e.g. --llama-arg=--cache-ram "
                        "--llama-arg=0)")
    p.add_argument("--router-arg", action="append", default=[],
                   help="extra llm-router argument, repeatable")
    p.add_argument("--ready-timeout", type=float, default=180,
                   help="seconds for a fleet to come up (default 180)")
    p.add_argument("--request-timeout", type=float, default=300,
                   help="seconds for one streamed request, and for each socket read "
                        "(default 300)")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = resolve_args(parse_args(argv))
    signal.signal(signal.SIGTERM, _interrupt)
    trace = build_trace(args.trace, args.tenants, args.conversations, args.turns,
                        args.prompt_words)
    logs_dir = args.output.with_suffix("")
    out = {
        "environment": environment(args),
        "trace": {
            "kind": args.trace, "tenants": args.tenants, "conversations": len(trace),
            "turns": args.turns, "prompt_words": args.prompt_words, "clients": args.clients,
            "max_tokens": args.max_tokens, "ctx_size": args.ctx_size, "parallel": args.parallel,
            "threads": args.threads, "llama_args": args.llama_arg, "router_args": args.router_arg,
            "system_prompt_chars": sorted({len(c.system) for c in trace}),
        },
        "logs": str(logs_dir),
        "results": {},
    }
    try:
        for policy in args.policies:
            out["results"][policy] = run_policy(args, policy, trace, logs_dir / policy)
            add_ratios(out["results"])
            write_json(args.output, out)  # after each policy: a later failure keeps the rest
    except KeyboardInterrupt:
        print("\n[bench] interrupted; processes stopped, partial results kept", file=sys.stderr)
        write_json(args.output, out)
        return 130
    print(markdown_table(args.trace, out["results"]))
    print(f"\nJSON: {args.output}\nlogs: {logs_dir}", file=sys.stderr)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every child."""
    raise KeyboardInterrupt


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
