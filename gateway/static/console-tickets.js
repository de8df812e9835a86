// Tickets: a filtered, paged list; one ticket's detail with its history and call transcript; status,
// owner, priority and notes.
"use strict";

const PAGE_SIZE = 20;
const T = API.ticketFields;
const tickets = { offset: 0, total: 0, current: null };

// ---------------------------------------------------------------- the list

function ticketQuery() {
  const f = API.filters;
  const query = { [f.limit]: PAGE_SIZE, [f.offset]: tickets.offset, [f.sort]: $("filter-sort").value };
  if ($("filter-status").value) query[f.status] = $("filter-status").value;
  if ($("filter-category").value) query[f.category] = $("filter-category").value;
  if ($("filter-mine").checked) query[f.owner] = API.ownerMe;
  if ($("filter-overdue").checked) query[f.overdue] = "true";
  if ($("filter-phone").value.trim()) query[f.phone] = $("filter-phone").value.trim();
  if ($("filter-q").value.trim()) query[f.q] = $("filter-q").value.trim();
  return query;
}

async function loadTickets() {
  $("tickets-error").textContent = "";
  try {
    const page = await api(API.tickets, { query: ticketQuery() });
    tickets.total = page[API.list.total];
    renderTickets(page[API.list.items] || []);
  } catch (error) {
    $("tickets-error").textContent = `读取工单失败：${errorText(error)}`;
  }
}

function renderTickets(items) {
  $("ticket-rows").replaceChildren(...items.map(ticketRow));
  $("tickets-empty").hidden = items.length > 0;
  const last = Math.min(tickets.offset + items.length, tickets.total);
  $("page-info").textContent = tickets.total ? `第 ${tickets.offset + 1}–${last} 条，共 ${tickets.total} 条` : "共 0 条";
  $("page-prev").disabled = tickets.offset === 0;
  $("page-next").disabled = tickets.offset + PAGE_SIZE >= tickets.total;
}

function ticketRow(ticket) {
  const overdue = Boolean(ticket[T.overdue]);
  const row = el("tr", { class: overdue ? "overdue" : "", tabIndex: 0,
    data: { id: ticket[T.id], status: ticket[T.status], overdue: overdue ? "yes" : "no" },
    onclick: () => openTicket(ticket[T.id]),
    onkeydown: (e) => { if (e.key === "Enter") openTicket(ticket[T.id]); } },
  el("td", {}, ticket[T.number], overdue ? el("span", { class: "flag", textContent: "超时" }) : null),
  el("td", { textContent: label("category", ticket[T.category]) }),
  el("td", { class: `priority-${ticket[T.priority]}`, textContent: label("priority", ticket[T.priority]) }),
  el("td", { class: "status", textContent: label("status", ticket[T.status]) }),
  el("td", { textContent: ticket[T.owner] || "—" }),
  el("td", { textContent: ticket[T.phone] || "—" }),
  el("td", { textContent: formatTime(ticket[T.createdAt]) }),
  el("td", { textContent: formatTime(ticket[T.resolutionDue]) }));
  if (tickets.current && tickets.current[T.id] === ticket[T.id]) row.classList.add("selected");
  return row;
}

function turnPage(step) {
  tickets.offset = Math.max(0, tickets.offset + step * PAGE_SIZE);
  loadTickets();
}

// ---------------------------------------------------------------- one ticket

async function openTicket(id) {
  $("td-error").textContent = "";
  try {
    const ticket = await api(API.ticket(id));
    renderTicket(ticket);
    loadTranscript(ticket[T.callId]);
  } catch (error) {
    $("tickets-error").textContent = `读取工单失败：${errorText(error)}`;
  }
}

function renderTicket(ticket) {
  tickets.current = ticket;
  const detail = $("ticket-detail");
  detail.hidden = false;
  detail.dataset.id = ticket[T.id];
  detail.dataset.status = ticket[T.status];
  $("td-number").textContent = ticket[T.number];
  $("td-overdue").hidden = !ticket[T.overdue];
  fillFacts($("td-facts"), [
    ["状态", label("status", ticket[T.status])], ["类别", label("category", ticket[T.category])],
    ["优先级", label("priority", ticket[T.priority])], ["处理人", ticket[T.owner] || "未分派"],
    ["电话", ticket[T.phone] || "—"], ["地址", ticket[T.address] || "—"],
    ["创建时间", formatTime(ticket[T.createdAt])], ["首次响应时限", formatTime(ticket[T.firstResponseDue])],
    ["解决时限", formatTime(ticket[T.resolutionDue])], ...slotFacts(ticket[T.slots])]);
  $("td-summary").textContent = ticket[T.summary] || "";
  $("td-take").disabled = ticket[T.owner] === session.me.name;
  $("td-priority").value = ticket[T.priority] || "normal";
  renderStatusButtons(ticket[T.status]);
  renderEvents(ticket[T.events] || []);
  for (const row of document.querySelectorAll("#ticket-rows tr")) {
    row.classList.toggle("selected", row.dataset.id === String(ticket[T.id]));
  }
}

function slotFacts(slots) {
  const shown = new Set(["phone", "address"]);
  return Object.entries(slots || {}).filter(([name]) => !shown.has(name)).map(([name, value]) => [label("slot", name), value]);
}

function renderStatusButtons(current) {
  const buttons = Object.keys(LABELS.status).filter((s) => s !== current).map((status) =>
    el("button", { type: "button", class: "secondary", data: { status }, textContent: `转为${label("status", status)}`,
      onclick: () => changeTicket({ status }) }));
  $("td-status-buttons").replaceChildren(...buttons);
}

function renderEvents(events) {
  const E = API.eventFields;
  $("td-events").replaceChildren(...events.map((event) =>
    el("li", { data: { kind: event[E.kind] } },
      el("span", { class: "when", textContent: formatTime(event[E.at]) }),
      el("strong", { textContent: label("eventKind", event[E.kind]) }),
      el("span", { class: "actor", textContent: event[E.actor] || "热线机器人" }),
      el("span", { class: "detail", textContent: eventDetail(event[E.kind], event[E.detail]) }))));
}

// An event's detail in words: a note's text, "from → to" for a change (in the labels of what changed).
const CHANGE_LABELS = { status_changed: "status", priority_changed: "priority", created: "category" };

function eventDetail(kind, detail) {
  if (!detail || typeof detail !== "object") return detail ? String(detail) : "";
  const group = CHANGE_LABELS[kind];
  const parts = [];
  if (detail.text) parts.push(detail.text);
  if ("from" in detail || "to" in detail) parts.push(`${label(group, detail.from)} → ${label(group, detail.to)}`);
  if (detail.note) parts.push(detail.note);
  for (const [key, value] of Object.entries(detail)) {
    if (["text", "from", "to", "note", "slots"].includes(key)) continue;
    const shown = typeof value === "object" && value !== null ? JSON.stringify(value) : label(key, value);
    parts.push(`${label("slot", key)}：${shown}`);
  }
  return parts.join("；");
}

async function loadTranscript(callId) {
  $("td-transcript").replaceChildren();
  $("td-no-call").hidden = Boolean(callId);
  if (!callId) return;
  const C = API.callFields;
  try {
    const record = await api(API.call(callId));
    $("td-transcript").replaceChildren(...(record[C.turns] || []).map((turn) =>
      el("li", { class: turn[C.speaker] },
        el("span", { class: "who", textContent: `${label("speaker", turn[C.speaker])} ${formatTime(turn[C.at])}` }),
        el("span", { class: "text", textContent: turn[C.text] }))));
  } catch (error) {
    $("td-transcript").replaceChildren(el("li", { class: "muted", textContent: `通话记录不可用（${errorText(error)}）` }));
  }
}

// PATCH the open ticket; a refused change (409: not allowed from this status) is shown as the server says it.
async function changeTicket(change) {
  const ticket = tickets.current;
  if (!ticket) return;
  $("td-error").textContent = "";
  try {
    await api(API.ticket(ticket[T.id]), { method: "PATCH", body: change });
  } catch (error) {
    $("td-error").textContent = error.status === 409 ? `不能这样变更：${error.message}` : errorText(error);
    return;
  }
  await openTicket(ticket[T.id]);
  loadTickets();
}

async function addNote(event) {
  event.preventDefault();
  const text = $("td-note").value.trim();
  const ticket = tickets.current;
  if (!text || !ticket) return;
  $("td-error").textContent = "";
  try {
    await api(API.ticketNotes(ticket[T.id]), { method: "POST", body: { text } });
    $("td-note").value = "";
    await openTicket(ticket[T.id]);
  } catch (error) {
    $("td-error").textContent = `备注未保存：${errorText(error)}`;
  }
}

// ---------------------------------------------------------------- the view

views.tickets = {
  init() {
    fillOptions($("filter-status"), "status", Object.keys(LABELS.status), "全部");
    fillOptions($("filter-category"), "category", Object.keys(LABELS.category), "全部");
    fillOptions($("td-priority"), "priority", Object.keys(LABELS.priority));
    $("ticket-filters").addEventListener("submit", (e) => { e.preventDefault(); tickets.offset = 0; loadTickets(); });
    for (const id of ["filter-status", "filter-category", "filter-mine", "filter-overdue", "filter-sort"]) {
      $(id).addEventListener("change", () => { tickets.offset = 0; loadTickets(); });
    }
    $("page-prev").addEventListener("click", () => turnPage(-1));
    $("page-next").addEventListener("click", () => turnPage(1));
    $("td-take").addEventListener("click", () => changeTicket({ owner: session.me.name }));
    $("td-priority").addEventListener("change", () => changeTicket({ priority: $("td-priority").value }));
    $("td-note-form").addEventListener("submit", addNote);
  },
  show() { loadTickets(); },
  stop() {
    tickets.current = null;
    $("ticket-detail").hidden = true;
    $("ticket-rows").replaceChildren();
  },
};
