"""`hotline bench kb-live`: how soon a knowledge-base write answers searches, on the gateway that took it and
on another one sharing the store; and search latency while a large import is embedded.

Starts two `hotline serve` processes (knowledge-base models only) on free ports and one store (a fresh
SQLite file unless --database-url names one), writes through the first and searches both until the
written version answers. Prints one JSON summary as its last line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT_S = 300.0  # all models on a busy 2-core machine
APPEAR_TIMEOUT_S = 30.0
POLL_S = 0.005


@dataclass(frozen=True)
class Gateway:
    url: str
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gateways(
    count: int, *, database_url: str, data_dir: Path, admin_token: str, extra_env: dict[str, str] | None = None,
    models: Sequence[str] = (),
) -> Iterator[list[Gateway]]:
    """`count` `hotline serve` processes on one store, started together (so they also race to seed it) and
    ready; stopped on exit. Each loads the knowledge-base models only, unless `models` names its parts
    ("asr,llm,tts,kb" answers calls)."""
    started: list[Gateway] = []
    try:
        for index in range(count):
            port = free_port()
            env = {**os.environ, "HOTLINE_PORT": str(port), "HOTLINE_DATABASE_URL": database_url,
                   "HOTLINE_DATA_DIR": str(data_dir / f"gateway-{index}"),
                   "HOTLINE_MODELS": models[index] if index < len(models) else "kb",
                   "HOTLINE_ADMIN_TOKEN": admin_token, "HOTLINE_LOG_LEVEL": "warning", **(extra_env or {})}
            log = (data_dir / f"gateway-{index}.log").open("wb")
            process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            started.append(Gateway(f"http://127.0.0.1:{port}", process))
        for index, gateway in enumerate(started):
            _wait_ready(gateway, data_dir / f"gateway-{index}.log")
        yield started
    finally:
        for gateway in started:
            gateway.process.terminate()
        for gateway in started:
            try:
                gateway.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gateway.process.kill()
                gateway.process.wait()


def _wait_ready(gateway: Gateway, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"the gateway on {gateway.url} exited while starting:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{gateway.url}/readyz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the gateway on {gateway.url} was not ready after {READY_TIMEOUT_S:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:])


def searches_until(client: httpx.Client, base: str, *, query: str, doc_id: str, version: int | None) -> float:
    """Search until `doc_id` answers at `version` (None: until it no longer answers); returns the
    `time.perf_counter()` of the first such answer."""
    deadline = time.monotonic() + APPEAR_TIMEOUT_S
    while time.monotonic() < deadline:
        hits = client.get(f"{base}/v1/kb/search", params={"q": query, "k": 3}).raise_for_status().json()
        found = {hit["doc_id"]: hit["version"] for hit in hits}
        if (version is None and doc_id not in found) or (version is not None and found.get(doc_id) == version):
            return time.perf_counter()
        time.sleep(POLL_S)
    raise TimeoutError(f"{doc_id} version {version} did not answer on {base} within {APPEAR_TIMEOUT_S:.0f} s")


def _document(nonce: str, round_number: int) -> dict[str, Any]:
    return {"id": f"bench-live-{nonce}-{round_number}", "title": f"测速文档 {nonce}{round_number}",
            "category": "bench", "content": f"- 测速口令 {nonce}{round_number} 的第1版。"}


def _propagation(client: httpx.Client, targets: Sequence[str], writer: str, rounds: int) -> dict[str, list[float]]:
    """Per round: a create and an update through `writer`, timed from the response to each target's first
    answer with the new version (milliseconds)."""
    nonce = secrets.token_hex(3)
    delays: dict[str, list[float]] = {target: [] for target in targets}
    searchers = {target: httpx.Client(headers=client.headers, timeout=60) for target in targets}
    with ThreadPoolExecutor(len(targets)) as pool:
        for round_number in range(rounds):
            doc = _document(nonce, round_number)
            doc_id, query = str(doc["id"]), str(doc["title"])
            changed = {"version": 1, "content": f"- 测速口令 {nonce}{round_number} 的第2版。"}
            for method, path, body in (("POST", "/v1/kb/documents", doc), ("PUT", f"/v1/kb/documents/{doc_id}", changed)):
                response = client.request(method, f"{writer}{path}", json=body).raise_for_status()
                written_at = time.perf_counter()
                version = int(response.json()["version"])
                found = {target: pool.submit(searches_until, searchers[target], target, query=query, doc_id=doc_id,
                                             version=version) for target in targets}
                for target, future in found.items():
                    delays[target].append((future.result() - written_at) * 1000)
            client.delete(f"{writer}/v1/kb/documents/{doc_id}").raise_for_status()
    for searcher in searchers.values():
        searcher.close()
    return delays


def _summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1), "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1), "n": len(ordered)}


def _search_during_import(client: httpx.Client, base: str, documents: int) -> dict[str, Any]:
    """Search latency on `base` while it imports `documents` generated documents, and when idle."""
    csv_rows = "".join(f"测速问题{n}怎么办？,第{n}条答案：请拨打10077咨询，或到营业厅办理相关业务。\n" for n in range(documents))
    files = {"files": ("bench-import.csv", ("question,answer\n" + csv_rows).encode(), "text/csv")}
    questions = ["流量包多少钱", "宽带怎么报修", "国际漫游怎么开", "停机保号怎么办理"]

    def timed_searches(stop: threading.Event | None, count: int) -> list[float]:
        timings = []
        n = 0
        while (stop is None and n < count) or (stop is not None and not stop.is_set()):
            started = time.perf_counter()
            client.get(f"{base}/v1/kb/search", params={"q": f"{questions[n % 4]} {n}", "k": 3}).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
            n += 1
            time.sleep(0.02)
        return timings

    idle = timed_searches(None, 60)
    done = threading.Event()
    report: dict[str, Any] = {}

    def run_import() -> None:
        started = time.perf_counter()
        response = httpx.post(f"{base}/v1/kb/import", files=files, headers=client.headers, timeout=600)
        report.update(status=response.status_code, seconds=round(time.perf_counter() - started, 1))
        done.set()

    importer = threading.Thread(target=run_import)
    importer.start()
    during = timed_searches(done, 0)
    importer.join()
    return {"documents": documents, "import": report, "search_ms_idle": _summary(idle),
            "search_ms_during_import": _summary(during)}


def run(*, database_url: str | None, rounds: int, import_documents: int, refresh_s: float) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'hotline.db'}"
        env = {"HOTLINE_KB_REFRESH_S": str(refresh_s)}
        with gateways(2, database_url=url, data_dir=Path(tmp), admin_token=token, extra_env=env) as (one, two):
            client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60)
            delays = _propagation(client, [one.url, two.url], one.url, rounds)
            summary: dict[str, Any] = {
                "store": url.split(":", 1)[0], "kb_refresh_s": refresh_s,
                "write_to_search_ms": {"same_gateway": _summary(delays[one.url]),
                                       "other_gateway": _summary(delays[two.url])},
            }
            if import_documents:
                summary["large_import"] = _search_during_import(client, one.url, import_documents)
    return summary
