"""Grounded answers: which statements of the knowledge base answer a question, or why none does.

An answer quotes the statements it rests on, so every figure the caller hears is the document's own,
tied to the document it cites. Planning is blocking (it embeds the question): run it in the KB pool.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from core.numbers import chinese_to_digits
from core.phrases import JUST_DID, SELF_HELP
from dialogue.base import KnowledgePassage, KnowledgeSearch


@dataclass(frozen=True)
class Grounded:
    """Statements of one document that answer the question."""

    doc_id: str
    title: str
    category: str
    statements: tuple[str, ...]
    score: float
    question: str = ""  # the question they answer, as searched


@dataclass(frozen=True)
class NotInKb:
    """The knowledge base does not answer this question; `reason` says why."""

    # off_topic | about_company | nothing_relevant | competitor | bargain | unknown_place | unknown_offer | unknown_product
    reason: str
    subject: str = ""  # what the caller asked about that the KB lacks (a place)
    alternatives: tuple[str, ...] = ()  # titles of documents the caller could ask about instead


AnswerPlan = Grounded | NotInKb


@dataclass(frozen=True)
class AnswerOptions:
    min_score: float = 0.3  # below this the best statement is not an answer
    confident_score: float = 0.6  # at or above this the best statement surely answers (said unasked)
    candidates: int = 8  # statements considered per search
    answer_type_bonus: float = 0.15  # for a statement holding the kind of value asked for (a price, a time)
    close_ratio: float = 0.93  # a second statement this close to the first is said too
    second_type_ratio: float = 0.8  # ... or this close, when it holds a kind of value the first lacks
    follow_up_margin: float = 0.2  # how much a follow-up prefers the previous answer's document
    follow_up_min_score: float = 0.15  # a follow-up's answer in the previous document may score this low
    new_topic_gap: float = 0.3  # a question that names no other subject leaves the topic only for a hit this much better
    type_tie_margin: float = 0.05  # a document this close to the best one wins when only it holds what is asked
    max_statement_chars: int = 90  # a longer statement is cut to its sentences about the question


# What kind of value a question asks for, and how a statement holding one looks.
_ANSWER_TYPES: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (name, re.compile(asked, re.IGNORECASE), re.compile(held, re.IGNORECASE))
    for name, asked, held in (
        ("price", r"多少钱|几块|几元|贵|便宜(?![的那个种]{0,3}(?:套餐|卡|宽带))|实惠|划算|收不收|要不要钱|收钱|花钱|要钱|收费|怎么算|怎么收|费用|花多少|资费|月租|钞票|扣不扣|交多少|收多少|扣多少|"
                  r"手续费|工本费|开通费|(?:收|要|交)[^，。？?]{0,6}[钱费][^，。？?]{0,2}(?:不|吗|么|没)[？?]?$",
         r"\d+(?:\.\d+)?元|免费|不收|免收|不再收取|折算"),  # 折算: how a fee is worked out
        ("time", r"多久|多长时间|好久|(?<![这前过近好十])几天|多少天|小时|什么时候|啥时候|几点|时限|几号|最晚|最长|最短|哪天|"
                 r"去年|前年|以前的|之前的|过期",
         r"\d+(?:\.\d+)?个?(?:小时|天|分钟|秒|月|年|工作日|日)|\d+:\d+|立即|即时|当日|次日|次月"),
        ("deadline", r"最晚|最迟|截止|几号(?:之|以)?前|(?:之|以)前(?:要|得|必须)",
         r"\d+(?:日|号)(?:之|以)?前|截止"),
        ("data", r"流量.{0,6}(?:多少|几)|(?:多少|几个?).{0,3}(?:流量|gb?\b)",
         r"\d+(?:\.\d+)?gb"),
        ("count", r"几个|几张|几次|几块|多少个|几多个",
         r"\d+(?:个|张|次|块)"),
        ("age", r"岁|年纪|年龄",
         r"周岁"),
        ("papers", r"证件|带什么|带啥|材料|手续(?!费)",
         r"身份证|证件|护照|授权书|通行证"),
        ("how", r"怎么(?:开|办|弄|订|申请|操作|查|交|缴|充)|在哪(?:里|儿)?(?:能)?(?:办|查)|哪里(?:能)?(?:办|查)|如何|网上|线上|app|"
                r"预约|约个?时间",  # a booking: where and how to book
         r"app|营业厅|拨打|发送|渠道|方式|线上"),  # not 短信 alone: "短信提醒" is no way of doing anything
        ("conditions", r"条件|要求|资格|什么人能|谁能办|能不能办|可以办吗|能办吗|能办不|还能办|还可以办|"
                       rf"{JUST_DID}.{{0,16}}(?:能|可以)",  # soon after
         r"条件|须|需|满\d|仅限|不可|不能|要求|停止"),
        # "还能打通吗", "上得了网吗": what can still be done; "网也上不了" only tells the trouble
        ("ability", r"还(?:能|可以)|[打接用上](?:得(?:通|到|了)|不(?:通|到|了)(?=[^，。？?\s]{0,2}[吗么]))",
         r"不能|可以|不可|无法|仍可|照常"),
        ("speed", r"多大|多少兆|几百兆|多快|速率|带宽",
         r"\d+M|\d+兆|Mbps"),
        ("limit", r"上限|封顶|最多|最高|顶多|一直算|没完|(?:还能|能不能|可以|能)再(?:办|开|加|绑|订|买)",  # one more allowed?
         r"封顶|最多|不超过|上限|累计达到"),
        ("self_check", SELF_HELP.pattern,
         r"以下步骤|自查步骤|自查：|按.{0,6}步骤"),  # the steps as the document introduces them
        ("refund", r"退[点些钱费款]|返[点还钱]|补偿|赔|减免|少收|抵扣|补回|补给我",
         r"补偿|减免|退回|返还|抵扣|赔"),
        ("payment", r"(?:怎么|在哪|哪里|去哪|帮[他她]|替[他她])(?:交|缴|充)|(?:交|缴|充)(?:钱|费|话费)|缴费|充值|续费",
         r"缴费|充值"),
    )
)
# "查一下我名下有几个号": the caller's own account, which the bot cannot see; how to look it up answers it.
_OWN_LOOKUP = re.compile(r"(?:帮我|给我)查|查(?:一下|下|查)?(?:我|自己)")

# Either of two ("该连带5G的还是不带的"): the statements about both are said.
_CHOICE = re.compile(r"(?:该|应该|选|用|连|办|是)[^，。？?]{1,12}还是|好还是")
_FOLLOW_UP = re.compile(r"^(?:那|噉|还有|另外|再问|要是|如果|那要是|那如果|它|这个?套餐|那个?套餐)|呢[？?。]?$|^.{0,8}$")
# Only a new subject: "那日本呢", "129的呢", "香港那边呢".
_ELLIPSIS = re.compile(r"^(?:那|噉|那么|还有)?[^，,。？?\s]{1,10}?(?:的|那边|那里)?呢[？?。]?$")
_FILLERS = re.compile(r"^(?:嗯+|哦+|噢|啊|喂|好的?|行|对|是吗|这样啊)[\s，,。]*")
_REFERENCE = re.compile(r"(?:请参阅|详见|参见|参考|见)《([^》]+)》")
_POINTER = re.compile(r"《[^》]+》")
# A price of the caller's own asked for ("给我个内部优惠", "便宜点吧"): not the bot's to give, whatever pages say 优惠.
_BARGAIN = re.compile(
    r"给我(?:个|点|一点|些|来个|弄个)?(?:内部)?(?:优惠|折扣|便宜)(?![的套])|打个?折(?:吧|呗|嘛|啊)|内部(?:优惠|价|折扣|渠道)|"
    r"便宜(?:点|一点|些)(?:吧|呗|嘛|啊)|老客户.{0,8}(?:优惠|便宜|折扣)"
)
_COMPETITOR = re.compile(
    r"联通|电信|广电|中国移动|移动公司|移动的套餐|(?:跟|和|比|同)移动|移动(?:那边|那家|家的|的信号)|移动的?[^，。数网宽]{0,6}套餐|隔壁(?:那?家|的?运营商|公司)|别家|别的运营商|其他运营商|其它运营商|友商"
)
# Leaving for (or coming from) another carrier with one's number: a question about porting, not about them.
_PORTING = re.compile(r"携号转网|转网|转出|转入|转到|转走|换到|换去|换个运营商|换运营商|号码?不变|不换号|号码?带走|带着号|保留号码")
# A number that names an offer ("129的套餐", "三十九块那个青春卡"), or a bare price ("二十块钱左右的").
_OFFER_NAME = re.compile(
    r"(\d+)\s*(?:元|块钱|块)\s*(?:的|那个|那种|这个)?\s*[\w]{0,4}?(?:套餐|卡|宽带|包)"
    r"|(\d+)\s*(?:的|那个|那种|这个)?\s*(?:套餐|卡|宽带|包)"
    r"|(\d+)\s*(?:元|块钱|块)?\s*(?:的那个|的那种|那个|那种)(?:呢|吧|啊)?"  # "二十九的那个呢": the 29 one
)
_PRICE = re.compile(r"(\d+)\s*(?:元|块钱|块)\s*(?:钱)?(?:左右|以内|以下|之内|上下|的那种|的那个)")
_PLACE_SUFFIX = re.compile(r"^[路街道巷弄区县镇乡村里苑园庭城湾号栋]")
# Where someone is from ("香港居民", "台湾同胞"), not where the question is about.
_ORIGIN = re.compile(r"^(?:居民|人|籍|同胞|身份证|护照|户口)")
_QUESTION_PAIRS = frozenset({"多少", "什么", "怎么", "可以", "一个", "现在", "我们", "你们", "时候", "这个", "那个", "一下",
                             "那要", "要是", "的话", "是不", "不是", "有没", "没有"})
_LOCAL_PLACE = re.compile(r"[省市区县镇乡村]$")
# A call to another country made from home: long distance, not roaming ("从国内打到美国").
_CALLING_ABROAD_FROM_HOME = re.compile(r"国际长途|国内.{0,4}打(?:到|去|给|往)|(?:打|拨)(?:到|去|往)(?:国外|海外|境外)")
_CALL_TO = r"(?:打|拨)(?:个|一个)?(?:电话)?(?:到|去|往|给)(?:在)?"
_ABROAD = re.compile(r"漫游|出国|国外|境外|出境|入境|国际|海外|外国|港澳|香港|澳门|台湾")


def is_follow_up(question: str) -> bool:
    """A question that leans on the one before it: "那流量呢", "要是晚交了呢"."""
    return bool(_FOLLOW_UP.search(_FILLERS.sub("", question.strip())))


def _carried_over(question: str, previous: Grounded | None) -> str:
    """"那日本呢" after "去美国一天流量包多少钱": the previous question, about the place or offer now named."""
    if previous is None or not previous.question or not _ELLIPSIS.match(_FILLERS.sub("", question.strip())):
        return question
    earlier = chinese_to_digits(previous.question)
    now_places, earlier_places = _places(question), _places(earlier)
    if now_places and earlier_places:
        for place in earlier_places:
            earlier = earlier.replace(place, now_places[0])
        return earlier
    if now_places:  # "那要是去一个礼拜呢" then "泰国的呢": the same question, there
        return f"{now_places[0]} {earlier}"
    bare = re.search(r"\d{2,}", chinese_to_digits(question))  # inside "那129的呢" a number names an offer
    now_offer = _offer_number(question) or (bare.group(0) if bare else None)
    earlier_offer = _offer_number(earlier)
    if now_offer and earlier_offer and now_offer != earlier_offer:
        return earlier.replace(earlier_offer, now_offer)
    return question


def asked_types(question: str) -> list[str]:
    """The kinds of value `question` asks for (price, time, papers …)."""
    found = [name for name, asked, _ in _ANSWER_TYPES if asked.search(question)]
    if _OWN_LOOKUP.search(question):
        found = ["how", *(name for name in found if name not in ("how", "count", "data", "price"))]
    if "self_check" in found:  # "我自己能怎么弄": steps the caller takes, not a channel to apply through
        return [name for name in found if name != "how"]
    return found


def plan_answer(
    kb: KnowledgeSearch,
    question: str,
    *,
    previous: Grounded | None = None,
    context: str | None = None,
    options: AnswerOptions | None = None,
) -> AnswerPlan:
    """Find what answers `question`, or say why nothing does. A follow-up may lean on the `previous`
    answer's document; `context` (what the call is about, e.g. the fault reported) is searched with it."""
    options = options or AnswerOptions()
    question = _carried_over(question, previous)
    if _COMPETITOR.search(question) and not _PORTING.search(question):
        return NotInKb("competitor")
    if _BARGAIN.search(question):
        return NotInKb("bargain")
    if (place := _unknown_place(kb, question)) is not None:
        return NotInKb("unknown_place", place, _titles(kb, "roaming"))
    wanted = asked_types(question)
    query = _with_countries(f"{question} {context}" if context else question)
    hits = _ranked(kb.statements(query, options.candidates), wanted, options)
    if _calls_abroad_from_home(question):  # a roaming rate would be a wrong answer, not a near one
        hits = [hit for hit in hits if hit.category != "roaming" and _gives_international_rates(hit.text)]
    elif not _abroad(query):  # a 流量包 asked about at home is not a roaming day pass
        hits = [hit for hit in hits if hit.category != "roaming"] or hits
    elif not _places(question):  # abroad, but nowhere named: the rules for everywhere, not one country's
        hits = [hit for hit in hits if hit.category != "roaming" or not _places(hit.title)] or hits
    if previous is not None:
        hits = _lean_on_previous(kb, question, hits, previous, wanted, options)
    else:
        hits = _holding_what_is_asked(hits, wanted, options.type_tie_margin)
    leaning = previous is not None and bool(hits) and hits[0].doc_id == previous.doc_id and is_follow_up(question)
    if not hits or hits[0].score < (options.follow_up_min_score if leaning else options.min_score):
        return NotInKb("nothing_relevant")
    if (product := _unknown_product(kb, question)) is not None:
        return NotInKb("unknown_product", product)
    hits = _prefer_named(kb, question, hits, wanted, options)
    hits = _follow_reference(kb, question, hits, wanted, options)
    doc_id = hits[0].doc_id
    if (place := _place_not_in(kb, question, doc_id)) is not None:
        return NotInKb("unknown_place", place)
    named, price = _offer_number(question), _price(question)
    if named is not None and not kb.mentions(named, doc_id):
        titled = _doc_titled_with(kb, named)
        if titled is None:
            return NotInKb("unknown_offer", alternatives=_titles(kb, hits[0].category))
        doc_id = titled
        hits = _ranked(kb.statements(question, options.candidates, doc_ids=[titled]), wanted, options)
        if not hits:
            return NotInKb("nothing_relevant")
    elif named is None and price is not None and not kb.mentions(f"{price}元", doc_id):
        return NotInKb("unknown_offer", alternatives=_titles(kb, hits[0].category))
    if (speed := _speed(question)) is not None and not any(kb.mentions(said) for said in _speed_said(speed)):
        return NotInKb("unknown_offer", alternatives=(hits[0].title,))  # "两千兆的有没有"
    same_doc = _ranked(kb.statements(query, options.candidates, doc_ids=[doc_id]), wanted, options)
    if not same_doc:
        return NotInKb("nothing_relevant")
    same_doc = _naming_the_place_first(same_doc, question, options.answer_type_bonus)
    same_doc = _naming_the_target_first(same_doc, question, options.answer_type_bonus)
    statements = _select(sorted(same_doc, key=lambda h: -h.fit), kb.in_document_words(question), wanted, options)
    return Grounded(doc_id, same_doc[0].title, same_doc[0].category, statements, same_doc[0].score, question)


@dataclass(frozen=True)
class _Hit:
    doc_id: str
    title: str
    category: str
    text: str
    score: float
    fit: float
    types: frozenset[str]


def _ranked(passages: Sequence[KnowledgePassage], wanted: list[str], options: AnswerOptions) -> list[_Hit]:
    """Best first by retrieval score (which decides the document); `fit` adds a bonus for holding the
    kind of value asked for (which decides the statement within the document)."""
    hits = []
    for p in passages:
        types = frozenset(name for name, _, held in _ANSWER_TYPES if held.search(p.text))
        bonus = options.answer_type_bonus * len(types.intersection(wanted))  # a deadline is a time too
        hits.append(_Hit(p.doc_id, p.title, p.category, p.text, p.score, p.score + bonus, types))
    return sorted(hits, key=lambda h: -h.score)


def _holding_what_is_asked(hits: list[_Hit], wanted: list[str], margin: float) -> list[_Hit]:
    """Two documents nearly tied: the one with a statement of more of the kinds asked for answers ("断了三天
    能赔吗" in a fault report: the compensation policy, not the repair page's list of what a report needs)."""
    def held(hit: _Hit) -> int:  # by the statement itself, not by pointing to another page (按《…》给予补偿)
        # A channel ("拨打10099") closes half the pages: it tells no page from another.
        return 0 if _POINTER.search(hit.text) else len(hit.types.intersection(wanted) - {"how"})

    if not hits or not wanted:
        return hits
    best_held = max(held(h) for h in hits if h.doc_id == hits[0].doc_id)
    for hit in hits[1:]:
        if hit.score < hits[0].score - margin:
            break
        if held(hit) > best_held:
            return [hit] + [h for h in hits if h is not hit]
    return hits


def _lean_on_previous(
    kb: KnowledgeSearch,
    question: str,
    hits: list[_Hit],
    previous: Grounded,
    wanted: list[str],
    options: AnswerOptions,
) -> list[_Hit]:
    """A follow-up ("那流量呢") is about the previous answer's document unless it clearly names another."""
    if hits and hits[0].doc_id == previous.doc_id:
        return hits
    within = _ranked(kb.statements(question, options.candidates, doc_ids=[previous.doc_id]), wanted, options)
    if not within:
        return hits
    margin = options.follow_up_margin if is_follow_up(question) else options.follow_up_margin / 2
    if is_follow_up(question) and any(_shares_topic(question, h.text) for h in within):
        margin *= 2  # "那宽带也给一条吗" after a plan's answer: the plan's own line about 宽带 answers it
    if hits and not _shares_topic(question, hits[0].title):
        margin = max(margin, options.new_topic_gap)  # the other document's subject is not named: stay
    if not hits or within[0].score + margin >= hits[0].score:
        return within + [h for h in hits if h.doc_id != previous.doc_id]
    return hits


def _shares_topic(question: str, statement: str) -> bool:
    """A word of two Chinese characters, beyond question words, that both say."""
    pairs = _bigrams(question) - _QUESTION_PAIRS
    return any(re.fullmatch(r"[\u4e00-\u9fff]{2}", pair) and pair in statement for pair in pairs)


def _prefer_named(
    kb: KnowledgeSearch, question: str, hits: list[_Hit], wanted: list[str], options: AnswerOptions
) -> list[_Hit]:
    """A question that names a document's subject (a place, an offer's price) in its title is about that
    document: "香港能用5G吗" is about Hong Kong roaming, not 5G coverage."""
    catalog = kb.catalog()
    named = [doc_id for doc_id, title, _ in catalog if any(_names(title, term) for term in _subjects(question))]
    named += [doc_id for doc_id, name in _offer_names(catalog) if doc_id not in named and _says_offer(question, name)]
    named += [doc_id for doc_id in _sole_mentions(kb, question, catalog, hits[0].doc_id) if doc_id not in named]
    if not named or hits[0].doc_id in named or len(named) > 2:
        return hits
    there = _ranked(kb.statements(question, options.candidates, doc_ids=named), wanted, options)
    if there and there[0].score >= options.second_type_ratio * hits[0].score:
        return there + [h for h in hits if h.doc_id not in named]
    return hits


def _sole_mentions(
    kb: KnowledgeSearch, question: str, catalog: Sequence[tuple[str, str, str]], best: str
) -> list[str]:
    """Documents that alone say a thing the question names and the best document does not: "地铁三号线上
    没有5G" is about the coverage page's line on the metro, not the general page on weak signal."""
    found = []
    for word, kind in _things_named(question):
        if kind != "noun" or kb.mentions(word, best):
            continue
        saying = [doc_id for doc_id, _, _ in catalog if kb.mentions(word, doc_id)]
        if len(saying) == 1:
            found.append(saying[0])
    return found


def says_what_it_answers(question: str, plan: Grounded) -> bool:
    """Whether the question names a thing (a word of its own, not a place or a person) that the answer's
    statements say: "押金要交吗" is on topic because the answer speaks of 押金."""
    said = "".join(plan.statements)
    return any(word in said for word, _ in _things_named(question))


@lru_cache(maxsize=256)  # a turn reads the same question for the page it names and for being on topic
def _things_named(question: str) -> tuple[tuple[str, str], ...]:
    """(word, "noun" or "verb") for the question's words of two characters or more, but no place, person
    or filler."""
    return tuple(
        (str(word.word), "noun" if str(word.flag).startswith("n") else "verb")
        for word in _pos_tagger().cut(question, HMM=False)
        if len(word.word) >= 2 and re.match(r"(?:n(?![rst])|v)", str(word.flag)) and word.word not in _GENERIC_WORDS
    )


_GENERIC_WORDS = frozenset({"知道", "可以", "问问", "请问", "想问", "需要", "觉得", "时候", "东西", "事情", "问题", "情况"})


def _offer_names(catalog: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """(document id, the offer's own name) for each plan: its title without the brand all plans share, the
    network and the price ("星河5G青春卡39元套餐" -> 青春卡)."""
    plans = [(doc_id, title) for doc_id, title, category in catalog if category == "plans"]
    if len(plans) < 2:
        return []
    brand = os.path.commonprefix([title for _, title in plans])
    names = []
    for doc_id, title in plans:
        match = re.match(r"[0-9a-zA-Z]*([\u4e00-\u9fff]{2,})", title[len(brand):])
        if match and match.group(1) != "套餐":
            names.append((doc_id, match.group(1).removesuffix("套餐")))
    return names


def _says_offer(question: str, name: str) -> bool:
    """The offer named as itself ("青春卡", "尊享那个套餐"), not a word it shares ("家庭宽带" is no 家庭 plan)."""
    return bool(re.search(rf"{re.escape(name)}(?:$|(?<=卡)|(?=[卡套的那这个吗呢啊，。？?\s]))", question))


def _naming_the_place_first(hits: list[_Hit], question: str, bonus: float) -> list[_Hit]:
    """"去阿拉斯加…美国的资费也算吗": the statement of the US page that names Alaska answers it. Only for a
    place the page's title does not name (every line of the Japan page is about Japan)."""
    places = [p for p in _places(question) if hits and p not in hits[0].title]
    if not places:
        return hits
    return [replace(h, fit=h.fit + bonus) if any(p in h.text for p in places) else h for h in hits]


# What the caller would change to ("三百兆的 想换成一千兆的"): the one asked about, not the one they have.
_CHANGE_TO = re.compile(r"(?:换成|改成|换到|改到|升到|升级到|升级成|降到|转成|转到)(?:那个|个)?\s*(\d+(?:\.\d+)?)")


def _naming_the_target_first(hits: list[_Hit], question: str, bonus: float) -> list[_Hit]:
    match = _CHANGE_TO.search(chinese_to_digits(question))
    if not match:
        return hits
    number = re.compile(rf"(?<![\d.]){re.escape(match.group(1))}(?![\d.]*\d)")
    return [replace(h, fit=h.fit + bonus) if number.search(h.text) else h for h in hits]


def _subjects(question: str) -> list[str]:
    offer = _offer_number(question)
    places = () if _calls_abroad_from_home(question) else _places(question)  # called, not visited
    return [*places, *([offer] if offer else [])]


def _names(title: str, term: str) -> bool:
    if term.isdigit():
        return re.search(rf"(?<!\d){term}(?!\d)", title) is not None
    return term in title


def _follow_reference(
    kb: KnowledgeSearch, question: str, hits: list[_Hit], wanted: list[str], options: AnswerOptions
) -> list[_Hit]:
    """When the best statement only points to another document (请参阅《…》), answer from that one."""
    match = _REFERENCE.search(hits[0].text)
    if match is None:
        return hits
    target = next((doc_id for doc_id, title, _ in kb.catalog() if title == match.group(1)), None)
    if target is None or target == hits[0].doc_id:
        return hits
    there = _ranked(kb.statements(question, options.candidates, doc_ids=[target]), wanted, options)
    if there and there[0].score >= options.min_score:
        return there + [h for h in hits if h.doc_id != target]
    return hits


def _select(hits: list[_Hit], question: str, wanted: list[str], options: AnswerOptions) -> tuple[str, ...]:
    """The best statement, and a second one when it is nearly as good or holds a value the first lacks."""
    chosen = [hits[0]]
    close_ratio = options.second_type_ratio if _CHOICE.search(question) else options.close_ratio
    for hit in hits[1:]:
        missing = set(wanted) - set().union(*(h.types for h in chosen))
        close = hit.fit >= close_ratio * chosen[0].fit
        completes = bool(missing & hit.types) and hit.fit >= options.second_type_ratio * chosen[0].fit
        if close or completes:
            chosen.append(hit)
            break
    said = [_focus(hit.text, question, hit.types & set(wanted), options.max_statement_chars) for hit in chosen]
    said[0] = _with_rest_of_list(said[0], [h.text for h in hits if h not in chosen])
    return tuple(said)


def _with_rest_of_list(statement: str, others: list[str]) -> str:
    """A list the knowledge base cut into pieces ("使用5G需同时满足：A；B" and "使用5G需同时满足：C") is
    said whole: what all of its items are needed for is not answered by some of them."""
    lead, colon, _ = statement.partition("：")
    if not colon or len(lead) < 4:
        return statement
    rest = [other[len(lead) + 1:] for other in others if other.startswith(lead + "：")]
    return "；".join([statement.rstrip("。；;"), *(item.rstrip("。；;") for item in rest)]) + "。" if rest else statement


def _focus(statement: str, question: str, types: frozenset[str], budget: int) -> str:
    """A long statement cut to the sentences that share words with the question or hold what it asks."""
    if len(statement) <= budget:
        return statement
    sentences = [s for s in re.split(r"(?<=[。！？])", statement) if s.strip()]
    asked = _bigrams(question)
    held = [held for name, _, held in _ANSWER_TYPES if name in types]

    def relevance(sentence: str) -> float:
        return len(_bigrams(sentence) & asked) + sum(2 for pattern in held if pattern.search(sentence))

    ranked = sorted(range(len(sentences)), key=lambda i: (-relevance(sentences[i]), i))
    kept: list[int] = []
    used = 0
    for index in ranked:
        if kept and (used + len(sentences[index]) > budget or relevance(sentences[index]) == 0):
            continue
        kept.append(index)
        used += len(sentences[index])
    return "".join(sentences[i] for i in sorted(kept))


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _offer_number(question: str) -> str | None:
    match = _OFFER_NAME.search(chinese_to_digits(question))
    return next((group for group in match.groups() if group), None) if match else None


_SPEED = re.compile(r"(\d+)\s*(?:兆|[mM](?![a-zA-Z]))")


def _speed(question: str) -> str | None:
    match = _SPEED.search(chinese_to_digits(question))
    return match.group(1) if match else None


def _speed_said(speed: str) -> list[str]:
    """How a document may write a line speed: 1000M, 1000兆, 千兆."""
    return [f"{speed}M", f"{speed}兆", *({"100": ["百兆"], "1000": ["千兆"], "10000": ["万兆"]}.get(speed, []))]


def _price(question: str) -> str | None:
    match = _PRICE.search(chinese_to_digits(question))
    return match.group(1) if match else None


def _doc_titled_with(kb: KnowledgeSearch, number: str) -> str | None:
    return next(
        (doc_id for doc_id, title, _ in kb.catalog() if re.search(rf"(?<!\d){number}(?!\d)", title)), None
    )


def _titles(kb: KnowledgeSearch, category: str) -> tuple[str, ...]:
    return tuple(title for _, title, cat in kb.catalog() if cat == category)


_PRODUCTS = re.compile(
    r"苹果|iphone|ipad|华为|小米|红米|荣耀|oppo|vivo|三星|一加|魅族|realme|合约机|裸机|手机.{0,3}(?:多少钱|价格|报价)|"
    r"(?:送|赠)[^，。？?]{0,3}手机|购机|手机.{0,2}(?:补贴|分期)", re.IGNORECASE
)


def _unknown_product(kb: KnowledgeSearch, question: str) -> str | None:
    """A device the question asks about (a phone, its price) that the knowledge base never mentions."""
    for match in _PRODUCTS.finditer(question):
        if not kb.mentions(match.group(0)):
            return match.group(0)
    return None


@lru_cache(maxsize=256)  # a turn asks about the same question's places several times
def _places(question: str) -> tuple[str, ...]:
    """Places the question is about (巴西, 香港) as the gazetteer names them, or as the dictionary tags
    them with a place's ending (广州市, 海南省); never part of an address (柳州路)."""
    words = list(_pos_tagger().cut(question, HMM=False))
    found = []
    for index, word in enumerate(words):
        name = str(word.word)
        after = words[index + 1].word if index + 1 < len(words) else ""
        known = name in _gazetteer() or (word.flag == "ns" and len(name) >= 3 and name[-1] in "国省市州岛")
        if known and not _PLACE_SUFFIX.match(after) and not _ORIGIN.match(after):
            found.append(name)
    return tuple(found)


@lru_cache(maxsize=1)
def _gazetteer() -> dict[str, str | None]:
    """Countries, regions and major cities, in the Chinese callers use (a data file beside this one):
    {place: the country a city is in, None for the others}."""
    text = (Path(__file__).resolve().parent / "places.txt").read_text(encoding="utf-8")
    places: dict[str, str | None] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        country, colon, cities = line.partition(":")
        if colon:
            places.update(dict.fromkeys(cities.split(), country.strip()))
            places.setdefault(country.strip(), None)
        else:
            places.update((word, places.get(word)) for word in line.split())
    return places


def _with_countries(question: str) -> str:
    """The question, with the country of each city it names (去曼谷 ... 泰国), for search."""
    countries = [c for c in dict.fromkeys(_gazetteer().get(p) for p in _places(question)) if c and c not in question]
    return " ".join([question, *countries])


# A statement that names a place only to leave it out ("澳门的资费不适用本说明") says nothing about it.
_EXCLUDES = re.compile(r"不适用|不包括|不包含|不含|除外|不支持|暂不|不在.{0,6}范围")


def _covers(kb: KnowledgeSearch, place: str, doc_id: str | None = None) -> bool:
    """Whether the knowledge base (or one document of it) says something about `place`, or about the
    country of a city."""
    country = _gazetteer().get(place)
    if country is not None and _covers(kb, country, doc_id):
        return True
    if not kb.mentions(place, doc_id):
        return False
    naming = [p.text for p in kb.statements(place, 8, doc_ids=None if doc_id is None else [doc_id]) if place in p.text]
    return not naming or any(not _EXCLUDES.search(text) for text in naming)


def _gives_international_rates(statement: str) -> bool:
    return bool(re.search(r"国际|长途|境外|国外", statement)) and not _EXCLUDES.search(statement)


def _calls_abroad_from_home(question: str) -> bool:
    """"在家打到美国去": a call to another country made from home, unless the caller says they are abroad."""
    if _CALLING_ABROAD_FROM_HOME.search(question):
        return True
    foreign = [p for p in _places(question) if not _LOCAL_PLACE.search(p)]
    called = [p for p in foreign if re.search(_CALL_TO + re.escape(p), question)]
    visited = [p for p in foreign if p not in called and re.search(rf"[在去到]{re.escape(p)}", question)]
    return bool(called) and not visited and not re.search(r"漫游|出国|出境|在(?:国外|境外|海外)", question)


def _abroad(question: str) -> bool:
    """Whether the question is about being (or calling) outside the mainland."""
    return bool(_ABROAD.search(question)) or any(not _LOCAL_PLACE.search(p) for p in _places(question))


def _unknown_place(kb: KnowledgeSearch, question: str) -> str | None:
    """A place the question is about that no statement of the knowledge base speaks of."""
    return next((place for place in _places(question) if not _covers(kb, place)), None)


def _place_not_in(kb: KnowledgeSearch, question: str, doc_id: str) -> str | None:
    """A place beyond the local area (台湾, 日本) that the question is about and the answering document
    does not mention: an answer from it would be about somewhere else (a domestic rate for a call made
    in 台湾). A county or district (云溪县) is where the caller lives, not what they ask about."""
    return next(
        (p for p in _places(question) if not _LOCAL_PLACE.search(p) and not _covers(kb, p, doc_id)), None
    )


@lru_cache(maxsize=1)
def _pos_tagger():  # type: ignore[no-untyped-def]
    import jieba  # noqa: PLC0415
    import jieba.posseg  # noqa: PLC0415

    for place in _gazetteer():  # so that 布宜诺斯艾利斯 is one word, and a place
        jieba.add_word(place, tag="ns")
    return jieba.posseg


def warm_up() -> None:
    """Load the part-of-speech dictionary now rather than in the first caller's turn (blocking)."""
    _pos_tagger().lcut("你好")
