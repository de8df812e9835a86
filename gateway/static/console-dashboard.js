// The dashboard: today's numbers as tiles and an inline SVG bar chart of calls and escalations per hour,
// read again every 10 s while the view is open.
"use strict";

const DASHBOARD_REFRESH_MS = 10_000;
const dashboard = { timer: null };

async function loadDashboard() {
  try {
    renderDashboard(await api(API.dashboard));
    $("dashboard-error").textContent = "";
    $("dashboard-updated").textContent = `更新于 ${new Date().toLocaleTimeString("zh-CN", { hour12: false })}，每 10 秒刷新`;
  } catch (error) {
    $("dashboard-error").textContent = `读取数据失败：${errorText(error)}`;
  }
}

function renderDashboard(data) {
  const D = API.dashboardFields;
  const share = field(data, D.resolvedWithoutAgent);
  const longest = field(data, D.longestWait);
  $("tiles").replaceChildren(
    tile("calls-today", "今日来电", field(data, D.callsToday)),
    tile("resolved-share", "机器人独立解决", typeof share === "number" ? `${Math.round(share * 100)}%` : "—"),
    tile("escalations-waiting", "等待人工", field(data, D.escalationsWaiting)),
    tile("longest-wait", "最长等待", longest === null || longest === undefined ? "—" : formatSeconds(longest)),
    tile("sla-breaches", "超时工单", field(data, D.slaBreaches), field(data, D.slaBreaches) > 0 ? "alert" : ""));
  renderCounts($("by-category"), "category", field(data, D.byCategory) || {});
  renderCounts($("by-status"), "status", field(data, D.byStatus) || {});
  drawHourly($("hourly-chart"), field(data, D.hourly) || []);
}

function tile(key, title, value, extra = "") {
  return el("div", { class: `tile ${extra}`.trim(), data: { key } },
    el("span", { class: "value", textContent: value === undefined || value === null ? "—" : String(value) }),
    el("span", { class: "title", textContent: title }));
}

function renderCounts(table, group, counts) {
  const rows = Object.entries(counts).map(([key, n]) =>
    el("tr", { data: { key } }, el("td", { textContent: label(group, key) }), el("td", { textContent: String(n) })));
  table.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "muted", textContent: "暂无" }))]));
}

// SVG elements in the namespace of the page's own <svg> (no namespace URL in the script).
function svg(tag, attributes) {
  const node = document.createElementNS($("hourly-chart").namespaceURI, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

// 24 hour slots, two bars each (calls, escalations), scaled to the busiest hour; hours every 3 on the axis.
function drawHourly(chart, hourly) {
  const width = 720, height = 200, left = 30, bottom = 20, top = 10;
  const H = API.hourFields;
  const byHour = new Map(hourly.map((h) => [h[H.hour], { calls: h[H.calls] || 0, escalations: h[H.escalations] || 0 }]));
  const peak = Math.max(1, ...[...byHour.values()].map((h) => Math.max(h.calls, h.escalations)));
  const slot = (width - left) / 24;
  const scale = (n) => ((height - bottom - top) * n) / peak;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  chart.append(axisLabel(left - 4, top + 4, String(peak), "end"), axisLabel(left - 4, height - bottom, "0", "end"));
  for (let hour = 0; hour < 24; hour++) {
    const h = byHour.get(hour) || { calls: 0, escalations: 0 };
    const x = left + hour * slot;
    chart.append(bar(x + slot * 0.1, scale(h.calls), slot * 0.4, height - bottom, "calls", `${hour} 时 来电 ${h.calls}`));
    chart.append(bar(x + slot * 0.5, scale(h.escalations), slot * 0.4, height - bottom, "escalations",
      `${hour} 时 转人工 ${h.escalations}`));
    if (hour % 3 === 0) chart.append(axisLabel(x + slot / 2, height - 5, String(hour), "middle"));
  }
}

function bar(x, h, w, base, kind, title) {
  const rect = svg("rect", { x: x.toFixed(1), y: (base - h).toFixed(1), width: w.toFixed(1), height: h.toFixed(1),
    class: kind });
  rect.append(svg("title", {}));
  rect.lastChild.textContent = title;
  return rect;
}

function axisLabel(x, y, text, anchor) {
  const node = svg("text", { x, y, "text-anchor": anchor, class: "axis-label" });
  node.textContent = text;
  return node;
}

views.dashboard = {
  show() {
    loadDashboard();
    clearInterval(dashboard.timer);
    dashboard.timer = setInterval(loadDashboard, DASHBOARD_REFRESH_MS);
  },
  hide() { clearInterval(dashboard.timer); },
  stop() { clearInterval(dashboard.timer); },
};
