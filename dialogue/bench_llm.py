"""How fast the in-process LLM answers a RAG-sized prompt: load, prefill, first token, decode.

    python -m dialogue.bench_llm [--model bundled:qwen2.5-1.5b] [--threads 2] [--cache-dir DIR]

Two calls share the same system prompt; the second shows what prefix caching saves before the
first reply token (the retrieved passages and the question differ, as on a real second turn).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from core.bundled import BUNDLED_PREFIX, resolve
from dialogue.base import ChatMessage, GenerationOptions
from dialogue.llm import GenerationTimings, LlamaCppModel

SYSTEM_PROMPT = (
    "你是中国电信客服热线的智能语音助手。请遵守以下规则：\n"
    "1. 只根据下面提供的参考资料回答，资料里没有的内容不要编造，可以建议客户转人工客服。\n"
    "2. 回答要口语化、简短，每次不超过三句话，因为回答会被朗读给电话里的客户听。\n"
    "3. 不要读出网址、长串数字或表格；需要办理业务时，告诉客户可以在营业厅、App或拨打10000号办理。\n"
    "4. 涉及故障报修时，先确认客户的宽带账号或手机号码，再说明会为客户创建工单。\n"
    "5. 客户情绪激动或明确要求人工服务时，礼貌地说明马上为其转接人工坐席。"
)

FIRST_TURN = (
    "参考资料：\n"
    "[1] 宽带无法上网自助排查：请先检查光猫的电源灯和光信号灯。光信号灯（LOS）红色闪烁表示光纤线路中断，"
    "需要报修；若指示灯正常，请将光猫和路由器断电五分钟后重新启动，并检查网线是否插紧。"
    "重启后仍无法上网的，可拨打10000号报修，维修人员一般在24小时内上门处理。\n"
    "[2] 宽带报修时效：城区宽带故障承诺24小时内修复，农村地区48小时内修复。"
    "超过承诺时限未修复的，按天减免当月宽带月租费。报修时需提供宽带账号或安装地址，以及方便联系的电话。\n"
    "客户问题：我家宽带从早上开始就上不了网了，光猫上有个红灯一直在闪，这是怎么回事？要多久能修好？"
)

SECOND_TURN = (
    "参考资料：\n"
    "[1] 手机欠费停机：话费余额不足时先发送短信提醒，欠费后次日停机。缴清欠款后一般在30分钟内自动恢复通话。"
    "可以通过电信营业厅App、微信或支付宝的生活缴费、以及各营业厅现场缴费。\n"
    "[2] 信用额度：在网满六个月且无不良记录的用户可享受信用额度，额度内欠费不会立即停机。"
    "信用额度根据消费情况每季度调整，可拨打10000号或在App里查询当前额度。\n"
    "客户问题：我的手机昨天突然停机了，我交了一百块钱话费，为什么现在还是打不出去电话？"
)


@dataclass(frozen=True)
class CallResult:
    first_token_s: float
    total_s: float
    timings: GenerationTimings | None
    reply: str


def timed_call(model: LlamaCppModel, user_text: str, options: GenerationOptions) -> CallResult:
    captured: list[GenerationTimings] = []
    messages = [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", user_text)]
    started = time.perf_counter()
    first_token_s = 0.0
    pieces: list[str] = []
    for piece in model.stream(messages, options, on_timings=captured.append):
        if not pieces:
            first_token_s = time.perf_counter() - started
        pieces.append(piece)
    total_s = time.perf_counter() - started
    return CallResult(first_token_s, total_s, captured[-1] if captured else None, "".join(pieces))


def describe(label: str, result: CallResult) -> str:
    t = result.timings
    if t is None:
        return f"{label}: first token after {result.first_token_s:.2f} s (engine sent no timings)"
    return (
        f"{label}: prompt {t.prompt_tokens + t.cached_tokens} tokens, "
        f"{t.cached_tokens} reused from the cache, "
        f"{t.prompt_tokens} evaluated at {t.prefill_tokens_per_s:.1f} tok/s | "
        f"first token after {result.first_token_s:.2f} s | "
        f"decode {t.decode_tokens_per_s:.1f} tok/s over {t.generated_tokens} tokens | "
        f"total {result.total_s:.2f} s"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dialogue.bench_llm", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default="bundled:qwen2.5-1.5b", help="bundled:NAME or a GGUF path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(platformdirs.user_cache_dir("hotline")) / "models",
        help="where bundled weights are assembled",
    )
    parser.add_argument("--show-replies", action="store_true", help="print the generated replies too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.model.startswith(BUNDLED_PREFIX):
        path = resolve(args.model, args.cache_dir)
    else:
        path = Path(args.model).expanduser()
    load1, load5, _ = os.getloadavg()
    print(
        f"model {args.model} ({path.name}), {args.threads} threads, n_ctx {args.n_ctx}; "
        f"{os.cpu_count()} CPUs, load average {load1:.1f} (1 min) {load5:.1f} (5 min) before loading"
    )
    started = time.perf_counter()
    model = LlamaCppModel(path, n_ctx=args.n_ctx, n_threads=args.threads, name=args.model)
    print(f"load: {time.perf_counter() - started:.2f} s")

    options = GenerationOptions(max_tokens=args.max_tokens, temperature=0.0)
    first = timed_call(model, FIRST_TURN, options)
    print(describe("call 1 (cold cache)", first))
    second = timed_call(model, SECOND_TURN, options)
    print(describe("call 2 (same system prompt, other passages)", second))
    if args.show_replies:
        print(f"reply 1: {first.reply}\nreply 2: {second.reply}")
    model.close()


if __name__ == "__main__":
    main()
