"""`hotline bench calls`: N simulated callers at once, speaking recorded turns at real-time pace.

Each caller calls again and again until the duration is over: it listens to the greeting, speaks its
turns (a question, or a fault report that files a ticket), hangs up. The summary counts calls that
completed, dropped and were refused as busy; the latency from the end of each utterance to its final
transcript and to the first audio of the reply; and `lost`: call records, turns and tickets the callers
saw that the store does not hold once the run is over.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gateway.caller import Caller, CallOptions, CallTrace, start_in_process, write_speech
from gateway.settings import Settings

# The hotline's own voice speaks these when no --audio folder is given: every other caller reports a fault.
QUESTION_SCRIPT = ("请问宽带安装费是多少？", "我要转人工客服。")
FAULT_SCRIPT = ("我家宽带从昨天晚上开始就上不了网了。", "地址是东城区人民路十八号。", "我的电话是一三八零零一二三四五六。")
STORE_SETTLE_S = 60.0  # how long the store may take to hold the last calls' writes (journals drain)


@dataclass(frozen=True)
class BenchOptions:
    concurrency: int
    duration_s: float
    url: str | None = None
    audio_dir: Path | None = None
    token: str | None = None  # REST, to check nothing was lost
    rate: int = 16000
    call_token: str | None = None  # the call socket's, when the hotline requires one (HOTLINE_CALL_TOKEN)


@dataclass
class Tally:
    completed: int = 0
    dropped: int = 0
    busy: int = 0
    final_ms: list[float] = field(default_factory=list)
    first_audio_ms: list[float] = field(default_factory=list)
    traces: list[CallTrace] = field(default_factory=list)


def scripts(options: BenchOptions, settings: Settings, folder: Path) -> list[list[Path]]:
    """The callers' turns: the WAV files of --audio in name order, or two scripts in the hotline's voice."""
    if options.audio_dir is not None:
        files = sorted(options.audio_dir.glob("*.wav"))
        if not files:
            raise SystemExit(f"hotline bench calls: no .wav files in {options.audio_dir}")
        return [files]
    from tts.loader import load_synthesizer

    synth = load_synthesizer(settings.tts.backend, threads=settings.tts.threads, coqui=settings.tts.coqui_voice())
    made = []
    for name, texts in (("question", QUESTION_SCRIPT), ("fault", FAULT_SCRIPT)):
        paths = []
        for index, text in enumerate(texts):
            path = folder / f"{name}-{index}.wav"
            write_speech(synth, text, path, options.rate)
            paths.append(path)
        made.append(paths)
    return made


async def _one_caller(url: str, turns: list[Path], deadline: float, options: BenchOptions, tally: Tally) -> None:
    while time.monotonic() < deadline:
        caller = Caller(url, CallOptions(files=turns, rate=options.rate, token=options.call_token, quiet=True))
        try:
            trace = await caller.run()
        except Exception:  # the connection failed or broke: the call was dropped
            tally.dropped += 1
            await asyncio.sleep(1.0)
            continue
        if any(e.get("code") == "busy" for e in trace.of_type("error")):
            tally.busy += 1
            await asyncio.sleep(1.0)  # a caller who hears "all lines busy" tries again a little later
            continue
        if trace.of_type("ready") and trace.of_type("end"):
            tally.completed += 1
        else:
            tally.dropped += 1
        tally.traces.append(trace)
        for timing in trace.timings:
            if timing.final is not None:
                tally.final_ms.append((timing.final - timing.speech_end) * 1000)
            if timing.reply_audio is not None:
                tally.first_audio_ms.append((timing.reply_audio - timing.speech_end) * 1000)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(np.array(values), [50, 95, 99])
    return {"p50": round(float(p50)), "p95": round(float(p95)), "p99": round(float(p99))}


def count_lost(base: str, traces: list[CallTrace], token: str | None, settle_s: float = STORE_SETTLE_S) -> int:
    """Call records, turns and tickets the callers saw that the store does not hold."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    lost = 0
    deadline = time.monotonic() + settle_s
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for trace in traces:
            if not (ready := trace.of_type("ready")):
                continue
            call_id = ready[0]["call_id"]
            record = _ended_record(client, call_id, deadline)
            if record is None:
                numbers, unresolved = _tickets_opened(trace)
                lost += 1 + _turns_seen(trace) + len(numbers) + unresolved
                continue
            lost += max(0, _turns_seen(trace) - len(record["turns"]))
            page = client.get("/v1/tickets", params={"call_id": call_id}).json()
            stored = {t["number"] for t in page["items"]}
            lost += _tickets_missing(trace, stored)
    return lost


def _ended_record(client: httpx.Client, call_id: str, deadline: float) -> dict[str, Any] | None:
    while True:
        response = client.get(f"/v1/calls/{call_id}")
        if response.status_code == 200 and response.json().get("ended_at"):
            return dict(response.json())
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def _turns_seen(trace: CallTrace) -> int:
    """Every final transcript is a caller turn; every reply heard (in part) is a bot turn."""
    return len(trace.of_type("final")) + sum(1 for e in trace.of_type("reply_end") if e.get("text"))


def _tickets_opened(trace: CallTrace) -> tuple[set[str], int]:
    """(numbers of the tickets the caller was told, tickets told as pending whose number never came)."""
    # A caller told about the ticket they already had opened nothing in this call.
    tickets = [e for e in trace.of_type("ticket") if "updated" not in e and not e.get("existing")]
    numbers = {e["number"] for e in tickets if e.get("number")}
    unresolved = sum(1 for e in tickets if e.get("pending")) - sum(1 for e in tickets if e.get("was_pending"))
    return numbers, max(0, unresolved)


def _tickets_missing(trace: CallTrace, stored: set[str]) -> int:
    numbers, unresolved = _tickets_opened(trace)
    missing = len(numbers - stored)
    return missing + max(0, unresolved - len(stored - numbers))


class CpuMeter:
    """The whole machine's CPU use over the run (all cores together, 0-100 %), from /proc/stat."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    def percent(self) -> float | None:
        end = self._read()
        if self._start is None or end is None or end[0] == self._start[0]:
            return None
        total, idle = end[0] - self._start[0], end[1] - self._start[1]
        return round(100.0 * (total - idle) / total, 1)


def run_bench(options: BenchOptions, settings: Settings) -> dict[str, Any]:
    server = None
    url = options.url
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as folder:
        callers_turns = scripts(options, settings, Path(folder))
        if url is None:
            url, server = start_in_process(settings)
        try:
            cpu = CpuMeter()
            tally = asyncio.run(_drive(url, callers_turns, options))
            cpu_percent = cpu.percent()
            base = url.replace("ws://", "http://").replace("wss://", "https://").removesuffix("/v1/calls")
            lost = count_lost(base, tally.traces, options.token)
        finally:
            if server is not None:
                server.should_exit = True
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if server is not None else None
    return {"concurrency": options.concurrency, "duration_s": options.duration_s,
            "completed": tally.completed, "dropped": tally.dropped, "busy": tally.busy, "lost": lost,
            "turns": len(tally.final_ms),
            "final_ms": _percentiles(tally.final_ms), "first_audio_ms": _percentiles(tally.first_audio_ms),
            "cpu": cpu_percent, "rss_mb": round(rss_mb) if rss_mb is not None else None,
            "load_avg": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count()}


async def _drive(url: str, callers_turns: list[list[Path]], options: BenchOptions) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + options.duration_s
    callers = [
        _one_caller(url, callers_turns[index % len(callers_turns)], deadline, options, tally)
        for index in range(options.concurrency)
    ]
    await asyncio.gather(*callers)
    return tally


def main(options: BenchOptions, settings: Settings) -> int:
    summary = run_bench(options, settings)
    print(f"hotline bench calls: {summary['completed']} calls completed, {summary['lost']} records lost",
          file=sys.stderr, flush=True)
    print(json.dumps(summary), flush=True)
    return 0 if summary["lost"] == 0 and summary["dropped"] == 0 else 1
