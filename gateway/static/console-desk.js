// The live desk: the queue of escalated calls and the call this agent took, over WS /v1/agent.
"use strict";

const RECONNECT_DELAYS_S = [1, 2, 4, 8, 15]; // then 15 s for every further try
const CLOSE_UNAUTHORIZED = 4401;

const desk = {
  ws: null, wanted: false, attempt: 0, retryTimer: null, tick: null,
  queue: [], queueAt: 0, // the last snapshot and when it came (performance.now())
  call: null, // the last accepted call: {call_id, …}; kept after it ends, for 建工单
  live: false, // whether that call is still with this agent
  suggestion: "",
};

function send(message) {
  if (!desk.ws || desk.ws.readyState !== WebSocket.OPEN) {
    deskNotice("error", "实时连接已断开，消息未发送");
    return false;
  }
  desk.ws.send(JSON.stringify(message));
  return true;
}

function setDeskState(text, state) {
  $("desk-state").textContent = text;
  $("desk-state").dataset.state = state;
}

function deskNotice(kind, text) {
  const div = el("div", { class: kind, textContent: text });
  $("call-notices").prepend(div);
  while ($("call-notices").children.length > 4) $("call-notices").lastChild.remove();
}

// ---------------------------------------------------------------- the socket, with backoff

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${API.agentSocket}?token=${encodeURIComponent(session.token)}`;
}

function connect() {
  clearTimeout(desk.retryTimer);
  setDeskState(desk.attempt ? "正在重新连接…" : "正在连接…", "connecting");
  const ws = new WebSocket(socketUrl());
  desk.ws = ws;
  ws.onopen = () => setDeskState("已连接", "open");
  ws.onmessage = (message) => onDeskEvent(JSON.parse(message.data));
  ws.onclose = (close) => onSocketClosed(ws, close);
}

function onSocketClosed(ws, close) {
  if (desk.ws !== ws) return;
  desk.ws = null;
  if (desk.live) endCall("实时连接中断，通话已离开本坐席");
  renderQueue([]);
  if (!desk.wanted) return setDeskState("未连接", "closed");
  if (close.code === CLOSE_UNAUTHORIZED) return setDeskState("令牌无效，无法连接坐席台", "refused");
  const delay = RECONNECT_DELAYS_S[Math.min(desk.attempt, RECONNECT_DELAYS_S.length - 1)];
  desk.attempt += 1;
  setDeskState(`连接已断开，${delay} 秒后重连（第 ${desk.attempt} 次）`, "reconnecting");
  desk.retryTimer = setTimeout(connect, delay * 1000);
}

function disconnect() {
  desk.wanted = false;
  clearTimeout(desk.retryTimer);
  if (desk.ws) desk.ws.close(1000);
  desk.ws = null;
  setDeskState("未连接", "closed");
}

// ---------------------------------------------------------------- events from the server

const deskHandlers = {
  hello: () => { desk.attempt = 0; setDeskState("已连接", "open"); }, // the backoff starts over once let in
  queue: (e) => renderQueue(e.waiting || []),
  accepted: (e) => startCall(e),
  partial: (e) => ifCurrent(e, () => { $("call-partial").textContent = e.text; }),
  final: (e) => ifCurrent(e, () => { $("call-partial").textContent = ""; addLine("caller", e.text); }),
  spoken: (e) => ifCurrent(e, () => onSpoken(e)),
  assist: (e) => ifCurrent(e, () => showAssist(e)),
  released: (e) => ifCurrent(e, () => endCall(label("released", e.reason))),
  error: (e) => onDeskError(e),
};

function onDeskEvent(event) {
  const handle = deskHandlers[event.type];
  if (handle) handle(event);
}

function ifCurrent(event, then) {
  if (desk.live && event.call_id === desk.call.call_id) then();
}

function onDeskError(e) {
  const text = e.code === "taken" ? "该来电已被其他坐席接听" : `${e.code}：${e.message}`;
  deskNotice("error", text);
  for (const button of document.querySelectorAll("#queue button")) button.disabled = desk.live;
}

// ---------------------------------------------------------------- the queue

function renderQueue(waiting) {
  desk.queue = waiting;
  desk.queueAt = performance.now();
  const items = waiting.map(queueItem);
  $("queue").replaceChildren(...items);
  $("queue-count").textContent = String(waiting.length);
  $("queue-empty").hidden = waiting.length > 0;
  tickQueue();
}

function queueItem(item) {
  const accept = el("button", { type: "button", class: "accept", textContent: "接听", disabled: desk.live,
    onclick: () => acceptCall(item, accept) });
  return el("li", { data: { escalationId: item.escalation_id, callId: item.call_id } },
    el("div", { class: "row" },
      el("strong", { class: "reason", textContent: label("reason", item.reason) }),
      el("span", { class: "waited", data: { waited: item.waited_s || 0 } })),
    el("div", { class: "meta" },
      el("span", { class: "caller", textContent: item.caller || "未知号码" }),
      el("span", { class: "dialect", textContent: label("dialect", item.dialect) })),
    el("p", { class: "summary", textContent: item.summary || "" }),
    accept);
}

function tickQueue() {
  const elapsed = (performance.now() - desk.queueAt) / 1000;
  for (const span of document.querySelectorAll("#queue .waited")) {
    span.textContent = `已等待 ${formatSeconds(Number(span.dataset.waited) + elapsed)}`;
  }
}

function acceptCall(item, button) {
  button.disabled = true;
  send({ type: "accept", escalation_id: item.escalation_id });
}

// ---------------------------------------------------------------- the call in progress

function startCall(e) {
  desk.call = e;
  desk.live = true;
  $("call-idle").hidden = true;
  $("call").hidden = false;
  $("new-ticket").hidden = true;
  $("call-notices").replaceChildren();
  setCallButtons(true);
  fillFacts($("call-info"), [["来电号码", e.caller || "未知"], ["方言", label("dialect", e.dialect)],
    ["转人工原因", label("reason", e.reason)], ["通话编号", e.call_id]]);
  $("call-summary").textContent = e.summary || "";
  $("call-transcript").replaceChildren();
  $("call-partial").textContent = "";
  for (const turn of e.transcript || []) addLine(turn.role, turn.text, "history");
  for (const button of document.querySelectorAll("#queue button")) button.disabled = true;
  clearAssist();
  $("reply").focus();
}

function endCall(why) {
  deskNotice("released", `通话结束：${why}`);
  desk.live = false;
  setCallButtons(false);
  $("call-partial").textContent = "";
  $("new-ticket").hidden = true;
  for (const button of document.querySelectorAll("#queue button")) button.disabled = false;
}

function setCallButtons(live) {
  for (const id of ["reply", "reply-send", "hand-back", "hang-up", "assist-send", "assist-edit"]) $(id).disabled = !live;
  $("call").dataset.live = live ? "yes" : "no";
}

function addLine(role, text, extra = "") {
  const li = el("li", { class: `${role} ${extra}`.trim() },
    el("span", { class: "who", textContent: label("speaker", role) }),
    el("span", { class: "text", textContent: text }));
  $("call-transcript").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

function onSpoken(e) {
  const pending = e.by === "agent"
    ? [...document.querySelectorAll("#call-transcript li.agent.pending")].find((li) => li.dataset.said === e.text)
    : null;
  const li = pending || addLine(e.by, e.text);
  li.classList.remove("pending");
  if (e.interrupted) {
    li.classList.add("interrupted");
    li.querySelector(".text").textContent = `${e.text}……（被打断）`;
  }
}

function say(text) {
  text = text.trim();
  if (!text || !desk.live) return;
  if (!send({ type: "say", call_id: desk.call.call_id, text })) return;
  const li = addLine("agent", text, "pending");
  li.dataset.said = text;
}

function onReplySubmit(event) {
  event.preventDefault();
  say($("reply").value);
  $("reply").value = "";
}

function handBack() {
  if (desk.live) send({ type: "hand_back", call_id: desk.call.call_id });
}

function hangUp() {
  if (desk.live) send({ type: "hang_up", call_id: desk.call.call_id });
}

// ---------------------------------------------------------------- agent assist

function clearAssist() {
  desk.suggestion = "";
  $("assist").hidden = true;
  $("assist-idle").hidden = false;
}

function showAssist(e) {
  desk.suggestion = e.suggestion || "";
  $("assist-idle").hidden = true;
  $("assist").hidden = false;
  $("assist-question").textContent = e.question || "";
  $("assist-suggestion").textContent = desk.suggestion || "（没有建议回答）";
  $("assist-citations").textContent = (e.citations || []).length ? `引用：${e.citations.join("、")}` : "";
  $("assist-send").disabled = $("assist-edit").disabled = !desk.suggestion || !desk.live;
  $("assist-passages").replaceChildren(...(e.passages || []).map((p) =>
    el("li", { data: { docId: p.doc_id } },
      el("strong", { textContent: p.title || p.doc_id }),
      el("span", { class: "score", textContent: typeof p.score === "number" ? ` ${p.score.toFixed(2)}` : "" }),
      el("p", { textContent: p.text }))));
}

function useSuggestion(sendIt) {
  if (!desk.suggestion) return;
  if (sendIt) return say(desk.suggestion);
  $("reply").value = desk.suggestion;
  $("reply").focus();
}

// ---------------------------------------------------------------- a ticket from the call

function openTicketForm() {
  const call = desk.call;
  if (!call) return;
  const slots = call.slots || {};
  $("new-ticket-summary").value = call.summary || "";
  $("new-ticket-phone").value = slots.phone || "";
  $("new-ticket-address").value = slots.address || "";
  if (slots.category && LABELS.category[slots.category]) $("new-ticket-category").value = slots.category;
  $("new-ticket").hidden = false;
}

// The ticket to open: the call's slots (text values), the phone and address as the agent left them.
function ticketFromForm(call) {
  const slots = {};
  for (const [name, value] of Object.entries((call && call.slots) || {})) {
    if (typeof value === "string" && name !== "category") slots[name] = value;
  }
  const body = { category: $("new-ticket-category").value, summary: $("new-ticket-summary").value.trim(), slots,
    call_id: call ? call.call_id : null };
  const phone = $("new-ticket-phone").value.replace(/[\s-]/g, "");
  const address = $("new-ticket-address").value.trim();
  if (/^\+?[0-9]{3,20}$/.test(phone)) body.phone = phone; // a masked number (138****5678) stays in the slots only
  if (address) body.address = address;
  return body;
}

async function submitTicket(event) {
  event.preventDefault();
  const body = ticketFromForm(desk.call);
  $("new-ticket-submit").disabled = true;
  try {
    const ticket = await api(API.tickets, { method: "POST", body });
    deskNotice("ticket", `已建工单 ${ticket[API.ticketFields.number]}（${label("category", ticket.category)}）`);
    $("new-ticket").hidden = true;
  } catch (error) {
    deskNotice("error", `建工单失败：${errorText(error)}`);
  } finally {
    $("new-ticket-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- the view

views.desk = {
  init() {
    fillOptions($("new-ticket-category"), "category", Object.keys(LABELS.category));
    $("reply-form").addEventListener("submit", onReplySubmit);
    $("hand-back").addEventListener("click", handBack);
    $("hang-up").addEventListener("click", hangUp);
    $("open-ticket").addEventListener("click", openTicketForm);
    $("new-ticket").addEventListener("submit", submitTicket);
    $("new-ticket-cancel").addEventListener("click", () => { $("new-ticket").hidden = true; });
    $("assist-send").addEventListener("click", () => useSuggestion(true));
    $("assist-edit").addEventListener("click", () => useSuggestion(false));
    setCallButtons(false);
  },
  start() {
    desk.wanted = true;
    desk.attempt = 0;
    connect();
    desk.tick = setInterval(tickQueue, 1000);
  },
  stop() {
    clearInterval(desk.tick);
    if (desk.live) endCall("已退出登录");
    desk.call = null;
    $("call").hidden = true;
    $("call-idle").hidden = false;
    disconnect();
  },
};
