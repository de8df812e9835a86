"""Chinese text normalisation and tokenisation for the lexical index (jieba plus telecom terms)."""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Final

import jieba
from pypinyin import lazy_pinyin

from core.numbers import chinese_to_digits
from core.phrases import JUST_DID, SELF_HELP

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

_TOKEN_CHARS = re.compile(r"[\w\u4e00-\u9fff]")
_init_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer() -> jieba.Tokenizer:
    with _init_lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for term in TELECOM_TERMS:
            tokenizer.add_word(term.lower(), freq=200_000)
    return tokenizer


# Units as callers say them and as documents write them: 五个G -> 5gb, 五百兆 -> 500m, 二十块 -> 20元.
_UNIT_FORMS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"(\d+)\s*(?:个\s*g|gb)"), r"\1gb"),  # a bare 5G is the network, not five gigabytes
    (re.compile(r"(?<![\d.])(1|[6-9]|[1-9]\d+)\s*g(?![a-z])"), r"\1gb"),  # ... but no network is 1G or 30G
    (re.compile(r"(\d+)\s*兆"), r"\1m"),
    (re.compile(r"(\d+(?:\.\d+)?)\s*块(?:钱)?"), r"\1元"),
    (re.compile(r"wi-?fi"), "wi-fi"),
    (re.compile(r"[一依衣伊]\s*sim(?!卡)"), "esim"),  # how a recognizer writes eSIM
    (re.compile(r"(?:一|1)个?(?:礼拜|星期|周)"), "7天"),
)

# What callers say -> the words documents use for it. Added to a query's words, never replacing them.
QUERY_EXPANSIONS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"多少钱|几块|几元|贵不贵|贵吗|收不收|要不要钱|收钱|怎么收|怎么算钱|花多少|费用", "费用 资费 收费 元"),
        (r"交钱|交费|缴钱|充钱|交了钱|钱交|钱缴", "缴费 缴清 充值"),
        (r"上个?月(?!份)", "上月"),
        (r"第一个月|首月|头一个月|头个月|刚办.{0,6}(?:怎么|咋)收", "首月 折算"),
        (r"(?:香港|澳门|港澳)(?:居民|人|同胞|身份)", "港澳居民 通行证"),
        (r"台湾(?:居民|人|同胞|身份)", "台湾居民 通行证"),
        (r"外国人|外籍|老外|外国(?:护照|身份)", "外籍用户 护照"),
        (r"多久|多长时间|好久|几天|多少天|几个小时|什么时候|啥时候|时间", "时限 时效 小时 天"),
        (r"恢复|开通回来|能用了", "复机 恢复"),
        (r"家里人|亲戚|别人替|替我|帮我去|代我|代替|[帮替给代](?:他|她|老人|家里|父亲|母亲|老?[爸妈]|老公|老婆|爱人)", "代办 授权书"),
        (r"村子|村里|乡下|农村|镇上", "农村 乡镇"),
        (r"装上|来装|上门装|安装", "安装 上门"),
        (r"报修|维修|修理|来修|修好", "维修 修复"),
        (r"给(?:我)?个?(?:结果|答复|回复|回音|说法)|处理(?:好|完)|有(?:个)?结果", "处理时限 处理完毕 反馈结果"),
        (r"装机费|安装费|装的钱|安装的钱|初装费", "安装调试费"),
        (r"年纪|岁数|多大|年龄|几岁|\d+\s*周?岁", "周岁 年龄"),
        (r"儿子|女儿|孩子|小孩|未成年", "未成年人 监护人"),
        (r"办张卡|(?<!补)办个?卡|办个号|开个号|办新号|新办", "入网 实名"),
        (r"换到别|换去别|转到别|转去别|别的运营商|其他运营商|换个运营商|换运营商|号码?不变|不换号|号码?带走|带着号|转走|转出去", "携号转网 转出"),
        (r"剩的钱|剩下的钱|剩余的钱|余额|还剩.{0,3}钱", "余额 退还"),
        (r"剩(?:多少|几)?.{0,3}(?:话费|钱)|话费.{0,4}剩|查.{0,4}(?:余额|话费)", "查询余额"),
        (r"负(?:的|数)|成负|欠(?:费|钱)了", "余额为负数 欠费 次日起停机"),
        (r"(?:话费|余额|钱).{0,3}(?:快|要|就要)(?:没了|用完|不够)|余额不足|欠费.{0,4}(?:通知|提醒|告诉)", "账户余额 短信提醒 预付费"),
        (r"邮寄|寄(?:一张|过来|给我|到|回)|快递", "邮寄 快递 送达"),
        (r"(?:办|开|登记)(?:几|多少)[张个]|(?:几|多少|\d+)[张个](?:卡|号)|最多.{0,4}(?:办|开)|再(?:办|开)(?:1|一)?[张个]", "数量上限 名下 手机号码"),
        (r"(?:提前|先|要|得|需要)开(?:通)?(?:什么|啥)|直接(?:就)?能用", "开通方式 开通条件"),
        (r"退掉|退了|(?:能不能|可以)退(?![点些钱费款])", "退订"),
        (r"退[点些钱费款]|返[点些还钱]|少收|减免|抵扣", "补偿 减免 返还"),
        (r"挪|搬家|搬到|换个地方", "移机"),
        (r"接电话|接听|打得通|打不通|打得进|打不进|打(?:我|进来|过来)", "接听 拨打和接听"),
        (r"办了.{0,6}(?:以后|之后)|期间|的时候", "期间"),
        (r"(?:身份证|证件)(?:底下|下面|下边|上)|挂(?:了|着)?(?:几|多少)个号|名下.{0,4}(?:几|多少)", "名下号码查询"),
        (r"(?<!给我)(?<![给回])打电话|通话|语音", "语音 拨打 通话"),
        (r"给我打电话|打给我|联系我|回电话|回个电话", "电话联系 联系用户"),  # we call them: contact, not a tariff
        (r"上网", "流量 上网"),
        (r"流量包|加流量|流量不够|流量快用完", "加油包"),
        (r"只管今天|今天用|就今天|一天的|当天", "日包 当日"),
        (r"开门|关门|几点|营业(?!厅)", "营业 时间"),  # a 营业厅 named is where, not when
        (r"手机卡|电话卡|sim|卡.{0,4}(?:坏了|丢了|掉了|不见了|没了)", "sim卡 补卡"),
        (r"补[了个张一办]{1,3}卡", "补卡"),
        # "刚补了卡 能不能…": what may not be done soon after something else (a waiting period, a condition)
        (JUST_DID, "限制 条件 入网满 小时内"),
        (r"不想用了|不打算用了|不要了|注销|销号|退掉.{0,2}(?:卡|号|套餐)", "销户 解约 违约金"),
        (r"网速|速度", "速率 网速"),
        (r"(?:亮|闪|是|变|发)红|红灯|红色", "红灯 los灯"),  # the light a modem turns red is the fibre-loss one
        (r"超出|超了|用超|超过|(?<![没不])用完", "套餐外 超出"),
        (r"没用完|用不完|剩下的流量|剩余的?流量|接着用|留到下个?月|下个?月.{0,4}(?:接着|继续|还能)用", "结转 剩余"),
        (r"一年一年?交|按年交|年交|交一年|一次交.{0,2}年|包年|一年.{0,4}(?:付|交|缴)清?|(?:付|交|缴)(?:清|齐)?一年|一次性.{0,4}(?:付|交|缴)", "年付 预付12个月"),
        (r"送不送|送[^，。]{0,4}(?:宽带|副卡|流量)|赠送|含不含|包不包括|包不包含|带不带", "含 赠送 权益"),
        (r"封顶|最多扣|最多收|上限|一直算|有没有个?头|没个?头|无限|一直.{0,3}扣", "封顶 累计"),
        (r"赔|补偿|补回|补给?我", "补偿 减免 返还"),
        (r"最晚|截止|几号", "前 日"),
        (r"罚|晚交|迟交|逾期|拖欠|拖[过到了]|没按时交|(?:过了?|超过|拖到|晚于)[^，。号]{0,4}号.{0,3}[交缴付]", "滞纳金 逾期"),
        (r"名下(?:有|多|冒|还有|怎么)|不是我.{0,3}办的|不是本人|冒用|盗用", "名下号码 非本人办理"),
        (r"(?:转|过|换)到.{0,6}名下|(?:转|过)给|换.{0,2}机主|改.{0,2}机主", "过户"),
        (r"网龄|在网.{0,2}(?:时间|多久|年)|年头", "在网时长"),
        (r"(?<!你们)(?:单位|公司)", "企业用户"),
        (r"连[了着上]?[^，。个台]{0,6}[个台](?![月天礼星小钟])|设备", "同时连接 设备"),
        (r"(?:网|网络|上网)\S{0,3}卡|卡顿|卡得", "网速 速率"),
        (SELF_HELP.pattern, "自查 步骤"),
        (r"网上|线上|手机上办|app上|在家办|不想跑|懒得跑|不用跑", "线上 app"),
        (r"怎么开|怎么开通|怎么办理|怎么订|怎么申请|在哪办|哪里办|如何办", "开通方式 办理渠道 订购方式 申请渠道"),
    )
)


def normalise(text: str) -> str:
    text = chinese_to_digits(text.lower())
    for pattern, replacement in _UNIT_FORMS:
        text = pattern.sub(replacement, text)
    return text


def expand_query(query: str) -> str:
    """The query with the document words for what the caller said appended (for lexical search)."""
    extra = [words for pattern, words in QUERY_EXPANSIONS if pattern.search(query)]
    return " ".join([query, *extra])


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
