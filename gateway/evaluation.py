"""`hotline eval dialogue`: dialogue cases as fresh calls through the same manager and store the calls use."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.dialects import to_mandarin
from asr.evaluate import AsrEvalOptions, ManifestError, read_manifest
from asr.evaluate import run_asr_eval as evaluate_manifest
from dialogue.evaluate import (
    CasePrediction,
    EvalCase,
    TicketOutcome,
    read_cases,
    run_case,
    score_case,
    summarize,
)
from dialogue.manager import CallState
from gateway.desk import StoreDesk
from gateway.services import Services, endpoint_options, load_asr
from gateway.settings import Settings
from kb.store import read_directory
from ticketing import store


def run_asr_eval(options: AsrEvalOptions, settings: Settings) -> int:
    """`hotline eval asr`: the manifest through the calls' streaming recognizer; JSON summary last."""
    try:
        read_manifest(options.manifest, langs=options.langs, limit=options.limit)  # bad input fails before loading
        transcriber, vad = load_asr(settings)
        summary = evaluate_manifest(options, transcriber, vad.stream, endpoint=endpoint_options(settings),
                                    workers=settings.asr.workers)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False))
    return 0


@dataclass(frozen=True)
class DialogueEvalOptions:
    cases: Path
    kb_dir: Path
    out: Path | None = None
    only: tuple[str, ...] = ()  # case ids (prefixes) to run; all when empty


def run_dialogue_eval(options: DialogueEvalOptions, settings: Settings) -> int:
    cases = read_cases(options.cases)
    if options.only:
        cases = [c for c in cases if c.id.startswith(options.only)]
    kb_text = "\n".join(f"{doc.title}\n{doc.body}" for doc in read_directory(options.kb_dir))
    with tempfile.TemporaryDirectory(prefix="hotline-eval-") as tmp:
        store_settings = settings.model_copy(
            update={"data_dir": Path(tmp), "database_url": None, "kb_dir": options.kb_dir}
        )
        predictions = asyncio.run(_run_all(cases, store_settings))
    if options.out is not None:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        with options.out.open("w", encoding="utf-8") as out:
            for prediction in predictions:
                out.write(json.dumps(prediction.as_json(), ensure_ascii=False) + "\n")
    hotline = settings.dialogue.hotline
    scored = [score_case(c, p, kb_text, hotline) for c, p in zip(cases, predictions, strict=True) if c.expect]
    if scored:
        for score in scored:
            failed = [key for key, ok in score.checks.items() if not ok]
            if failed:
                print(f"{score.id}: failed {', '.join(failed)}", file=sys.stderr)
        print(json.dumps(summarize(scored, predictions), ensure_ascii=False), flush=True)
    return 0


async def _run_all(cases: list[EvalCase], settings: Settings) -> list[CasePrediction]:
    services = await asyncio.to_thread(Services.open, settings, None)
    try:
        await services.load_models(parts=("llm", "kb"))
        predictions = []
        for case in cases:
            prediction = await run_case(services.manager, case, _desk_factory(services), prepare=to_mandarin)
            print(json.dumps(_progress(prediction), ensure_ascii=False), file=sys.stderr, flush=True)
            predictions.append(prediction)
        return predictions
    finally:
        services.close()


def _desk_factory(services: Services) -> Any:
    async def new_call(call_id: str) -> Any:
        state = CallState(call_id=call_id)
        # Each case is a different caller, though cases share one store and some a phone number.
        desk = StoreDesk(services.sessions, services.clock, state, reuse_open=False)
        await desk.run_db(store.start_call, call_id=call_id, codec="text", sample_rate=16000,
                          now=services.clock.now())

        async def final_ticket() -> TicketOutcome | None:
            tickets = await desk.run_db(store.list_tickets, call_id=call_id, limit=1)
            if not tickets:
                return None
            last = tickets[0]
            return TicketOutcome(last.id, last.category.value, dict(last.slots))

        return desk, state, final_ticket

    return new_call


def _progress(prediction: CasePrediction) -> dict[str, Any]:
    return {"id": prediction.id, "intent": prediction.intent, "replies": prediction.replies,
            "ticket": None if prediction.ticket is None else prediction.ticket.slots,
            "seconds": [round(t.total_s, 2) for t in prediction.timings]}
