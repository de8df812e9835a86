"""Chinese text normalisation and tokenisation for the lexical index (jieba plus telecom terms)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Final

import jieba
from pypinyin import lazy_pinyin

# Terms jieba would otherwise cut apart; high frequencies keep them whole.
TELECOM_TERMS: Final[tuple[str, ...]] = tuple(
    """
    宽带 光猫 光纤 路由器 机顶盒 套餐 主卡 副卡 流量包 流量日包 加油包 定向流量 通用流量
    携号转网 停机保号 停机 复机 销户 补卡 换卡 实名制 实名登记 漫游 国际漫游 港澳台
    数据漫游 千兆 百兆 5G 4G VoLTE eSIM SIM卡 PON灯 LOS灯
    LAN灯 Wi-Fi WiFi 信号 基站 覆盖 掉线 断网 网速 测速 报修 装机 安装费
    上门 月租 月费 违约金 合约期 合约 升档 降档 话费 欠费 滞纳金 账单 账期 缴费 充值
    预存 后付费 预付费 发票 电子发票 详单 通话详单 投诉 工单 营业厅 客服热线 人工客服
    服务密码 验证码 宽带续费 提速 手表 智能手表
    """.split()
)

# Fillers of spoken Chinese and function words that carry no topic.
STOPWORDS: Final[frozenset[str]] = frozenset(
    """
    喂 你好 您好 我 你 您 他 她 它 我们 你们 他们 咱 俺 阮 侬 阿拉 的 了 吗 呢 啊 吧 呀 嘛 哦 噢 嗯 哎 诶 呃
    哈 么 啥 咋 什么 怎么 怎么样 怎样 如何 多少 几 是 有 没 没有 不 就 都 也 还 又 在 和 跟 与 或 及 那 这
    那个 这个 那种 这种 一下 一个 一些 就是 然后 可以 能 能不能 可不可以 想 要 想要 问 问问 请问 问一下
    一下子 知道 下 个 给 把 被 让 到 从 对 说 讲 好 请 谢谢 麻烦 现在 今天 一直 还是 但是 因为 所以 如果
    要是 的话 那边 这边 里 上 下面 上面 时候 一般 一点 些 多 少 很 太 挺 比较 真的 其实 之类 之前 以后
    会 不会 会不会 才 得 地 着 过 吧 咱们 自己 东西 事 事情 情况 怎么办 为什么 哪 哪里 哪个 谁
    """.split()
)

_DIGITS: Final[dict[str, int]] = dict(
    zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_UNITS: Final[dict[str, int]] = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_DIGITS_TO_CHAR: Final[dict[str, str]] = {"二": "二", "两": "二"} | {c: c for c in "一三四五六七八九"}
_LOWER_UNIT: Final[dict[str, str]] = {"百": "十", "千": "百", "万": "千"}
_CHINESE_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万]{2,}|十")
_TOKEN_CHARS = re.compile(r"[\w\u4e00-\u9fff]")
_init_lock = threading.Lock()


def chinese_to_digits(text: str) -> str:
    """Spoken numbers to digits ("一百二十九" -> "129", "二十块" -> "20块"); lone digits like "一下" stay."""
    return _CHINESE_NUMBER.sub(_replace_number, text)


def _replace_number(match: re.Match[str]) -> str:
    run = match.group(0)
    if not any(char in _UNITS for char in run):
        # "一一零" reads digit by digit; but "一一" or "两三" are words, not numbers
        return "".join(str(_DIGITS[char]) for char in run) if len(run) >= 3 else run
    value = _parse_with_units(run)
    return run if value is None else str(value)


def _parse_with_units(run: str) -> int | None:
    total, section, digit = 0, 0, None
    if len(run) >= 3 and run[-1] in _DIGITS and run[-2] in ("百", "千", "万"):
        # colloquial "一百二" = 120, "一万二" = 12000: the trailing digit counts in the next lower unit
        return _parse_with_units(run[:-1] + _DIGITS_TO_CHAR[run[-1]] + _LOWER_UNIT[run[-2]])
    for char in run:
        if char in ("零", "〇"):  # a placeholder between units ("一百零二")
            continue
        if char in _DIGITS:
            if digit is not None:  # "二三十" (an approximate range) is not a single number
                return None
            digit = _DIGITS[char]
        elif char == "万":
            section = (section + (digit or 0)) or 1
            total, section, digit = total + section * 10000, 0, None
        else:
            section += (1 if digit is None else digit) * _UNITS[char]
            digit = None
    return total + section + (digit or 0)


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    with _init_lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for term in TELECOM_TERMS:
            tokenizer.add_word(term.lower(), freq=200_000)
    return tokenizer


def normalise(text: str) -> str:
    return chinese_to_digits(text.lower())


def tokenize(text: str) -> list[str]:
    """Search tokens: jieba words (and their sub-words) without stopwords and punctuation."""
    words = _tokenizer().cut_for_search(normalise(text))
    return [word for word in (w.strip() for w in words) if _is_content(word)]


def phonetic_tokens(text: str) -> list[str]:
    """Toneless pinyin syllable pairs of the content words: 签照款待 and 千兆宽带 both give
    qian_zhao, zhao_kuan, kuan_dai, so a recognizer's homophone errors still find the document."""
    syllables = [
        syllable
        for word in tokenize(text)
        for syllable in lazy_pinyin(word, errors="ignore")
        if syllable.isascii() and syllable.isalpha()
    ]
    return [f"{a}_{b}" for a, b in zip(syllables, syllables[1:], strict=False)]


def _is_content(word: str) -> bool:
    return bool(word) and word not in STOPWORDS and _TOKEN_CHARS.search(word) is not None
