// musegen studio: the page's logic. Plain JavaScript, no library; every request goes to
// the server that served this page.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#2f6fb3", "#c2571a", "#2e8b57", "#8e44ad", "#b8860b", "#d0352b", "#17a2b8", "#6c757d"];
const ROLL = { pxPerSecond: 60, rowHeight: 5, top: 16 };

const state = { catalog: null, take: null, history: [], selection: null, busy: false, rollView: null };

function message(text, ok) {
  const box = $("message");
  box.textContent = text || "";
  box.className = ok ? "message ok" : "message";
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Error("the server did not answer (" + e.message + ")");
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || ("the server answered " + response.status));
  }
  return body;
}

function postJSON(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });
}

async function busy(label, work) {
  if (state.busy) return;
  state.busy = true;
  document.querySelectorAll("aside button").forEach((b) => (b.disabled = true));
  $("status").textContent = label + "…";
  message("");
  const t0 = performance.now();
  try {
    const take = await work();
    if (take) {
      showTake(take);
      message(label + " done in " + ((performance.now() - t0) / 1000).toFixed(1) + " s", true);
    }
  } catch (e) {
    message(e.message);
  } finally {
    state.busy = false;
    document.querySelectorAll("aside button").forEach((b) => (b.disabled = false));
    $("status").textContent = "ready";
    updateControls();
  }
}

// ------------------------------------------------------------------ catalog and controls
function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.appendChild(o);
  return o;
}

function sourceEntry() {
  const [kind, name] = $("source").value.split(":");
  const list = kind === "model" ? state.catalog.models : state.catalog.methods;
  return { kind, entry: list.find((m) => m.name === name) };
}

function updateControls() {
  if (!state.catalog) return;
  const { kind, entry } = sourceEntry();
  const settings = ["seed"].concat(entry.settings);
  for (const id of ["bars", "seed", "temperature", "top_p", "key", "tempo", "chords", "density"]) {
    $(id).disabled = !settings.includes(id);
  }
  $("source-info").textContent = entry.description || "";
  $("continue").disabled = state.busy || !(kind === "model" && entry.primer && state.take);
  const haveTake = !!state.take;
  $("harmonize").disabled = state.busy || !haveTake;
  $("infill").disabled = state.busy || !haveTake || !state.selection;
  $("play").disabled = !haveTake;
}

async function loadCatalog() {
  const catalog = await api("/api/catalog");
  state.catalog = catalog;
  const source = $("source");
  const models = document.createElement("optgroup");
  models.label = "Models";
  const methods = document.createElement("optgroup");
  methods.label = "Compose methods";
  for (const m of catalog.models) {
    if (m.serves.includes("generate")) option(models, "model:" + m.name, m.name + " (" + m.kind + ")").selected = m.default;
    if (m.serves.includes("harmonize")) option($("harmonizer"), m.name, m.name);
    if (m.serves.includes("infill")) option($("infiller"), m.name, m.name);
  }
  for (const m of catalog.methods) option(methods, "method:" + m.name, m.name);
  source.appendChild(models);
  source.appendChild(methods);
  const corpus = await api("/api/corpus");
  for (const name of corpus.pieces) option($("corpus"), name, name);
  $("status").textContent = "ready";
  updateControls();
}

function numberOrNull(id) {
  const el = $(id);
  if (el.disabled || el.value === "") return null;
  return Number(el.value);
}

function textOrNull(id) {
  const el = $(id);
  return el.disabled || el.value.trim() === "" ? null : el.value.trim();
}

function generateBody() {
  const { kind, entry } = sourceEntry();
  const body = { bars: numberOrNull("bars") || 4, seed: numberOrNull("seed"), key: textOrNull("key"),
    tempo: numberOrNull("tempo"), temperature: numberOrNull("temperature"), chords: textOrNull("chords") };
  if (kind === "model") {
    return ["/api/generate", Object.assign(body, { model: entry.name, top_p: numberOrNull("top_p"), density: textOrNull("density") })];
  }
  return ["/api/compose", Object.assign(body, { method: entry.name })];
}

// ------------------------------------------------------------------ a take
function showTake(take) {
  state.take = take;
  if (!state.history.find((t) => t.id === take.id)) state.history.push(take);
  state.selection = null;
  $("take-title").textContent = take.label + " · " + take.n_notes + " notes · " + take.seconds.toFixed(1) + " s"
    + (take.key ? " · " + take.key : "") + (take.meter ? " · " + take.meter : "");
  const links = $("downloads");
  links.textContent = "";
  for (const [kind, text] of [["mid", "MIDI"], ["musicxml", "MusicXML"], ["wav", "WAV"], ["json", "settings"]]) {
    const a = document.createElement("a");
    a.href = take.files[kind] + "?download=1";
    a.textContent = text;
    a.dataset.kind = kind;
    links.appendChild(a);
  }
  $("settings").textContent = JSON.stringify(take.settings, null, 2);
  const audio = $("audio");
  audio.pause();
  audio.src = take.files.wav;
  audio.load();
  $("score").src = take.files.svg;
  const voices = $("voices");
  voices.querySelectorAll("label").forEach((l) => l.remove());
  for (const v of take.voices || "") {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = v;
    box.checked = true;
    box.className = "voice";
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + v));
    voices.appendChild(label);
  }
  $("sel-from").value = "";
  $("sel-to").value = "";
  drawRoll(take);
  drawHistory();
  updateControls();
}

function drawHistory() {
  const list = $("history");
  list.textContent = "";
  for (const t of state.history) {
    const li = document.createElement("li");
    if (state.take && t.id === state.take.id) li.className = "current";
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t.label;
    b.addEventListener("click", () => { if (!state.busy) showTake(t); });
    li.appendChild(b);
    const seed = t.settings && t.settings.seed;
    li.appendChild(document.createTextNode(" " + t.n_notes + " notes" + (seed !== null && seed !== undefined ? ", seed " + seed : "")
      + (t.parent ? ", from " + (state.history.find((h) => h.id === t.parent) || { label: t.parent }).label : "")));
    list.appendChild(li);
  }
}

// ------------------------------------------------------------------ the piano roll
function svgElement(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function drawRoll(take) {
  const svg = $("roll");
  svg.textContent = "";
  const pitches = take.notes.map((n) => n[2]);
  const low = (pitches.length ? Math.min(...pitches) : 60) - 2;
  const high = (pitches.length ? Math.max(...pitches) : 72) + 2;
  const width = Math.max(600, Math.ceil(take.seconds * ROLL.pxPerSecond) + 20);
  const height = ROLL.top + (high - low + 1) * ROLL.rowHeight + 4;
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const x = (t) => 10 + t * ROLL.pxPerSecond;
  const y = (p) => ROLL.top + (high - p) * ROLL.rowHeight;
  const bars = take.bars.concat([take.seconds]);
  take.bars.forEach((t, i) => {
    svgElement("line", { x1: x(t), x2: x(t), y1: 10, y2: height, class: "bar-line" }, svg);
    const chord = (take.chords || [])[i];
    svgElement("text", { x: x(t) + 2, y: 10, class: "bar-label" }, svg).textContent = String(i + 1) + (chord ? "  " + chord : "");
  });
  const notes = svgElement("g", { class: "notes" }, svg);
  for (const [start, dur, pitch, velocity, track] of take.notes) {
    svgElement("rect", {
      class: "note", x: x(start), y: y(pitch), width: Math.max(1, dur * ROLL.pxPerSecond - 1),
      height: ROLL.rowHeight - 1, fill: COLOURS[track % COLOURS.length],
      "fill-opacity": 0.45 + velocity / 254, "data-track": track, "data-pitch": pitch,
    }, notes);
  }
  const selection = svgElement("rect", { class: "selection", x: 0, y: 10, width: 0, height: height - 10, visibility: "hidden" }, svg);
  const cursor = svgElement("line", { class: "cursor", x1: 10, x2: 10, y1: 10, y2: height }, svg);
  state.rollView = { x, bars, selection, cursor, height };
}

function barAt(clientX) {
  const view = state.rollView;
  const box = $("roll").getBoundingClientRect();
  const seconds = (clientX - box.left - 10) / ROLL.pxPerSecond;
  let bar = 0;
  for (let i = 0; i < view.bars.length - 1; i++) if (seconds >= view.bars[i]) bar = i;
  return bar + 1;
}

function select(first, last) {
  const view = state.rollView;
  if (!view || !state.take) return;
  const n = state.take.bars.length;
  first = Math.max(1, Math.min(first, n));
  last = Math.max(first, Math.min(last, n));
  state.selection = [first, last];
  const x0 = view.x(view.bars[first - 1]);
  const x1 = view.x(view.bars[last]);
  view.selection.setAttribute("x", x0);
  view.selection.setAttribute("width", Math.max(2, x1 - x0));
  view.selection.setAttribute("visibility", "visible");
  $("sel-from").value = first;
  $("sel-to").value = last;
  updateControls();
}

function setupRollSelection() {
  const svg = $("roll");
  let anchor = null;
  svg.addEventListener("mousedown", (e) => {
    if (!state.take) return;
    anchor = barAt(e.clientX);
    select(anchor, anchor);
    e.preventDefault();
  });
  svg.addEventListener("mousemove", (e) => {
    if (anchor === null) return;
    const bar = barAt(e.clientX);
    select(Math.min(anchor, bar), Math.max(anchor, bar));
  });
  window.addEventListener("mouseup", () => { anchor = null; });
  for (const id of ["sel-from", "sel-to"]) {
    $(id).addEventListener("change", () => {
      const a = Number($("sel-from").value), b = Number($("sel-to").value || $("sel-from").value);
      if (a >= 1) select(a, Math.max(a, b));
    });
  }
}

function followPlayback() {
  const view = state.rollView;
  const audio = $("audio");
  if (view) {
    const x = view.x(audio.currentTime || 0);
    view.cursor.setAttribute("x1", x);
    view.cursor.setAttribute("x2", x);
  }
  requestAnimationFrame(followPlayback);
}

// ------------------------------------------------------------------ actions
function setup() {
  $("source").addEventListener("change", updateControls);
  $("generate").addEventListener("click", () => busy("generating", () => {
    const [path, body] = generateBody();
    return postJSON(path, body);
  }));
  $("continue").addEventListener("click", () => busy("continuing", () => {
    const [path, body] = generateBody();
    return postJSON(path, Object.assign(body, { primer: state.take.id }));
  }));
  $("harmonize").addEventListener("click", () => busy("harmonizing", () =>
    postJSON("/api/harmonize", { take: state.take.id, model: $("harmonizer").value, voices: "S", seed: numberOrNull("seed") })));
  $("infill").addEventListener("click", () => busy("infilling", () => {
    const voices = Array.from(document.querySelectorAll("#voices input.voice:checked")).map((b) => b.value).join("");
    if (!voices) throw new Error("tick at least one voice to rewrite");
    return postJSON("/api/infill", { take: state.take.id, model: $("infiller").value, bars: state.selection,
      voices, seed: numberOrNull("seed") });
  }));
  $("upload-go").addEventListener("click", () => busy("reading the file", () => {
    const file = $("upload").files[0];
    if (!file) throw new Error("choose a file first");
    const form = new FormData();
    form.append("file", file);
    return api("/api/upload", { method: "POST", body: form });
  }));
  $("corpus-go").addEventListener("click", () => busy("loading", () => postJSON("/api/corpus", { name: $("corpus").value })));
  $("play").addEventListener("click", () => {
    const audio = $("audio");
    audio.play().catch((e) => message("cannot play: " + e.message));
  });
  setupRollSelection();
  requestAnimationFrame(followPlayback);
  loadCatalog().catch((e) => message(e.message));
}

window.studio = state; // for tests and the curious: the page's state, read-only by intent
document.addEventListener("DOMContentLoaded", setup);
