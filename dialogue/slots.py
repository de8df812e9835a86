"""Slot values taken from what the caller said, never made up: phone, address, since, types.

Every extractor returns the caller's own wording (or a normalised phone number) or None.
"""

from __future__ import annotations

import re
import unicodedata

_SPOKEN_DIGITS = str.maketrans("零〇洞幺一二两三四五六七拐八九勾", "0001122345677899")
_DIGIT_CHARS = "0-9零〇洞幺一二两三四五六七拐八九勾"
# A run of digits (spoken or written) with the spaces and dashes callers put between groups.
_DIGIT_RUN = re.compile(rf"[{_DIGIT_CHARS}](?:[\s\-–—,，、]*[{_DIGIT_CHARS}]){{6,}}")
_PHONE = re.compile(r"1[3-9]\d{9}")
_OWN_NUMBER = re.compile(
    r"(现在打.{0,3}的|现在用的(?:这个|这个号码?|号码?)(?![^，。\s]{0,2}(?:套餐|卡|宽带|手机))|打进来的|正在用的|来电号码?|本机|这个号码?就是|就是这个号|就用这个号|用的这个号|这个手机号|打过来的|"
    r"(?:电话|号码?)[^，。]{0,8}(?:查得到|能查到|看得到|能看到))"  # "电话你们那边查得到"
)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def spoken_digits_to_numerals(text: str) -> str:
    """幺三八 零零幺二 三四五六 -> 13800123456 (only inside runs of seven or more digits)."""

    def convert(match: re.Match[str]) -> str:
        return re.sub(r"[\s\-–—,，、]", "", match.group(0)).translate(_SPOKEN_DIGITS)

    return _DIGIT_RUN.sub(convert, text)


def extract_phone(text: str) -> str | None:
    """The last 11-digit mobile number in the text (a correction comes after the mistake)."""
    found = _PHONE.findall(spoken_digits_to_numerals(normalise(text)))
    return found[-1] if found else None


def gives_details(text: str) -> bool:
    """Whether the utterance holds a phone number, an address, or says "the number I am calling from"."""
    return extract_phone(text) is not None or extract_address(text) is not None or refers_to_own_number(text)


# Words that only frame details ("我家地址是…", "电话就是…").
_DETAIL_FRAME = re.compile(r"我们?|你们|应该|能?[看查][得到]到?|家里?|的|地址|住址|位置|电话|号码?|手机|联系|就是|是|在|那个|这个|那边|嗯|啊|呢|吧|对|好|喂|哦")


def only_details(text: str) -> bool:
    """Whether the utterance is details and nothing more (an address, a number, since when): said for
    something asked or told earlier, so it names no intent of its own."""
    if not gives_details(text):
        return False
    rest = re.sub(r"\s", "", normalise(text))
    for found in (extract_address(text), extract_since(text)):
        if found:
            rest = rest.replace(re.sub(r"\s", "", found), "")
    rest = _OWN_NUMBER.sub("", _DIGIT_RUN.sub("", rest))
    rest = _DETAIL_FRAME.sub("", re.sub(r"[^\u4e00-\u9fff]", "", rest))
    return len(rest) <= 6


def refers_to_own_number(text: str) -> bool:
    return bool(_OWN_NUMBER.search(text))


# Marks that make a piece of speech an address: an administrative area, a road, an estate, a building.
_AREA_MARK = re.compile(
    r"(省|市|区|县|镇|乡|村|路|街|大道|巷|胡同|小区|花园|家园|公寓|苑|庭|城|大厦|广场|园区|软件园|号楼|"
    r"栋|幢|单元|湾|邨|府|山庄|别墅|公馆|华庭|大院|新村)"
)
# Marks that only continue an address already begun (弄 and 里 are also everyday words).
_MORE_MARK = re.compile(r"(弄|里|室|楼|居|阁|轩|岸|中心|期|\d+|[一二三四五六七八九十百]+号)")  # 三号 alone is a date
_FILLER = re.compile(
    r"^(喂|嗯+|呃|啊|哦|那个|就是那个|就是|的?(?:家庭|家里|我的|新的?|安装|装机|具体)?(?:住址|地址|位置)(?:是|在|啊)?|地方么?|装在|安装在|我家住?在?|我家里?在?|"
    r"俺家在?|我屋头在?|我住在?|住在|家住|我人在|人在|我在|我们在|(?:我们?的?)?(?:单位|公司|厂里|学校)(?:在|是)|在|是)+"
)
_HESITATION = re.compile(r"^(?:嗯+|呃|啊|哦)+")
_TRAILER = re.compile(r"(那一片|这一片|那一下|那一哈|一带|那边|这边|那里|附近|上班的地方|上班|工作|那块|那儿|这儿|这里|的)+$")
# Where the address stops within a piece: the caller goes on about themselves.
_SPEAKER = re.compile(r"(我|俺|他|她|上班|工作|住的|家里)")
_NOT_ADDRESS = re.compile(
    r"(手机|电话|号码|信号|网|宽带|套餐|流量|话费|投诉|邻居|光猫|灯|营业厅|多久|多长|时间|什么|怎么|吗|呢|开始|以后|之前|"
    r"昨天|今天|前天|早上|晚上|下午|上午|星期|礼拜|小时|app|App|APP|叫|让|弄好|去弄|服务)"
)


def _address_pieces(text: str) -> list[str]:
    pieces = re.split(r"[\s,，。！？!?；;、]+", spoken_digits_to_numerals(normalise(text)))
    kept: list[str] = []
    for piece in pieces:
        if kept and _FILLER.fullmatch(piece):
            continue  # "海澄路 就是那个 滨江花园": chatter between parts of the address
        # Inside the address only hesitations go: "一号 那个商场里" stays as said, all of it the caller's.
        core = _TRAILER.sub("", (_HESITATION if kept else _FILLER).sub("", piece))
        if kept and (cut := _SPEAKER.search(core)) is not None:
            core = _TRAILER.sub("", core[: cut.start()])  # 软件园二期那一片我上班的地方 -> 软件园二期
        if not core or _NOT_ADDRESS.search(core):
            if kept and piece and not _FILLER.fullmatch(piece):
                break  # the address ended
            continue
        if _AREA_MARK.search(core) or (kept and _MORE_MARK.search(core)):
            kept.append(core)
        elif kept and len(core) <= 6:
            kept.append(core)  # a name after the road (金沙湾, 幸福里): the caller is still saying the address
    return kept


def extract_address(text: str) -> str | None:
    """The caller's address or location in their own words, e.g. 南港区海澄路滨江花园十二栋."""
    pieces = _address_pieces(text)
    address = "".join(pieces)
    return address if len(address) >= 3 else None


_CORRECTION = re.compile(r"不是\s*(?P<wrong>[^\s，,。]+?)\s*[，,]?\s*(?:而)?是\s*(?P<right>[^\s，,。]+)")


# A part of an address by what ends it: 东湖区 | 梧桐路 | 十八号 | 3号楼 | 五零一室.
_ADDRESS_PART = re.compile(r".*?(?:小区|花园|家园|公寓|大厦|号楼|单元|胡同|[区县镇乡村路街道巷弄苑园栋幢座楼号室])")
# "不对 是二十八号": only the right part is said; it replaces the part of the same kind.
_CORRECTED_TO = re.compile(r"(?:不对|错了|说错|搞错|记错|更正|纠正|应该是)[^是，,。]{0,6}是\s*(?P<right>[^\s，,。]+)")


def apply_address_correction(text: str, current: str | None) -> str | None:
    """不是锦绣小区 是锦秀家园, or 不对 是二十八号 -> the current address with the wrong part replaced."""
    text = normalise(text)
    if not current:
        return None
    if (match := _CORRECTION.search(text)) and match.group("wrong") in current:
        return current.replace(match.group("wrong"), match.group("right"))
    if match := _CORRECTED_TO.search(text):
        return _replace_parts(current, match.group("right"))
    return None


def _replace_parts(current: str, right: str) -> str | None:
    """The parts of `current` from the kind `right` starts with to the kind it ends with, replaced by it."""
    said = _ADDRESS_PART.findall(right)
    if "".join(said) != right:
        return None  # not an address part ("是我记错了")
    parts = _ADDRESS_PART.findall(current)
    kinds = [_kind(part) for part in parts]
    first, last = _kind(said[0]), _kind(said[-1])
    if first not in kinds or last not in kinds:
        return None
    start = kinds.index(first)
    end = len(kinds) - 1 - kinds[::-1].index(last)
    if end < start:
        return None
    return "".join(parts[:start]) + right + "".join(parts[end + 1:]) + current[len("".join(parts)):]


_SAME_KIND = {"街": "路", "道": "路", "巷": "路", "弄": "路", "胡同": "路",
              "花园": "小区", "家园": "小区", "公寓": "小区", "苑": "小区", "园": "小区", "大厦": "小区",
              "幢": "栋", "座": "栋", "号楼": "栋", "乡": "镇"}


def _kind(part: str) -> str:
    """What a part of an address names: a road (路, 街, 巷 …), an estate (小区, 花园 …), a building …"""
    ending = re.search(r"(?:小区|花园|家园|公寓|大厦|号楼|单元|胡同|.)$", part).group(0)  # type: ignore[union-attr]
    return _SAME_KIND.get(ending, ending)


_SINCE = re.compile(
    r"((?:从|打|由)?(?:(?:这|上)个?(?:周|星期|礼拜)[一二三四五六日天]|大?前天|大?前儿个?|昨天|昨晚|昨儿个?|昨个|昨日|昨夜|今天|今儿个?|琴日|寻日|尋日|今朝|"
    r"上周|上个?星期|上个?礼拜|(?:上个?|这个?|本)?月(?:初|底|中)|上个?月|刚才|刚刚|(?:周|星期|礼拜)[一二三四五六日天])"
    r"(?:早上|上午|中午|下午|傍晚|晚上|夜里|夜晚|[前后]?半夜|凌晨)?(?:开始)?"
    r"|(?:这|近)(?:几|两|两三)天|(?:一|两|三|半|好几|几|十)个?[多来]?个?(?:小时|钟头|天|星期|礼拜|周|月)(?:了|前|以前|之前|吧)"
    r"|(?:一|两|三|半|好几|几|十)个?[多来]个?(?:小时|钟头|天|星期|礼拜|周|月)"
    r"|(?:今天|今儿个?)?(?:早上|上午|中午|下午|晚上)(?:起来)?)"
)
# "这两天", "最近", a bare "晚上" (when it happens, not since when): a later, plainer answer ("从大前天开始") replaces them.
VAGUE_SINCE = re.compile(r"^(?:(?:这|近)(?:几|两|两三)天|最近|近来|(?:早上|上午|中午|下午|晚上)(?:起来)?)$")


def extract_since(text: str) -> str | None:
    found = "".join(match.group(0) for match in _SINCE.finditer(normalise(text)))
    return found or None


# Ordered: the first pattern that matches decides.
FAULT_TYPES: tuple[tuple[str, str], ...] = (
    ("call_drop", r"掉话|打着打着|打起打起|说着说着|聊着聊着|说不了两句|说两句就断|通话.{0,12}断|电话.{0,12}断|打电话.{0,8}掉线|"
                  r"电话.{0,12}没声音"),
    ("intermittent", r"时断时续|时好时坏|时有时无|断断续续|一会儿?.{0,6}一会儿?|一阵.{0,4}一阵|断一下又好|好了又断|连上又断|又断|老是?断|总是?断|经常断|动不动.{0,2}断|老掉线|"
                     r"掉网|一会儿?又(?:好|有|能用)|又有了|又好了|"
                     r"掉线|断好几|一天.*断|不稳定"),
    ("no_signal", r"没有?信号|信号(?:一点|一格|一丁点|半点)?(?:都|也)没|无信号|一格信号|冇信号|无服务|没服务|信号.{0,3}(?:差|弱)|打不出去?|打不了电话|打不通"),
    ("slow", r"慢|测(?:速|出来|下来|了一下)?.{0,6}(?:只有|才)|达不到|卡顿|很卡|好卡|太卡|特别卡|卡得|卡死|转圈|缓冲|延迟|刷不出来|网速"),
    ("no_connection", r"上不了|上不去|上不到|没有?网|无网|冇网|断网|网断了|断了|连不上|连不了|上唔到|LOS|los|不亮|灭了|红灯|(?:亮|闪|变|发)红|"
                      r"PON灯.{0,4}闪|一点网都没有|用不了|打不开|不能上网|没法用|没法上网|用不成|瘫了"),
)

# The caller's details sold or leaked: a grievance of its own kind, and an accusation however it is put.
DETAILS_SOLD = r"(?:信息|资料|号码).{0,6}(?:卖|泄)|卖给别人|泄露|(?:漏|泄|传|卖)出去"

COMPLAINT_TYPES: tuple[tuple[str, str], ...] = (
    # a count of failures, not of anything else ("约了三次" is of visits)
    ("repeated_outage", r"(?:断|坏)了.{0,4}[回次]|(?:断|坏|掉|故障|报修|修)[^，。]{0,8}(?:[几两三四五六]|好几)[回次]|"
                        r"(?:[几两三四五六]|好几)[回次][^，。]{0,4}(?:断|坏|掉|故障|报修)|又断|又坏|又不行|反复|修好了.*又|修完.{0,6}又|"
                        r"老是坏|经常坏|三番五次|屡次|(?:还是|一直|总是|老是|总)(?:修不好|没修好)"),
    ("billing_dispute", r"扣费|扣了|乱扣|多扣|扣.{0,6}[块元钱]|话费|账单|收费|多收|乱收|电话费|多了.*[块元箍]|没.{0,4}同意|"
                        r"莫名其妙|不明|偷偷|私自开|给我开了|开通了.{0,8}(?:会员|业务|包)"),
    ("service_quality", r"师傅|态度|没来|不接|服务|等了|迟到|不理|排队|工作人员|营业员|客服.{0,4}(?:差|不)|推诿|踢皮球|推来推去|"
                        r"投诉.{0,4}(?:客服|接线员)|说的(?:都|各)?不一样|说法不一|解决不了|"
                        r"没人.{0,4}回|不回电话|没.{0,3}回复|没人(?:给我)?(?:打|来)?(?:电话|联系)|没(?:人)?联系我"),
    ("other", rf"{DETAILS_SOLD}|骚扰电话|推销电话|打电话推销"),  # privacy, nuisance calls
)

REQUEST_TYPES: tuple[tuple[str, str], ...] = (
    ("suspend_keep_number", r"停机保号|保号|号[^。？?]{0,10}(?:留着|保留|保住|留住)|(?:别|不要|不能|不想)(?:给我?|被)?(?:注销|销号|收回)"),
    ("sim_replacement", r"补卡|补办.*卡|补.{0,2}张.{0,2}卡|换卡|卡.{0,2}(?:丢了|坏了|掉了|不见了)"),
    ("broadband_move", r"移机|宽带.*搬|搬家.*宽带|宽带.{0,6}(?:移|挪|迁)|(?:移|挪|迁)到新"),
    ("broadband_install", r"装[^，。]{0,8}宽带|办.{0,3}宽带|(?:拉|接|开)[^，。的]{0,4}宽带|宽带.*安装|新装"),
    ("plan_change", r"换套餐|改套餐|变更套餐|换成.*的|改成.*的|换个套餐|套餐.{0,6}(?:换|改|变|升|降)|升档|降档|(?:升|降)级?(?:成|到).{0,8}(?:的|套餐|那个|那种)|"
                    r"宽带.{0,10}(?:升|提|降)(?:到|成|速)|(?:升|提|降)速"),
    ("compensation", r"补偿|赔偿|赔钱|赔[我给]|补给?我|补回来|(?:钱|费)[^，。]{0,6}(?:补|赔|退|返)回"),
    ("invoice", r"发票|专票"),
)


def classify(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for name, pattern in table:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return name
    return None


_STORE = re.compile(r"([^\s，,。]{2,12}?(?:营业厅|门店|店))")
_DATE = re.compile(r"((?:今天|明天|后天|大后天|(?:这|下)?(?:周|星期|礼拜)[一二三四五六日天]|下周|\d+月\d+[日号])"
                   r"(?:上午|下午|中午|晚上)?)")


_ANY_STORE = re.compile(r"就近|附近|最近|离.{0,3}近|随便|任意|任何|哪")


def extract_store(text: str) -> str | None:
    """A named store (星河广场旗舰店), not a plain 营业厅."""
    for match in reversed(list(_STORE.finditer(normalise(text)))):
        name = re.sub(r"^(?:那个|这个|那家|这家|哪个|哪家|个)", "", re.split(r"去|到|在", match.group(1))[-1])
        if name not in ("营业厅", "门店", "店") and len(name) >= 3 and not _ANY_STORE.match(name):
            return name
    return None


def extract_date(text: str) -> str | None:
    match = _DATE.search(normalise(text))
    return match.group(1) if match else None
