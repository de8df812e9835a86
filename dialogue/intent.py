"""What the caller wants, from what they said: rules that are cheap and predictable, and say when they
are sure. When they are not, the manager asks the language model (see `dialogue.judge`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pypinyin import lazy_pinyin

from core.numbers import chinese_to_digits
from core.phrases import SELF_HELP
from dialogue.slots import DETAILS_SOLD


class Intent(StrEnum):
    CONSULTATION = "consultation"
    FAULT_REPORT = "fault_report"
    COMPLAINT = "complaint"
    SERVICE_REQUEST = "service_request"
    ESCALATION = "escalation"
    GOODBYE = "goodbye"
    ACKNOWLEDGE = "acknowledge"  # "好的 知道了": nothing to do
    OTHER = "other"


TICKET_INTENTS = (Intent.FAULT_REPORT, Intent.COMPLAINT, Intent.SERVICE_REQUEST)


@dataclass(frozen=True)
class IntentGuess:
    intent: Intent
    sure: bool  # the rules found an unambiguous cue; otherwise the model should judge


# A request for a person.
_NOT_THE_MACHINE = r"不跟机器|不要机器|不想跟机器|别用机器|不和机器|不想和机器"
_HUMAN = re.compile(
    rf"人工|真人|转接|接线员|客服代表|客服人员|经理|领导|主管|负责人|{_NOT_THE_MACHINE}|机器人.{{0,4}}(?:不|没用|算了)|"
    r"管事的|说了算的|能做主的|做得了主的|活人|(?:跟|和|找)个?人(?:说话|讲话|聊|沟通)|(?:让|叫|找|换)个?真?人(?:来)?(?:接|听|说|讲|跟我)|(?:跟|和|找|让)(?:你们)?的?工作人员.{0,2}(?:说|讲|聊|沟通|谈)|都是机器|全是机器|老是机器"
)
# Turning the machine down is a request for a person however it is put ("能不能别让机器跟我说").
_REFUSES_MACHINE = re.compile(_NOT_THE_MACHINE)
_WHEN = re.compile(r"几点|什么时候|啥时候|时间|上班|下班|营业")
_TRANSFER = re.compile(rf"转|接|叫|找|换|要|给我|帮我|来跟|来和|{_NOT_THE_MACHINE}|机器人")
# The same request as it sounds, so that a misheard 转人工客服 (转员工克服) still reaches a human.
_HUMAN_SOUNDS = re.compile(r"\bren gong\b|\bzhuan( \w+){0,3} ke fu\b|\bzhen ren\b|\bgong ke fu\b")
# Frustration with the bot itself: a person should take over unless the caller wants something else.
_FRUSTRATED = re.compile(r"听不懂|听不明白|没听懂|没听明白|整不明白|说不明白|讲不明白|绕来绕去|解决不了|破客服|什么破|没用的|答非所问|绕圈子")

# A charge for what the caller never took ("会员我压根没开过").
_NEVER_TOOK = r"(?:从来|根本|压根儿?)没(?:开|订|办|开通|订购|用)过"
_COMPLAINT = re.compile(
    r"投诉|举报|曝光|乱收费|乱扣|多扣|瞎扣|坑人|骗人|欺骗|态度.{0,3}(?:差|恶劣|不好)|太差了|不像话|没人管|凭什么|讨个说法|给个说法|"
    r"不满意|很不满|太不负责|爱理不理|不理人|没经过.{0,4}同意|私自给我|"
    r"泄露|人都没来|人没来|没人来|没人上门|放鸽子|爽约|白等|电话也不接|电话都不接|不接电话|这(?:叫|是)?(?:什么|啥)(?:服务|态度)|"
    # a visit promised and missed, a fault back soon after its repair, "do you care at all"
    r"(?:师傅|工程师|装维|维修的|人).{0,10}(?:都|也|还)?没(?:来(?!得及)|到(?!账)|上门)|约了.{0,3}[两三四五几好]+[次回]|等了(?:一整天|一天|半天|一上午|一下午)|"
    r"修好.{0,8}又|修完.{0,8}又|能不能管|管不管|有没有人管|"
    # no call back after a complaint; the caller's details sold or leaked; a charge never agreed to
    rf"没人.{{0,4}}回个?(?:电话|复|话)|一直没.{{0,3}}(?:回复|回电|联系我)|不回电话|{DETAILS_SOLD}|{_NEVER_TOOK}|"
    # worn out: called again and again for nothing, never told, "too much"
    r"太过分|欺人太甚|[打来]了.{0,3}(?:[几两三四五六]|好几)[次回个趟]电话?.{0,6}(?:没|不)|没人通知|也不通知|都不通知|不通知一声"
)
# Charges or acts the caller says were wrong: a complaint even when put as a question ("怎么扣了八十 乱扣费").
_ACCUSATION = re.compile(rf"乱收费|乱扣|多扣|瞎扣|坑人|骗人|欺骗|没经过.{{0,4}}同意|私自|{DETAILS_SOLD}|{_NEVER_TOOK}")
# Said for effect, not asked: "慢得跟啥似的", "这什么服务啊".
_RHETORICAL = re.compile(
    r"(?:跟|像)(?:啥|什么)(?:一样|似的)|这(?:叫|是)?(?:什么|啥)(?:服务|态度|效率|速度|破?网|东西|事儿?|玩意儿?)[啊呀嘛]?|"
    r"(?:你们)?到底(?:能不能|管不管|还管不管|修不修|有没有人)[管修]?[啊呀嘛了]?|(?:你们)?到底(?:怎么|咋)(?:处理|回事|搞|弄)的?[啊呀嘛]?"
)

# A problem with the caller's own service: the thing, then what is wrong with it.
_SERVICE_OBJECT = r"(?:宽带|网络?|wi-?fi|无线|光猫|路由器?|信号|手机|电话|上网|网速|流量|电视|iptv|机顶盒|号码?|卡)"
_PROBLEM = (
    r"(?:断|不通|上不了|上不去|上不到|连不上|连不了|没有?网|没有?信号|冇|掉线|掉话|老掉|慢|卡顿|很卡|好卡|特别卡|卡得|卡死|(?:老是|总是|老|总|经常)卡|"
    r"坏|故障|不亮|红灯|亮红|闪红|用不了|打不出|打不了|打不通|接不到|听不清|无服务|没服务|显示.{0,4}(?:无|没)|"
    r"时好时坏|时断时续|时有时无|一会儿?有一会儿?没|一阵有一阵没|不稳定|延迟|转圈|缓冲|刷不出|打不开|看不了|不能用|没法用|没法上|用不成|瘫了|"
    r"测(?:速|出来|下来|了一下)?.{0,6}(?:只有|才)|达不到|出问题|有问题|不正常|异常|很弱|太弱|很差|太差|特别差|极差|很费劲|费劲|"
    r"烫|发热|焦味|糊味|冒烟|烧了|烧起来|异响|死机|收不到|发不出|信号都没有|一点信号|没有一点|(?:一点|一格|一丁点|半点)(?:都|也)没|"
    r"还是没有?用|还是不行|还是一样|还是上不|没有用|不管用|不顶用)"
)
_FAULT = re.compile(
    rf"{_SERVICE_OBJECT}.{{0,12}}{_PROBLEM}|{_PROBLEM}.{{0,6}}{_SERVICE_OBJECT}|"
    r"报.{0,2}故障|报修|报个?障|修一下|来修|断网|没网了|没信号了|一格信号|LOS灯.{0,4}(?:亮|红|闪)|"
    r"(?:网|网络|信号|宽带)[^，。]{0,10}(?:就|都|全|突然|一下)?没了",
    re.IGNORECASE,
)
# A fault already over ("断了三天才修好"): asked about afterwards (compensation), not reported; one back
# after its repair ("修好了又断") is still on.
_FIXED = re.compile(r"(?:才|已经|早就|总算|终于|后来|现在)(?:修好|好|恢复|能用)了?|修好了")
_BACK_AGAIN = re.compile(r"(?:修好|好|恢复|能用)了?.{0,8}又")
_SUPPOSING = re.compile(r"如果|要是|万一|假如|假设|的话")
_ASKS_REPAIR = re.compile(r"来修|修一下")
_REPORTED_BEFORE = re.compile(r"(?<![要想去])报(?:了|过)修|(?<![要想去])报修(?:过|[^，。？?\s]{0,4}了)")


# What the caller asks of a report or complaint as they make it: when it is handled, what they get back.
_ASKS_OUTCOME = re.compile(
    r"(?:多久|多长时间|几天|什么时候|啥时候|多快|要等多久).{0,10}(?:修|处理|好|来|上门|说法|答复|回复|回电|解决|恢复|结果)|"
    r"怎么赔|赔多少|赔不赔|怎么补偿|补偿多少|补不补偿|能退|退不退|退回来|能不能退|会不会退|"
    r"能(?:不能)?解决|解决得了|有(?:没有)?(?:什么)?办法"  # whether anything can be done about it
)


def asks_outcome(text: str) -> bool:
    """The caller asks when their report will be handled or what they will get back ("多久能修好", "怎么赔")."""
    return bool(_ASKS_OUTCOME.search(text))


def _reports_fault(text: str) -> bool:
    # What might go wrong ("坏了的话多久能修") is asked about, not reported.
    text = "，".join(clause for clause in re.split(r"[，,。？?！!\s]+", text) if not _SUPPOSING.search(clause))
    # A report already made ("我报修宽带了 多久来修") is asked about; only a problem told again counts.
    text, reported = _REPORTED_BEFORE.subn("，", text)
    if reported:
        text = _ASKS_REPAIR.sub("，", text)
    return bool(_FAULT.search(text)) and not (_FIXED.search(text) and not _BACK_AGAIN.search(text))


# Something the caller tried to get done did not work: a request for help with that service.
_SERVICE_PROBLEM = re.compile(r"开不出|办不了|办不成|没收到|收不到|提示失败|失败了|不成功|没到账|不到账|没生效|用不上")
_SERVICE = re.compile(
    r"停机保号|保号|号[^。？?]{0,10}(?:留着|保留|保住|留住)|号[^。？?]{0,16}(?:别|不要|不能)(?:给我?|被)?(?:注销|销号|收回)|补卡|补办|补一张|补.{0,2}张.{0,2}卡|换卡|换套餐|改套餐|换成|改成|变更|"
    r"套餐.{0,6}(?:升|降)|(?:升|降)(?:到|成).{0,8}套餐|升级?(?:到|成)[^，。]{0,8}(?:的|套餐|那个|那种)|升档|降档|"
    r"(?:装|办)(?!的)[^，。]{0,8}宽带|(?:拉|接|开)[^，。的]{0,4}宽带|宽带.{0,4}(?:装|办)(?!的)|新装|宽带.{0,6}(?:移|挪|迁|搬)|"
    r"宽带.{0,10}(?:升|提|降)(?:到|成|速)|(?:升|提|降)速|"
    r"移机|挪|迁移|搬.{0,4}宽带|宽带.{0,4}搬|发票|专票|补偿|赔偿|(?:补|赔)给?我|预约|约个?时间|约(?:个|在)?(?:周|星期|礼拜|明天|后天|今天)|申请|开通|取消|退订|销户|过户|办理|办一个|办个|帮我办|给我办|"
    r"改成|换成|套餐.{0,6}(?:改|换)"
)
# The caller asks about something rather than asking us to act on it; a plain question word settles it.
_PLAIN_QUESTION = re.compile(
    r"想问|问一下|问下|问问|请问|打听|了解一下|了解下|咨询|有关系吗|有没有关系|有关系没|是不是因为|会不会是|多少钱|几块钱|多久|多长时间|多少天|(?<![这前过近好十])几天|几号|几点|"
    rf"{SELF_HELP.pattern}|什么意思|正常吗|正不正常|是不是正常|正常不|正常么|啥意思|怎么收费|怎么算|收不收|要不要钱|要带|带什么|哪些|可不可以|能不能|有没有|是多少|有多少|给多少|找谁|问谁|"
    r"(?<!为)什么(?!都|也|破)|(?<!为)啥(?!都|也|子都)|怎么(?!回事|又|老|总|搞|这么|那么|还|就|会|办|整)|是.{1,12}还是|"
    r"(?:该|应该|选|用|连|办)[^，。？?]{1,12}还是|好还是|(?:该|应该|选|用|连|办|买|订)哪(?:个|一个|种|样)|"  # which of two
    r"(?P<yes>要|是|能|会|可|用|收|扣|退|给|送|开)[不没](?P=yes)|[能会可要].{1,20}不[？?]?$|(?<![好这前过近十])几(?:次|张|个|回|块|岁|年|个月)"
)
# After a wish, a yes-or-no question about what it would get ("我要开发票 能要纸质的吗"), not a plea to do it.
_ASKS_ABOUT_WISH = re.compile(
    r"(?:能|可以)(?!帮|给我|替我|办一?下)[^，。？?\s]{1,10}[吗么](?=\s|$|[？?，,。])|"
    r"(?:^|[\s，,])[^，。？?\s]{1,4}多少钱?[啊呀呢]?[？?]?$"  # "…想换成一千兆的 月租多少"
)
_QUESTION = re.compile(
    rf"{_PLAIN_QUESTION.pattern}|多少|几个|好久|多大|谁|哪|是不是|可以吗|能吗|行不行|要不要|吗|呢|了没有?(?=\s|$|[？?，,。])|(?<![怎什])么(?=\s|$|[？?，,。])|"
    r"(?P<verb>[\u4e00-\u9fff])[不没](?P=verb)"  # 贵不贵, 开不开, 扣不扣: a question whatever the topic
)

# Asking for help with something that is wrong ("这可咋整", "怎么回事"): a report, not a question.
_HELP = re.compile(r"怎么办|怎么整|咋整|咋办|怎么回事|咋回事|怎么搞的|咋搞的|如何是好|这是(?:干|搞|弄)(?:什么|啥)(?![的用])|(?:干|搞|弄)(?:什么|啥)呢?这是")
# A wish ("我想开个发票") is an act unless the same utterance plainly asks something about it.
_ACTS = r"办|申请|预约|开|装|改|换|停|补|移"  # what a caller asks to have done
_WISH = re.compile(
    rf"我(?:要|想)(?:(?:在|去|到)[^，。\s]{{1,12}}?)?(?:报修|报障|{_ACTS})|想把|要把"  # 我想在旗舰店补张卡
)
_EXPLICIT_ACT = re.compile(
    r"我要投诉|我想投诉|要投诉|投诉一下|帮我(?:办|报|登记|预约|申请|提交|开|查|处理|修|弄)|给我(?:办|报|登记|预约|开|处理|修)|"
    r"那就(?:办|换|改|开|装)|就(?:办|换|改)(?:吧|一个)|(?:办|换|改)吧|报个故障|报修一下|派人|来修|上门修|快点修|修一下|"
    r"想约|约个|帮我约|给我约|帮我把|给我把|给我补偿|(?:要|得|申请)补偿(?![吗么])|赔我|补偿我|给个补偿"
)
# Asking for something to be done, whatever the service ("想给我妈开个副卡", "号想换个便宜点的").
_REQUEST_FORM = re.compile(
    rf"(?:想|要|得|需要|麻烦|请)(?:给[^，。]{{1,4}}|帮我|把[^，。]{{1,8}})?(?:{_ACTS}|拉|接|加|弄|搞|整|取消|退订)|"
    r"帮我(?:办|开|弄|换|改|加|停|补)|给我(?:办|开|弄|换|改|加|停|补)"
)
# "好的 知道了": the caller has what they needed, for now.
_ACKNOWLEDGE = re.compile(
    # one word per repeat (嗯, not 嗯+): a nested repeat would backtrack for ever on "嗯嗯嗯…" that does not match
    r"^(?:(?:好的?|好嘛|嗯|哦|行|可以|明白了?|知道了|晓得了|了解了?|清楚了|懂了|谢谢|那我|我先|我去|我再)[\s，,。]*)+"
    r"(?:.{0,12}(?:知道了|明白了|晓得了|了解了|清楚了|懂了|试试|看看|看下|去看|再说|谢谢))?[\s，,。]*$"
)
# Closing words, one or several ("好的谢谢啊 没别的事了"), and nothing else.
_CLOSING = r"谢谢(?:你|您)?|多谢|再见|拜拜|没有了|没事了|就这样|就这些|没别的(?:事|问题)?了?|没有别的(?:事|问题)?了?|不用了"
_GOODBYE = re.compile(
    rf"^(?:(?:好的?|嗯|行|那|ok)[\s，,。]*)*(?:(?:{_CLOSING})[了吧啊呀啦]*[\s，,。！!]*)+$",
    re.IGNORECASE,
)

# Only an objection, nothing else: "不对" / "错了" (what the bot said is wrong) or "等一下" / "停" (let me speak).
_WRONG = re.compile(r"^(?:哎|诶|唉)?(?:不对|不是|错了|说错了|搞错了)+[啊呀吧了嘛]*$")
# Whisper loses the first consonant of a clipped "不对" / "不是" ("无对"): the same as it sounds.
_WRONG_SOUNDS = re.compile(r"^(?:(?:ai|ei) )?(?:[bwpm]?u (?:dui|shi) ?)+(?:(?:a|ya|ba|le|ma) ?)*$")
_NUMERAL = re.compile(r"[0-9零一二两三四五六七八九十]")  # "五十" sounds like "不是": a number is never an objection
_WAIT = re.compile(r"^(?:哎|诶|唉|喂)?(?:等一下|等一等|等下|等等|稍等|停一下|停|别说了|先别说)+[啊呀吧了嘛]*$")

_TELECOM = re.compile(
    r"套餐|流量|话费|宽带|信号|网络|上网|网速|测速|专票|增值税|漫游|号码|手机|电话|卡|营业厅|发票|缴费|交费|充值|账单|欠费|停机|通话|短信|"
    r"光猫|路由|wi-?fi|5g|4g|携号|补卡|实名|投诉|报修|客服|资费|合约|运营商|热线|详单|手表|esim|加油包|月费|业务|"
    r"开门|关门|营业|上班|下班|付费|交钱|缴|扣费|扣钱|费用|收费|号|证件|身份证|办理|开通|安装|装机|长途|国际|出国|出境|境外|分钟|"
    r"月包|日包|周包|天包|\d+\s*个?\s*g|"
    r"断网|补偿|赔偿|故障|维修|修复|网|移机|拆机|销户|过户|副卡|升速|提速|降速|光纤|基站",
    re.IGNORECASE,
)


# The carrier as a company (who runs it, when it was founded): a question to the hotline that its
# knowledge base does not answer. Its shares are a matter for investors, not for customer service.
_COMPANY = re.compile(r"公司|集团|老总|董事长|总经理|总裁|老板|创始人|总部|员工|成立|营收|利润")
_INVESTMENT = re.compile(r"股票|股价|股份|市值|上市|投资|值不值得买")
# The caller's own company ("公司用的", "我们单位的号"): a customer, not a question about the carrier.
_OWN_COMPANY = re.compile(r"(?:我们|我的|我|咱们?)的?(?:公司|单位)|(?:公司|单位)(?:用|的号|的发票|的账|的宽带|的套餐)|给(?:公司|单位)")


# What only the company itself can say (its money, its people), whatever service words come with it.
_COMPANY_MATTERS = re.compile(
    r"老总|董事长|总经理|总裁|老板|创始人|总部|营收|利润|财报|年报|投了多少|投入了?多少|花了多少钱(?:建|投)|股票|股价|市值"
)


def about_the_company(text: str, carrier: str = "") -> bool:
    asked = bool(_COMPANY.search(text) or (carrier and carrier in text))
    return asked and not _INVESTMENT.search(text) and not _OWN_COMPANY.search(text)


def asks_company_matters(text: str) -> bool:
    """"你们公司今年5G投了多少钱": about the company, though it names a service."""
    return bool(_COMPANY_MATTERS.search(text)) and not _OWN_COMPANY.search(text)


# The same words as they sound, for what a recognizer wrote with the wrong characters (签照款待: 千兆宽带).
_TELECOM_SOUNDS = re.compile(
    r"\b(?:kuan dai|tao can|liu liang|hua fei|xin hao|man you|guang mao|qian zhao|zhang dan|fa piao|bu ka|"
    r"ting ji|shang wang|wang su|chong zhi|jiao fei|qian fei|bao xiu|tou su|ying ye ting|xie hao)\b"
)


def about_telecom(text: str) -> bool:
    """Whether an utterance is about the carrier's services at all (not the weather, not its shares); a
    recognizer writes 五G as often as 5G, and 签照款待 for 千兆宽带."""
    return bool(_TELECOM.search(text) or _TELECOM.search(chinese_to_digits(text)) or _TELECOM_SOUNDS.search(sounds(text)))


def sounds(text: str) -> str:
    """Toneless pinyin of the Chinese in `text`, syllables separated by spaces."""
    return " ".join(lazy_pinyin(text, errors="ignore"))


def asks_for_human(text: str) -> bool:
    return bool(_HUMAN.search(text) or _HUMAN_SOUNDS.search(sounds(text)))


def requests_service(text: str) -> bool:
    """The caller asks for something to be done, in words that may name no service the rules know."""
    return bool(_REQUEST_FORM.search(text))


def asks_plainly(text: str) -> bool:
    """A plain question (多久, 多少钱, 请问 …), even inside a request ("你们多久能来修")."""
    return bool(_PLAIN_QUESTION.search(text))


def is_question(text: str) -> bool:
    return bool(_QUESTION.search(_RHETORICAL.sub("", text)))


def guess_intent(text: str) -> IntentGuess:
    """The intent of one utterance by rules, and whether the rules are sure of it."""
    complaint = bool(_COMPLAINT.search(text))
    text = _RHETORICAL.sub("，", text)
    fault = _reports_fault(text)
    # "怎么办" asks for help with a fault, and how to get something done otherwise; "这是干什么" asks nothing.
    plain = bool(_PLAIN_QUESTION.search(_HELP.sub("，", text)) or (_HELP.search(text) and not fault))
    asking = plain or is_question(text)
    acting = bool(_EXPLICIT_ACT.search(text) or (_WISH.search(text) and not (plain or _ASKS_ABOUT_WISH.search(text))))
    if asks_for_human(text):
        if _WHEN.search(text):
            return IntentGuess(Intent.CONSULTATION, True)  # "人工几点到几点有人接": when people answer
        # "转人工" is a request; "能不能找个真人" may be either, which the judge tells apart.
        sure = (bool(_TRANSFER.search(text)) and not plain) or bool(_REFUSES_MACHINE.search(text))
        return IntentGuess(Intent.ESCALATION, sure)
    service = bool(_SERVICE.search(text))
    if complaint and (acting or not asking or _ACCUSATION.search(text)):
        return IntentGuess(Intent.COMPLAINT, True)
    if _FRUSTRATED.search(text):
        return IntentGuess(Intent.ESCALATION, not (fault or service))
    if service and (acting or _SERVICE_PROBLEM.search(text)):
        return IntentGuess(Intent.SERVICE_REQUEST, True)
    if fault and (acting or not asking or (_HELP.search(text) and not plain) or _ASKS_OUTCOME.search(text)):
        return IntentGuess(Intent.FAULT_REPORT, not service)
    if service and not asking:
        return IntentGuess(Intent.SERVICE_REQUEST, True)
    if _GOODBYE.match(text.strip("，。！？,.!? ")):
        return IntentGuess(Intent.GOODBYE, True)
    if not asking and _ACKNOWLEDGE.match(text.strip("，。！？,.!? ")):
        return IntentGuess(Intent.ACKNOWLEDGE, True)
    if asking:
        # A question about a problem may still be a report ("网怎么又断了呢"); a plain question is a question.
        return IntentGuess(Intent.CONSULTATION, plain or not (fault or complaint))
    return IntentGuess(Intent.CONSULTATION, False)


def objection(text: str) -> str | None:
    """"wrong" when the utterance only says that what the bot said is wrong ("不对", "不是"), "wait" when it
    only asks the bot to stop ("等一下", "停", "别说了"); None otherwise ("不对，是幺五八…" is a correction)."""
    bare = re.sub(r"[\s，,。！？!?、.…]", "", text)
    if _WRONG.match(bare) or (_WRONG_SOUNDS.match(sounds(bare)) and not _NUMERAL.search(bare)):
        return "wrong"
    if _WAIT.match(bare):
        return "wait"
    return None


def has_cue(text: str, intent: Intent) -> bool:
    """Whether the utterance holds any word of `intent` at all (the rules' check on the judge)."""
    patterns = {
        Intent.ESCALATION: (_HUMAN, _FRUSTRATED),
        Intent.COMPLAINT: (_COMPLAINT,),
        Intent.SERVICE_REQUEST: (_SERVICE,),
    }.get(intent, ())
    if intent is Intent.FAULT_REPORT:
        return _reports_fault(text)
    return any(p.search(text) for p in patterns) or (intent is Intent.ESCALATION and asks_for_human(text))


def classify_intent(text: str) -> Intent:
    return guess_intent(text).intent
