"""The `hotline` command: `serve` the hotline, or `call` it with recorded audio as a caller."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gateway.adapt_commands import add_adapt_commands
from gateway.logs import configure_logging
from gateway.settings import Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting starve each other on a busy 2-core machine (llama.cpp
    # decoding fell from ~15 to ~2 tokens/s); the runtimes read this once, when they load.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = argparse.ArgumentParser(prog="hotline", description="Telecom customer-service voice hotline")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="serve the hotline (settings from HOTLINE_* environment variables)")

    call = commands.add_parser("call", help="call the hotline with WAV files as the caller's successive turns")
    call.add_argument("audio", nargs="+", type=Path, help="audio files (WAV or anything ffmpeg/PyAV reads)")
    call.add_argument("--url", help="ws://HOST:PORT/v1/calls of a running hotline; default: run one in-process")
    call.add_argument("--codec", default="pcm16", choices=["pcm16", "mulaw", "alaw"])
    call.add_argument("--rate", type=int, default=16000, choices=[8000, 16000])
    call.add_argument("--dialect", default="auto")
    call.add_argument("--caller-id", default=None)
    call.add_argument("--out", type=Path, help="write each bot reply as a WAV file in this folder")
    call.add_argument("--json", action="store_true", help="print one JSON object a line")
    call.add_argument("--fast", action="store_true", help="send audio as fast as possible, not at real-time pace")
    call.add_argument("--token", help="the hotline's call token, when it requires one (default: HOTLINE_CALL_TOKEN)")

    token = commands.add_parser("token", help="make a new token for an account (the old one stops working)")
    token.add_argument("account", choices=["admin"], help="the account (agents: `hotline agent token NAME`)")

    agent = commands.add_parser("agent", help="agents' accounts: add one (prints its token), list, disable")
    agent_commands = agent.add_subparsers(dest="action", required=True)
    agent_commands.add_parser("add", help="add an agent and print its token").add_argument("name")
    agent_commands.add_parser("token", help="a new token for an agent (the old one stops working)").add_argument("name")
    agent_commands.add_parser("disable", help="the agent's token stops working").add_argument("name")
    agent_commands.add_parser("list", help="all accounts, one a line")

    say = commands.add_parser("say", help="speak a text with the hotline's voice into a WAV file (a caller to test with)")
    say.add_argument("text")
    say.add_argument("out", type=Path, nargs="?", help="the WAV file to write (or --out)")
    say.add_argument("--out", dest="out_option", type=Path, help="the WAV file to write")
    say.add_argument("--codec", default="pcm16", choices=["pcm16", "mulaw", "alaw"])
    say.add_argument("--rate", type=int, default=16000, choices=[8000, 16000, 24000])

    evaluate = commands.add_parser("eval", help="measure a stage on cases and print a JSON summary last")
    targets = evaluate.add_subparsers(dest="target", required=True)
    dialogue = targets.add_parser("dialogue", help="run dialogue cases as fresh calls (text in, no audio)")
    dialogue.add_argument("--cases", type=Path, required=True, help="JSONL: id, turns, optional dialect and expect")
    dialogue.add_argument("--kb", type=Path, required=True, help="folder of Markdown documents with front matter")
    dialogue.add_argument("--out", type=Path, help="write one prediction a line here")
    dialogue.add_argument("--only", nargs="*", default=(), help="run only the cases whose id starts so")
    asr = targets.add_parser("asr", help="stream speech files through the calls' recognizer: CER, RTF, final latency")
    asr.add_argument("--manifest", type=Path, required=True, help="JSONL: audio (path), text (reference), lang")
    asr.add_argument("--codec", default="pcm16", choices=["pcm16", "mulaw", "alaw"])
    asr.add_argument("--rate", type=int, default=16000, choices=[8000, 16000])
    asr.add_argument("--dialect", default=None, help="declare this dialect for every file (default: from its lang)")
    asr.add_argument("--out", type=Path, help="write one prediction a line here")
    asr.add_argument("--fast", action="store_true", help="stream as fast as possible, not at real-time pace")
    asr.add_argument("--lang", action="append", default=[], help="only files of this lang (repeatable)")
    asr.add_argument("--limit", type=int, default=None, help="at most N files")
    asr.add_argument("--model", help="the default faster-whisper model (default: HOTLINE_ASR__MODEL)")
    asr.add_argument("--registry", type=Path, help="dialect registry file, e.g. one `hotline adapt asr` wrote "
                                                   "(default: HOTLINE_ASR__DIALECTS_FILE)")
    tts = targets.add_parser("tts", help="the voice's intelligibility: KB sentences spoken, recognized back, CER")
    tts.add_argument("--kb", type=Path, help="folder of Markdown documents (default: the knowledge base's)")
    tts.add_argument("--sentences", type=int, default=50)
    tts.add_argument("--skip", type=int, default=0, help="leave out the first N sentences (hold-out: tune on "
                                                         "--sentences 30, report --skip 30 --sentences 20)")
    tts.add_argument("--dump", type=Path, help="write one JSON line per sentence (text, spoken, heard, cer) here")

    add_adapt_commands(commands)

    bench = commands.add_parser("bench", help="time a stage and print a JSON summary last")
    benches = bench.add_subparsers(dest="target", required=True)
    kb_bench = benches.add_parser("kb", help="retrieval recall and search latency, also with the KB grown")
    kb_bench.add_argument("--kb", type=Path, required=True, help="folder of Markdown documents with front matter")
    kb_bench.add_argument("--cases", type=Path, required=True, help="dialogue cases whose expect.kb_docs are scored")
    kb_bench.add_argument("--grow", type=int, default=10_000, help="statements to grow the KB to (0: do not)")

    calls_bench = benches.add_parser("calls", help="N simulated callers at real-time pace: calls held, latency, lost records")
    calls_bench.add_argument("--concurrency", type=int, default=2, help="callers on the line at once")
    calls_bench.add_argument("--duration", type=float, default=60.0, help="seconds during which callers call again")
    calls_bench.add_argument("--url", help="ws://HOST:PORT/v1/calls of a running hotline; default: run one in-process")
    calls_bench.add_argument("--audio", type=Path, help="folder of WAV files: each caller's turns, in name order")
    calls_bench.add_argument("--token", default=os.environ.get("HOTLINE_ADMIN_TOKEN"),
                             help="token for the REST reads that check nothing was lost (default: HOTLINE_ADMIN_TOKEN)")

    desk_bench = benches.add_parser(
        "desk", help="a caller asks for a person and an agent takes the call: escalation → console, reply → audio")
    desk_bench.add_argument("--rounds", type=int, default=5, help="takeovers, one after another")
    desk_bench.add_argument("--url", help="ws://HOST:PORT/v1/calls of a running hotline; default: run one in-process")
    desk_bench.add_argument("--desk-url", help="http://HOST:PORT of the gateway the agent's console connects to "
                                               "(another gateway sharing the store and Redis); default: the --url one")
    desk_bench.add_argument("--token", default=os.environ.get("HOTLINE_ADMIN_TOKEN"),
                            help="admin token, to add the bench agent (default: HOTLINE_ADMIN_TOKEN)")

    voice_bench = benches.add_parser(
        "voice", help="one caller, call after call: barge-in stop time, end of speech and reply text → first audio")
    voice_bench.add_argument("--rounds", type=int, default=5, help="calls, one after another")
    voice_bench.add_argument("--url", help="ws://HOST:PORT/v1/calls of a running hotline; default: run one in-process")

    kb = commands.add_parser("kb", help="administer the knowledge base in the configured store")
    kb_commands = kb.add_subparsers(dest="action", required=True)
    kb_import = kb_commands.add_parser(
        "import", help="import Markdown (front matter), .txt, question/answer .csv, or a .zip or folder of them; all or nothing")
    kb_import.add_argument("path", type=Path)
    kb_import.add_argument("--category", default="general", help="category of .txt and .csv documents that name none")
    kb_import.add_argument("--status", default="published", choices=["published", "draft"],
                           help="status of .txt and .csv documents that name none")
    kb_import.add_argument("--actor", default=f"cli:{_login_name()}", help="who the audit log names")
    kb_export = kb_commands.add_parser("export", help="write every document as ID.md with front matter into DIR")
    kb_export.add_argument("dir", type=Path)
    kb_search = kb_commands.add_parser("search", help="what callers would get: ranked published passages")
    kb_search.add_argument("query")
    kb_search.add_argument("-k", type=int, default=3, choices=range(1, 21), metavar="1..20")

    live_bench = benches.add_parser(
        "kb-live", help="time from a KB write to its first search answer, on the gateway written to and another")
    live_bench.add_argument("--database-url", help="the store both gateways share (default: a new SQLite file); "
                                                   "bench documents are deleted afterwards")
    live_bench.add_argument("--rounds", type=int, default=10, help="documents created and updated")
    live_bench.add_argument("--refresh-s", type=float, default=Settings.model_fields["kb_refresh_s"].default,
                            help="HOTLINE_KB_REFRESH_S of both gateways")
    live_bench.add_argument("--import-docs", type=int, default=0,
                            help="also time searches while importing this many documents (0: do not)")

    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    if args.command == "serve":
        return serve(settings)
    if args.command == "bench" and args.target == "calls":
        from gateway.bench_calls import BenchOptions
        from gateway.bench_calls import main as bench_calls

        if args.concurrency < 1 or args.duration <= 0:
            parser.error("--concurrency must be at least 1 and --duration positive")
        call_token = settings.call_token.get_secret_value() if settings.call_token is not None else None
        return bench_calls(BenchOptions(args.concurrency, args.duration, args.url, args.audio, args.token,
                                        call_token=call_token), settings)
    if args.command == "bench" and args.target == "desk":
        from gateway.bench_desk import main as bench_desk

        return bench_desk(max(1, args.rounds), args.url, args.token, settings, args.desk_url)
    if args.command == "bench" and args.target == "voice":
        from gateway.bench_voice import main as bench_voice

        return bench_voice(max(1, args.rounds), args.url, settings)
    if args.command == "kb":
        return kb_command(args, settings)
    if args.command == "adapt":
        from gateway.adapt_commands import run_adapt

        return run_adapt(args, settings)
    if args.command in ("token", "agent"):
        return manage_accounts(args, settings)
    if args.command == "bench" and args.target == "kb-live":
        from gateway.kb_live_bench import run as bench_kb_live

        summary = bench_kb_live(database_url=args.database_url, rounds=args.rounds, refresh_s=args.refresh_s,
                                import_documents=args.import_docs)
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    if args.command == "bench" and args.target == "kb":
        from kb.embedder import E5Embedder
        from kb.evaluate import benchmark

        print(json.dumps(benchmark(args.kb, args.cases, E5Embedder(num_threads=settings.kb_threads), args.grow), ensure_ascii=False))
        return 0
    if args.command == "eval" and args.target == "asr":
        from asr.evaluate import AsrEvalOptions
        from core.audio import Codec
        from gateway.evaluation import run_asr_eval

        overrides = {k: v for k, v in (("model", args.model), ("dialects_file", args.registry)) if v is not None}
        settings = settings.model_copy(update={"asr": settings.asr.model_copy(update=overrides)})
        return run_asr_eval(AsrEvalOptions(args.manifest, Codec(args.codec), args.rate, args.dialect, args.out,
                                           args.fast, tuple(args.lang), args.limit), settings)
    if args.command == "eval" and args.target == "tts":
        from gateway.intelligibility import run_tts_eval

        return run_tts_eval(args.kb, args.sentences, settings, skip=args.skip, dump=args.dump)
    if args.command == "eval":
        from gateway.evaluation import DialogueEvalOptions, run_dialogue_eval

        return run_dialogue_eval(DialogueEvalOptions(args.cases, args.kb, args.out, tuple(args.only)), settings)
    if args.command == "say":
        from core.audio import Codec
        from gateway.say import SayOptions, say_to_file

        if (args.out is None) == (args.out_option is None):
            parser.error("say: give the WAV file once, as OUT or as --out OUT")
        return say_to_file(SayOptions(args.text, args.out or args.out_option, Codec(args.codec), args.rate), settings)
    from gateway.caller import CallOptions, run_call

    options = CallOptions(files=args.audio, codec=args.codec, rate=args.rate, dialect=args.dialect,
                          caller_id=args.caller_id, out_dir=args.out, json_lines=args.json, fast=args.fast,
                          token=args.token)
    return run_call(options, url=args.url, settings=settings)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"


def kb_command(args: argparse.Namespace, settings: Settings) -> int:
    from gateway import kb_commands

    if args.action == "import":
        return kb_commands.import_command(settings, args.path, category=args.category, status=args.status,
                                       actor=args.actor)
    if args.action == "export":
        return kb_commands.export_command(settings, args.dir)
    return kb_commands.search_command(settings, args.query, k=args.k)


def serve(settings: Settings) -> int:
    import uvicorn

    from gateway.app import create_app

    if settings.host not in LOOPBACK_HOSTS and settings.call_token is None:
        logging.getLogger("hotline").warning(
            "serving on %s without HOTLINE_CALL_TOKEN: anyone who reaches the port can call", settings.host)

    base = f"{settings.host}:{settings.port}"
    print(f"hotline: call ws://{base}/v1/calls, or from a browser at http://{base}/  "
          f"(REST and docs at http://{base}/docs; ready when /readyz says so)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level,
                ws_max_size=1 << 20, log_config=None)
    return 0


def manage_accounts(args: argparse.Namespace, settings: Settings) -> int:
    """`hotline token admin` and `hotline agent add|token|disable|list`, straight on the store."""
    from gateway import accounts, db

    engine = db.create_engine_for(settings.resolved_database_url)
    try:
        db.migrate_engine(engine)
        with db.session_factory(engine)() as session:
            return _account_command(args, settings, session)
    except accounts.AccountError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _account_command(args: argparse.Namespace, settings: Settings, session: Any) -> int:
    from core.clock import SystemClock
    from gateway import accounts

    now = SystemClock().now()
    if args.command == "token":
        if settings.admin_token is not None:
            print("hotline: HOTLINE_ADMIN_TOKEN is set and is the admin token; change it there instead",
                  file=sys.stderr)
            return 2
        accounts.set_admin_token(session, token=None, now=now)  # a store with no admin yet gets one
        print(accounts.rotate_token(session, name=accounts.ADMIN_NAME))
    elif args.action == "add":
        print(accounts.create_account(session, name=args.name, role=accounts.Role.AGENT, now=now).token)
    elif args.action == "token":
        print(accounts.rotate_token(session, name=args.name))
    elif args.action == "disable":
        accounts.disable_account(session, name=args.name)
        print(f"hotline: {args.name}'s token no longer works", file=sys.stderr)
    else:
        for account in accounts.list_accounts(session):
            state = "active" if account.active else "disabled"
            print(f"{account.name}\t{account.role.value}\t{state}\t{account.created_at:%Y-%m-%d %H:%M}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
