// The console, shared part: where the API is, labels, log-in, views. Each view lives in its own file
// (console-desk.js, console-tickets.js, console-dashboard.js) and registers itself in `views`.
"use strict";

// Every path and field name the console reads or sends, in one place: if the server's names change,
// change them here.
const API = {
  me: "/v1/me",
  agentSocket: "/v1/agent",
  tickets: "/v1/tickets",
  ticket: (id) => `/v1/tickets/${id}`,
  ticketNotes: (id) => `/v1/tickets/${id}/notes`,
  call: (callId) => `/v1/calls/${encodeURIComponent(callId)}`,
  dashboard: "/v1/dashboard",
  // GET /v1/tickets: the answer's list and count, and the query parameters it takes
  list: { items: "items", total: "total" },
  filters: { status: "status", category: "category", owner: "owner", overdue: "overdue", phone: "phone",
    q: "q", sort: "sort", limit: "limit", offset: "offset" },
  ownerMe: "me",
  // a ticket
  ticketFields: { id: "id", number: "number", category: "category", priority: "priority", status: "status",
    owner: "owner", phone: "phone", address: "address", slots: "slots", summary: "summary", callId: "call_id",
    createdAt: "created_at", firstResponseDue: "first_response_due_at", resolutionDue: "resolution_due_at",
    overdue: "overdue", events: "events" },
  eventFields: { kind: "kind", at: "at", detail: "detail", actor: "actor" },
  // a call record: GET /v1/calls/{id}
  callFields: { turns: "turns", speaker: "speaker", text: "text", at: "at" },
  // the dashboard; where a list names several fields, the first one present is read
  dashboardFields: { callsToday: "calls_today",
    resolvedWithoutAgent: ["resolved_without_agent_share", "resolved_without_person"],
    escalationsWaiting: "escalations_waiting", longestWait: "longest_wait_s", byCategory: "tickets_by_category",
    byStatus: "tickets_by_status", slaBreaches: "sla_breaches", hourly: ["hourly", "hours"] },
  hourFields: { hour: "hour", calls: "calls", escalations: "escalations" },
};

const LABELS = {
  role: { agent: "坐席", admin: "管理员" },
  status: { new: "新建", assigned: "已分派", in_progress: "处理中", pending_customer: "待客户回复",
    resolved: "已解决", closed: "已关闭" },
  category: { broadband: "宽带故障", "mobile-network": "移动网络", complaint: "投诉", "service-request": "业务办理",
    billing: "话费账单" },
  priority: { low: "低", normal: "普通", high: "高", urgent: "紧急" },
  dialect: { mandarin: "普通话", cantonese: "粤语", sichuanese: "四川话", shanghainese: "上海话", auto: "自动" },
  speaker: { caller: "来电者", bot: "机器人", agent: "坐席" },
  reason: { caller_request: "来电者要求转人工", caller_frustrated: "来电者不满意", turn_failed: "机器人无法应答" },
  released: { handed_back: "已交还机器人", caller_hangup: "来电者已挂断", ended_by_agent: "通话已挂断",
    agent_left: "坐席已离线，通话已交还" },
  slot: { phone: "电话", address: "地址", fault: "故障现象", product: "产品", plan: "套餐", name: "姓名",
    complaint: "投诉内容", request_type: "办理事项" },
  eventKind: { created: "创建", status_changed: "状态变更", note: "备注", assigned: "分派", owner_changed: "处理人变更",
    priority_changed: "优先级变更", slots_updated: "资料更新" },
};

const TOKEN_KEY = "hotline.console.token";
const $ = (id) => document.getElementById(id);
const views = {}; // name -> {show(), hide()}, filled by the view files
const session = { token: null, me: null, view: null };

// data[name], or the first of several names that data has (see API)
function field(data, names) {
  for (const name of [].concat(names)) if (data && data[name] !== undefined) return data[name];
  return undefined;
}

function label(group, value) {
  if (value === null || value === undefined || value === "") return "—";
  return (LABELS[group] && LABELS[group][value]) || String(value);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getMonth() + 1}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.floor(seconds));
  return s < 60 ? `${s} 秒` : `${Math.floor(s / 60)} 分 ${String(s % 60).padStart(2, "0")} 秒`;
}

function fillFacts(dl, pairs) {
  dl.replaceChildren();
  for (const [term, value] of pairs) dl.append(el("dt", { textContent: term }), el("dd", { textContent: value }));
}

function fillOptions(select, group, values, anyLabel) {
  select.replaceChildren();
  if (anyLabel) select.append(el("option", { value: "", textContent: anyLabel }));
  for (const value of values) select.append(el("option", { value, textContent: label(group, value) }));
}

// ---------------------------------------------------------------- REST

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

// A REST call with the session's token; JSON in and out. 401 logs out (the token stopped working).
async function api(path, { method = "GET", body, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (response.status === 401 && session.me) logOut("登录已失效，请重新登录");
  if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
  return data;
}

function errorText(error) {
  if (!(error instanceof ApiError)) return `网络错误：${error.message}`;
  const detail = Array.isArray(error.detail)
    ? error.detail.map((d) => d.msg || JSON.stringify(d)).join("；") : error.message;
  return `${error.status}：${detail}`;
}

// ---------------------------------------------------------------- log in, log out, views

async function logIn(token) {
  session.token = token;
  const me = await api(API.me);
  session.me = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("who-name").textContent = me.name;
  $("who-role").textContent = label("role", me.role);
  $("who-role").dataset.role = me.role;
  $("who").hidden = false;
  $("nav").hidden = false;
  $("view-login").hidden = true;
  for (const view of Object.values(views)) if (view.start) view.start();
  showView(location.hash.slice(1) in views ? location.hash.slice(1) : "desk");
}

function logOut(message = "") {
  for (const view of Object.values(views)) if (view.stop) view.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = session.me = session.view = null;
  $("who").hidden = true;
  $("nav").hidden = true;
  for (const name of Object.keys(views)) $(`view-${name}`).hidden = true;
  $("view-login").hidden = false;
  $("token").value = "";
  $("login-error").textContent = message;
}

function showView(name) {
  if (session.view && session.view !== name && views[session.view].hide) views[session.view].hide();
  session.view = name;
  for (const other of Object.keys(views)) $(`view-${other}`).hidden = other !== name;
  for (const tab of document.querySelectorAll("#nav .tab")) tab.classList.toggle("active", tab.dataset.view === name);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (views[name].show) views[name].show();
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  $("login-error").textContent = "";
  $("login").disabled = true;
  try {
    await logIn(token);
  } catch (error) {
    session.token = null;
    $("login-error").textContent = error.status === 401 ? "令牌无效或已停用" : errorText(error);
  } finally {
    $("login").disabled = false;
  }
}

function boot() {
  $("login-form").addEventListener("submit", onLoginSubmit);
  $("logout").addEventListener("click", () => logOut());
  for (const tab of document.querySelectorAll("#nav .tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  for (const view of Object.values(views)) if (view.init) view.init();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) logIn(saved).catch(() => logOut("登录已失效，请重新登录"));
}

window.addEventListener("DOMContentLoaded", boot);
