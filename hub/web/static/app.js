// The hub4com status page: a live port table (WebSocket /api/live), the routes
// as a picture (/api/hubs) and a live tap (WebSocket /api/tap/<port>).
// Hand-written, no libraries; every text from the hub goes in through textContent.
"use strict";

const PAGE = 100;            // ports per page
const TAP_KEEP = 2000;       // tap lines kept on screen
const TAP_HOLD = 5000;       // tap lines held while paused
const STATES = ["connected", "waiting", "connecting", "reopening", "absent", "down", "closed"];

const $ = (id) => document.getElementById(id);
const view = { q: "", state: "", offset: 0, limit: PAGE };
let live = null;
let tap = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function bytes(n) {
  if (n < 1000) return n + " B";
  const units = ["kB", "MB", "GB", "TB"];
  let u = -1;
  do { n /= 1000; u++; } while (n >= 1000 && u < units.length - 1);
  return n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) + " " + units[u];
}

function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

// ---- live status ------------------------------------------------------------------

function connectLive() {
  live = new WebSocket(wsUrl("/api/live"));
  live.onopen = () => { $("live").textContent = "live"; sendView(); };
  live.onmessage = (ev) => render(JSON.parse(ev.data));
  live.onclose = () => {
    $("live").textContent = "disconnected, retrying…";
    setTimeout(connectLive, 2000);
  };
}

function sendView() {
  if (live && live.readyState === WebSocket.OPEN) live.send(JSON.stringify(view));
}

function render(msg) {
  if (msg.type !== "status") return;
  const health = $("health");
  health.textContent = msg.healthy ? "healthy" : "unhealthy";
  health.className = "badge " + (msg.healthy ? "ok" : "bad");
  const problems = $("problems");
  problems.hidden = msg.healthy;
  problems.replaceChildren(...msg.problems.map((p) => el("div", "", p.port + ": " + p.problem)));
  const counts = Object.entries(msg.states).map(([s, n]) => n + " " + s).join(", ");
  $("summary").textContent = msg.total + " ports (" + counts + ")";
  const last = Math.min(msg.offset + msg.limit, msg.matched);
  $("page").textContent = msg.matched ? (msg.offset + 1) + "–" + last + " of " + msg.matched : "no match";
  $("prev").disabled = msg.offset === 0;
  $("next").disabled = last >= msg.matched;
  $("ports").tBodies[0].replaceChildren(...msg.ports.map(portRow));
}

function portRow(p) {
  const tr = el("tr");
  tr.dataset.port = p.name;
  tr.dataset.state = p.state;
  const name = el("td");
  name.append(el("strong", "", p.name));
  const where = p.address || p.link || p.device;
  if (where) name.append(el("div", "sub", where));
  tr.append(name, el("td", "", p.kind));
  const st = el("td");
  st.append(el("span", "state " + p.state, p.state));
  st.append(el("div", "sub", p.status));
  tr.append(st, peersCell(p));
  const rin = el("td", "num bytes-in");
  rin.append(el("span", "count", bytes(p.bytes_in)), el("div", "sub", bytes(p.rate_in) + "/s"));
  const rout = el("td", "num bytes-out");
  rout.append(el("span", "count", bytes(p.bytes_out)), el("div", "sub", bytes(p.rate_out) + "/s"));
  tr.append(rin, rout);
  const drops = Object.entries(p.dropped).filter(([, n]) => n > 0);
  const dropCell = el("td", "drops", drops.map(([why, n]) => bytes(n) + " " + why.replace("_", " ")).join(", "));
  // Not a loss: written while nobody was connected (an idle slot, an unopened pty).
  if (p.unheard) dropCell.append(el("div", "sub", bytes(p.unheard) + " unheard"));
  tr.append(dropCell);
  const queue = el("td", "num", bytes(p.queued));
  if (p.reading_paused || p.writing_paused) {
    queue.append(el("div", "sub", (p.reading_paused ? "input paused " : "") + (p.writing_paused ? "XOFF sent" : "")));
  }
  tr.append(queue, lineCell(p));
  const err = p.errors.length ? p.errors[p.errors.length - 1] : null;
  const errCell = el("td", "err", err ? err.text : "");
  if (err) errCell.title = new Date(err.time * 1000).toLocaleString();
  tr.append(errCell);
  const act = el("td");
  const b = el("button", "tap-button", "Tap");
  b.onclick = () => openTap(p.name);
  act.append(b);
  tr.append(act);
  return tr;
}

function peersCell(p) {
  const td = el("td", "peers");
  if (p.sessions && p.sessions.length) {
    td.append(el("div", "", p.sessions_total + (p.sessions_total === 1 ? " session" : " sessions")));
    const ul = el("ul", "sessions");
    for (const s of p.sessions) {
      let text = "#" + s.id + " " + s.peer + " in " + bytes(s.bytes_in) + ", out " + bytes(s.bytes_out);
      if (s.queued) text += ", queued " + bytes(s.queued);
      if (s.dropped_bytes) text += ", dropped " + bytes(s.dropped_bytes);
      ul.append(el("li", "", text));
    }
    td.append(ul);
  } else {
    td.textContent = p.peers.join(", ");
  }
  return td;
}

function lineCell(p) {
  const td = el("td", "lines");
  const line = p.line;
  if (line) {
    const parts = [];
    if (line.baud) parts.push(line.baud);
    if (line.data_bits || line.parity) {
      parts.push((line.data_bits || "?") + "-" + (line.parity ? line.parity[0].toUpperCase() : "?") + "-" +
                 (line.stop_bits || "?"));
    } else if (line.stop_bits) {
      parts.push(line.stop_bits + " stop bit" + (line.stop_bits === "1" ? "" : "s"));
    }
    if (line.rtscts) parts.push("RTS/CTS");
    td.append(el("div", "", parts.join(" ")));
  }
  for (const group of [p.modem, p.pins]) {
    if (!group) continue;
    const div = el("div");
    for (const [k, on] of Object.entries(group)) div.append(el("span", on ? "on" : "off", k));
    td.append(div);
  }
  return td;
}

// ---- the picture: ports, their filter chains, the hub and the routes ----------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function loadPicture() {
  let hubs;
  try {
    hubs = await (await fetch("/api/hubs")).json();
  } catch (e) {
    return;
  }
  const box = $("picture");
  box.replaceChildren();
  for (const h of hubs) {
    if (h.ports.length <= 40) box.append(drawHub(h));
    const list = el("div", "routes");
    for (const r of h.routes.data) list.append(el("div", "", r.from + " → " + r.to.join(", ")));
    if (!h.routes.data.length) list.append(el("div", "muted", "no data routes"));
    box.append(list);
  }
}

function drawHub(h) {
  const rowH = 30, portW = 130, filterW = 92;
  const chains = {};
  for (const c of h.chains) chains[c.port] = c.filters;
  const maxChain = Math.max(0, ...h.ports.map((p) => (chains[p.name] || []).length));
  const hubX = 10 + portW + 16 + maxChain * (filterW + 8) + 10;
  const routesX = hubX + 50;
  const row = {};
  h.ports.forEach((p, i) => { row[p.name] = 20 + i * rowH; });
  const height = 20 + h.ports.length * rowH;
  const width = routesX + 40 + h.routes.data.length * 14;
  const s = svg("svg", { width, height, role: "img", "aria-label": "routes and filter chains" });
  const defs = svg("defs", {});
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                                 markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#1f5fa8" }));
  defs.append(marker);
  s.append(defs);
  s.append(svg("rect", { x: hubX, y: 4, width: 36, height: height - 8, rx: 6, fill: "#20262d" }));
  s.append(svg("text", { x: hubX + 18, y: 18, fill: "#fff", "text-anchor": "middle" }, "hub"));
  for (const p of h.ports) {
    const y = row[p.name];
    s.append(svg("rect", { x: 10, y: y - 11, width: portW, height: 22, rx: 4, fill: "#e8eef5", stroke: "#9db3cc" }));
    s.append(svg("text", { x: 16, y: y + 4 }, p.name + " " + p.kind));
    let x = 10 + portW;
    s.append(svg("line", { x1: x, y1: y, x2: hubX, y2: y, stroke: "#9aa5b0" }));
    for (const f of chains[p.name] || []) {
      x += 16;
      const dir = f.in && f.out ? "" : f.in ? ".IN" : ".OUT";
      s.append(svg("rect", { x, y: y - 10, width: filterW - 8, height: 20, rx: 10, fill: "#fff3dc", stroke: "#d6a951" }));
      s.append(svg("text", { x: x + 6, y: y + 4 }, (f.name + dir).slice(0, 13)));
      x += filterW - 8;
    }
  }
  // One bracket per route source: out of the hub at the source's row, into each destination's row.
  h.routes.data.forEach((r, k) => {
    const x = routesX + k * 14;
    const y0 = row[r.from];
    s.append(svg("line", { x1: hubX + 36, y1: y0, x2: x, y2: y0, stroke: "#1f5fa8" }));
    for (const to of r.to) {
      const y1 = row[to];
      s.append(svg("path", { d: `M${x},${y0} L${x},${y1} L${hubX + 38},${y1}`, fill: "none",
                             stroke: "#1f5fa8", "stroke-opacity": 0.7, "marker-end": "url(#arrow)" }));
    }
  });
  return s;
}

// ---- the tap -----------------------------------------------------------------------

function openTap(name) {
  closeTap();
  $("tap").hidden = false;
  $("tap-port").textContent = name;
  $("tap-lines").replaceChildren();
  const dir = $("tap-dir").value;
  const ws = new WebSocket(wsUrl("/api/tap/" + encodeURIComponent(name) + "?dir=" + dir));
  tap = { ws, name, paused: false, held: [], heldLost: 0, lost: 0, shown: 0 };
  ws.onmessage = (ev) => onTap(JSON.parse(ev.data));
  ws.onclose = () => { if (tap && tap.ws === ws) $("tap-stats").textContent += " (closed)"; };
  $("tap-pause").textContent = "Pause";
  $("tap").scrollIntoView({ block: "nearest" });
}

function closeTap() {
  if (tap) { const ws = tap.ws; tap = null; ws.close(); }
  $("tap").hidden = true;
}

function onTap(msg) {
  if (!tap || msg.type !== "tap") return;
  tap.lost = msg.lost_events;
  for (const e of msg.events) {
    if (tap.paused) {
      if (tap.held.length < TAP_HOLD) tap.held.push(e); else tap.heldLost++;
    } else {
      addTapLine(e);
    }
  }
  tapStats();
}

function tapStats() {
  let text = tap.shown + " lines";
  if (tap.lost) text += ", " + tap.lost + " lost by the hub (tap too slow)";
  if (tap.paused) text += ", paused: " + tap.held.length + " held";
  if (tap.heldLost) text += ", " + tap.heldLost + " dropped while paused";
  $("tap-stats").textContent = text;
}

function addTapLine(e) {
  const box = $("tap-lines");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  const div = el("div", "tap-line " + (e.signal ? "sig" : e.dir));
  const t = new Date(e.t * 1000);
  const stamp = t.toTimeString().slice(0, 8) + "." + String(t.getMilliseconds()).padStart(3, "0");
  let meta = stamp + " " + e.dir.padEnd(3);
  if (e.session !== undefined) meta += " #" + e.session;
  if (e.src) meta += " from " + e.src;
  div.append(el("span", "meta", meta + " "));
  if (e.signal) {
    div.append(el("span", "", e.signal));
  } else {
    div.append(el("span", "meta", e.len + " B" + (e.hex.length < e.len * 3 - 1 ? " (start shown)" : "") + "\n"));
    if ($("tap-hex").checked) div.append(el("div", "hex", e.hex));
    if ($("tap-text").checked) div.append(el("div", "text", e.text));
  }
  box.append(div);
  tap.shown++;
  while (box.childElementCount > TAP_KEEP) box.firstElementChild.remove();
  if (atEnd) box.scrollTop = box.scrollHeight;
}

// ---- controls ----------------------------------------------------------------------

function setup() {
  for (const s of STATES) $("state").append(el("option", "", s));
  let timer = null;
  $("filter").oninput = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { view.q = $("filter").value; view.offset = 0; sendView(); }, 200);
  };
  $("state").onchange = () => { view.state = $("state").value; view.offset = 0; sendView(); };
  $("prev").onclick = () => { view.offset = Math.max(0, view.offset - PAGE); sendView(); };
  $("next").onclick = () => { view.offset += PAGE; sendView(); };
  $("tap-close").onclick = closeTap;
  $("tap-clear").onclick = () => { $("tap-lines").replaceChildren(); if (tap) { tap.shown = 0; tapStats(); } };
  $("tap-dir").onchange = () => { if (tap) openTap(tap.name); };
  $("tap-pause").onclick = () => {
    if (!tap) return;
    tap.paused = !tap.paused;
    $("tap-pause").textContent = tap.paused ? "Resume" : "Pause";
    if (!tap.paused) {
      const held = tap.held;
      tap.held = [];
      for (const e of held) addTapLine(e);
    }
    tapStats();
  };
  loadPicture();
  setInterval(loadPicture, 30000);
  connectLive();
}

setup();
