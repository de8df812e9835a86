// The call page: microphone -> 16 kHz PCM16 over the call protocol (/v1/calls); events and reply audio back.
"use strict";

const CALL_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

// Streaming resampler: a windowed-sinc low-pass (below the new Nyquist) then linear interpolation.
class Resampler {
  constructor(fromRate, toRate) {
    this.step = fromRate / toRate;
    const cutoff = Math.min(1, toRate / fromRate) * 0.9 / 2; // cycles per input sample
    const taps = fromRate === toRate ? 1 : 33;
    this.kernel = new Float32Array(taps);
    const mid = (taps - 1) / 2;
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const x = i - mid;
      const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
      const window = taps === 1 ? 1 : 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (taps - 1));
      this.kernel[i] = sinc * window;
      sum += this.kernel[i];
    }
    for (let i = 0; i < taps; i++) this.kernel[i] /= sum;
    this.history = new Float32Array(taps - 1);
    this.filtered = new Float32Array(0);
    this.position = 0; // of the next output sample, in filtered input samples
  }

  push(input) {
    const taps = this.kernel.length;
    const joined = new Float32Array(this.history.length + input.length);
    joined.set(this.history);
    joined.set(input, this.history.length);
    const fresh = new Float32Array(input.length);
    for (let n = 0; n < input.length; n++) {
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += this.kernel[k] * joined[n + k];
      fresh[n] = acc;
    }
    this.history = joined.slice(joined.length - (taps - 1));
    const all = new Float32Array(this.filtered.length + fresh.length);
    all.set(this.filtered);
    all.set(fresh, this.filtered.length);
    const out = [];
    while (this.position + 1 < all.length) {
      const i = Math.floor(this.position);
      const frac = this.position - i;
      out.push(all[i] * (1 - frac) + all[i + 1] * frac);
      this.position += this.step;
    }
    const keep = Math.floor(this.position);
    this.filtered = all.slice(keep);
    this.position -= keep;
    return Float32Array.from(out);
  }
}

function toPcm16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    pcm[i] = s < 0 ? s * 32768 : s * 32767;
  }
  return pcm;
}

const $ = (id) => document.getElementById(id);
const call = {
  ws: null, ctx: null, stream: null, source: null, worklet: null, resampler: null,
  pending: new Int16Array(0), playing: [], playAt: 0, playedMs: 0, botItems: new Map(), titles: new Map(),
};

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function notice(kind, text) {
  const div = document.createElement("div");
  div.className = kind;
  div.textContent = text;
  $("notices").appendChild(div);
}

function line(kind, who, text) {
  const li = document.createElement("li");
  li.className = kind;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(label, body);
  $("transcript").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function callUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = new URLSearchParams(location.search).get("token");
  return `${scheme}//${location.host}/v1/calls` + (token ? `?token=${encodeURIComponent(token)}` : "");
}

async function sourceTitles(ids) {
  const missing = ids.filter((id) => !call.titles.has(id));
  if (missing.length) {
    const query = new URLSearchParams(missing.map((id) => ["ids", id]));
    const token = new URLSearchParams(location.search).get("token");
    if (token) query.set("token", token);
    try {
      const response = await fetch(`/v1/call-page/sources?${query}`);
      const titles = response.ok ? (await response.json()).titles : {};
      for (const id of missing) call.titles.set(id, titles[id] || id);
    } catch (error) {
      for (const id of missing) call.titles.set(id, id);
    }
  }
  return ids.map((id) => call.titles.get(id));
}

function botItem(turn) {
  if (!call.botItems.has(turn)) {
    const li = line("bot", "客服", "");
    li.dataset.turn = turn;
    const cites = document.createElement("span");
    cites.className = "citations";
    li.appendChild(cites);
    li.cited = new Set();
    call.botItems.set(turn, li);
  }
  return call.botItems.get(turn);
}

async function onReply(event) {
  const li = botItem(event.turn);
  li.querySelector(".text").textContent += event.text;
  const fresh = (event.citations || []).filter((id) => !li.cited.has(id));
  if (!fresh.length) return;
  fresh.forEach((id) => li.cited.add(id));
  const titles = await sourceTitles([...li.cited]);
  const cites = li.querySelector(".citations");
  cites.textContent = "来源：" + titles.join("、");
  cites.dataset.ids = [...li.cited].join(" ");
}

function playFrame(buffer) {
  const pcm = new Int16Array(buffer);
  if (!pcm.length || !call.ctx) return;
  const audio = call.ctx.createBuffer(1, pcm.length, CALL_RATE);
  const channel = audio.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
  const node = call.ctx.createBufferSource();
  node.buffer = audio;
  node.connect(call.ctx.destination);
  call.playAt = Math.max(call.playAt, call.ctx.currentTime + 0.05);
  node.start(call.playAt);
  call.playAt += audio.duration;
  call.playing.push(node);
  node.onended = () => {
    call.playing = call.playing.filter((n) => n !== node);
    if (node.dropped) return;
    call.playedMs += audio.duration * 1000;
    $("played").dataset.ms = Math.round(call.playedMs);
    $("played").textContent = (call.playedMs / 1000).toFixed(1);
  };
}

function dropQueuedAudio() {
  for (const node of call.playing) {
    node.dropped = true;
    try { node.stop(); } catch (error) { /* not started yet */ }
  }
  call.playing = [];
  call.playAt = 0;
}

const handlers = {
  ready: () => setStatus("通话中", "live"),
  partial: (e) => { $("partial").textContent = e.text; },
  final: (e) => { $("partial").textContent = ""; line("caller", "您", e.text); },
  reply: onReply,
  reply_end: (e) => {
    if (e.interrupted) {
      const li = botItem(e.turn);
      li.classList.add("interrupted");
      li.querySelector(".text").textContent = e.text + "……";
    }
  },
  interrupted: (e) => { dropQueuedAudio(); botItem(e.turn).classList.add("interrupted"); },
  ticket: (e) => notice("ticket", `${e.updated ? "工单已更新" : "已为您创建工单"}：${e.number}（${e.category}）`),
  escalation: (e) => notice("escalation", `正在为您转接人工客服（${e.reason}）`),
  error: (e) => notice("error", `${e.code}：${e.message}`),
  end: () => setStatus("通话已结束", "ended"),
};

function sendAudio(samples) {
  const fresh = toPcm16(call.resampler.push(samples));
  const joined = new Int16Array(call.pending.length + fresh.length);
  joined.set(call.pending);
  joined.set(fresh, call.pending.length);
  let offset = 0;
  while (joined.length - offset >= FRAME_SAMPLES) {
    if (call.ws && call.ws.readyState === WebSocket.OPEN) {
      call.ws.send(joined.slice(offset, offset + FRAME_SAMPLES).buffer);
    }
    offset += FRAME_SAMPLES;
  }
  call.pending = joined.slice(offset);
}

async function startMicrophone() {
  call.stream = await navigator.mediaDevices.getUserMedia({
    // Echo cancellation keeps the bot's own voice from cutting it off; the recognizer copes with noise itself.
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
  });
  await call.ctx.audioWorklet.addModule("/static/capture-worklet.js");
  call.source = call.ctx.createMediaStreamSource(call.stream);
  call.worklet = new AudioWorkletNode(call.ctx, "capture");
  call.resampler = new Resampler(call.ctx.sampleRate, CALL_RATE);
  call.worklet.port.onmessage = (message) => sendAudio(message.data);
  call.source.connect(call.worklet);
  $("mic").textContent = `麦克风 ${call.ctx.sampleRate} Hz → ${CALL_RATE} Hz`;
}

function stopMicrophone() {
  if (call.worklet) call.worklet.port.onmessage = null;
  if (call.source) call.source.disconnect();
  if (call.stream) call.stream.getTracks().forEach((track) => track.stop());
  call.stream = call.source = call.worklet = null;
}

function finish() {
  stopMicrophone();
  call.ws = null;
  $("call").disabled = false;
  $("hangup").disabled = true;
  $("dialect").disabled = false;
}

async function startCall() {
  $("call").disabled = true;
  $("dialect").disabled = true;
  $("transcript").replaceChildren();
  $("notices").replaceChildren();
  call.botItems.clear();
  setStatus("正在接通…", "dialing");
  call.ctx = call.ctx || new AudioContext();
  await call.ctx.resume();
  try {
    await startMicrophone();
  } catch (error) {
    notice("error", `无法使用麦克风：${error.message}`);
    setStatus("未接通", "idle");
    finish();
    return;
  }
  const ws = new WebSocket(callUrl());
  ws.binaryType = "arraybuffer";
  call.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "start", codec: "pcm16", sample_rate: CALL_RATE, dialect: $("dialect").value }));
    $("hangup").disabled = false;
  };
  ws.onmessage = (message) => {
    if (typeof message.data !== "string") return playFrame(message.data);
    const event = JSON.parse(message.data);
    const handle = handlers[event.type];
    if (handle) handle(event);
  };
  ws.onclose = (close) => {
    if ($("status").dataset.state !== "ended") {
      setStatus(close.code === 1000 ? "通话已结束" : `通话中断（${close.code} ${close.reason}）`, "ended");
    }
    finish();
  };
}

function hangUp() {
  $("hangup").disabled = true;
  stopMicrophone();
  dropQueuedAudio();
  if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify({ type: "stop" }));
}

$("call").addEventListener("click", startCall);
$("hangup").addEventListener("click", hangUp);
