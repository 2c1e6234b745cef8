// latentlab editor: the page's state lives here, one copy per tab; every render sends all of it to the server.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  models: {}, model: null, code: null, codeInfo: "", upload: null, history: [], inFlight: false, pending: false,
  changedAt: 0, lastRenderMs: null, renders: 0, samples: [], marks: {}, fitted: null, projecting: null,
};
window.latentlab = ui; // read by the browser test

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, body, opts = {}) {
  const res = await fetch(path, {
    method: "POST", body: body instanceof Blob || body instanceof ArrayBuffer ? body : JSON.stringify(body),
    headers: body instanceof Blob ? {} : { "Content-Type": "application/json" }, signal: opts.signal,
  });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function source() {
  const kind = document.querySelector("input[name=source]:checked").value;
  if (kind === "blend") {
    const t = parseFloat($("blend-t").value);
    return { kind, seeds: [int("blend-a"), int("blend-b")], weights: [1 - t, t] };
  }
  if (kind === "code" && ui.code) return { kind, id: ui.code };
  return { kind: "seed", seed: int("seed") };
}

function int(id) {
  const v = parseInt($(id).value, 10);
  return Number.isFinite(v) && v >= 0 ? v : 0;
}

function layersOf(row) {
  const sel = row.querySelector("select").value;
  return sel === "custom" ? row.querySelector("input[type=text]").value || "all" : sel;
}

function state() {
  const s = {
    model: ui.model, source: source(), psi: parseFloat($("psi").value),
    cutoff: $("cutoff").value === "" ? null : parseInt($("cutoff").value, 10),
    noise: $("noise").value, noise_seed: ui.noiseSeed || 0, mix: null, interp: null,
    edits: [...document.querySelectorAll("#sliders .slider")].map((row) => ({
      direction: row.dataset.key, alpha: parseFloat(row.querySelector("input[type=range]").value),
      layers: layersOf(row),
    })),
  };
  const mixes = ["coarse", "middle", "fine"].filter((g) => $(`mix-${g}-on`).checked)
    .map((g) => ({ source: { kind: "seed", seed: int(`mix-${g}-seed`) }, layers: g }));
  if (mixes.length) s.mix = mixes;
  if ($("interp-on").checked) {
    const towards = $("interp-kind").value === "code" && ui.code ? { kind: "code", id: ui.code } : { kind: "seed", seed: int("interp-seed") };
    s.interp = { source: towards, t: parseFloat($("interp-t").value) };
  }
  return s;
}

// Renders: at most one request in flight; changes made meanwhile are coalesced into one more render.
// preview: a slider is being dragged (large models answer with a cheap preview; the release renders in full)
function changed(preview = false) {
  ui.changedAt = performance.now();
  ui.wantPreview = preview;
  if (ui.inFlight) { ui.pending = true; return; }
  render();
}

async function render() {
  ui.inFlight = true;
  ui.pending = false;
  const started = ui.changedAt;
  try {
    const res = await api("/api/render", { ...state(), preview: Boolean(ui.wantPreview) });
    const blob = await res.blob();
    const img = $("image");
    const url = URL.createObjectURL(blob);
    await new Promise((ok) => { img.onload = ok; img.onerror = ok; img.src = url; });
    if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
    img.dataset.url = url;
    ui.lastRenderMs = performance.now() - started;
    ui.serverMs = parseFloat(res.headers.get("X-Render-Ms"));
    ui.renders += 1;
    $("latency").textContent = `${ui.lastRenderMs.toFixed(0)} ms (server ${ui.serverMs.toFixed(0)} ms)`;
    showError("");
  } catch (e) {
    showError(e.message);
  } finally {
    ui.inFlight = false;
    if (ui.pending) render();
  }
}

// Undo: a snapshot of the controls is pushed whenever a change is committed (a slider released, a field left).
function snapshot() {
  const inputs = [...document.querySelectorAll("#left input, #left select, #sliders input, #sliders select")];
  return {
    values: inputs.filter((el) => el.id).map((el) => [el.id, el.type === "checkbox" || el.type === "radio" ? el.checked : el.value]),
    sliders: [...document.querySelectorAll("#sliders .slider")].map((row) => ({
      key: row.dataset.key, alpha: row.querySelector("input[type=range]").value,
      layers: row.querySelector("select").value, custom: row.querySelector("input[type=text]").value,
    })),
    noiseSeed: ui.noiseSeed || 0,
  };
}

function commit() {
  const snap = JSON.stringify(snapshot());
  if (ui.history[ui.history.length - 1] !== snap) ui.history.push(snap);
  if (ui.history.length > 200) ui.history.shift();
}

function restore(snap) {
  const s = JSON.parse(snap);
  $("sliders").innerHTML = "";
  for (const sl of s.sliders) addSlider(sl.key, sl);
  for (const [id, v] of s.values) {
    const el = $(id);
    if (!el) continue;
    if (el.type === "checkbox" || el.type === "radio") el.checked = v; else el.value = v;
  }
  ui.noiseSeed = s.noiseSeed;
  $("psi-out").textContent = parseFloat($("psi").value).toFixed(2);
  changed();
}

function undo() {
  if (ui.history.length < 2) return;
  ui.history.pop();
  restore(ui.history[ui.history.length - 1]);
}

function reset() {
  restore(ui.history[0]);
  ui.history = [ui.history[0]];
}

function addSlider(key, init = {}) {
  const m = ui.models[ui.model];
  const d = m.directions.find((x) => x.key === key);
  if (!d) return;
  const row = document.createElement("div");
  row.className = "slider";
  row.dataset.key = key;
  const groups = ["all", "coarse", "middle", "fine", "custom"];
  const dflt = d.layers ? "custom" : "all";
  row.innerHTML = `<span class="name"></span> <button type="button" class="remove" title="remove">x</button><br>
    <input type="range" min="-5" max="5" step="0.1" value="0"> <output>0.0</output>
    <select>${groups.map((g) => `<option>${g}</option>`).join("")}</select>
    <input type="text" placeholder="0-3,5" hidden>`;
  row.querySelector(".name").textContent = d.label + (d.accuracy != null ? ` (acc ${(100 * d.accuracy).toFixed(0)}%)` : "");
  const range = row.querySelector("input[type=range]");
  const out = row.querySelector("output");
  const sel = row.querySelector("select");
  const text = row.querySelector("input[type=text]");
  range.value = init.alpha ?? 0;
  sel.value = init.layers ?? dflt;
  text.value = init.custom ?? (d.layers ? d.layers.join(",") : "");
  text.hidden = sel.value !== "custom";
  out.textContent = parseFloat(range.value).toFixed(1);
  range.addEventListener("input", () => { out.textContent = parseFloat(range.value).toFixed(1); changed(true); });
  range.addEventListener("change", () => { changed(false); commit(); });
  sel.addEventListener("change", () => { text.hidden = sel.value !== "custom"; changed(); commit(); });
  text.addEventListener("change", () => { changed(); commit(); });
  row.querySelector(".remove").addEventListener("click", () => { row.remove(); changed(); commit(); });
  $("sliders").appendChild(row);
}

function fillModel(name) {
  ui.model = name;
  const m = ui.models[name];
  const pick = $("direction-pick");
  pick.innerHTML = "";
  for (const d of m.directions) {
    const o = document.createElement("option");
    o.value = d.key;
    o.textContent = `${d.label} [${d.kind}]`;
    pick.appendChild(o);
  }
  const cut = $("cutoff");
  cut.innerHTML = '<option value="">all layers</option>';
  for (let i = 1; i < m.num_ws; i++) cut.innerHTML += `<option value="${i}">first ${i}</option>`;
  $("method").value = m.encoder ? "encoder" : "optimize";
  $("method").querySelector("option[value=encoder]").disabled = !m.encoder;
  $("sliders").innerHTML = "";
  ui.code = null;
  $("export-photo").disabled = true;
  $("source-code").disabled = true;
  $("interp-kind").value = "seed";
  $("interp-kind").querySelector("option[value=code]").disabled = true;
  document.querySelector("input[name=source][value=seed]").checked = true;
  $("code-info").textContent = "";
  ui.upload = null;
  $("project").disabled = true;
  $("upload-preview").hidden = true;
}

async function download(path, body) {
  try {
    const res = await api(path, body);
    const name = (res.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await res.blob());
    a.download = name ? name[1] : "download";
    document.body.appendChild(a);
    a.click();
    a.remove();
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

async function upload(file) {
  if (!file) return;
  const max = ui.maxUploadMb * 2 ** 20;
  if (file.size > max) { showError(`the file is ${(file.size / 2 ** 20).toFixed(1)} MiB, more than the limit of ${ui.maxUploadMb} MiB`); return; }
  $("project-status").textContent = "reading the image...";
  try {
    const res = await api(`/api/upload?model=${encodeURIComponent(ui.model)}&align=${$("align").checked ? 1 : 0}`, file);
    const out = await res.json();
    ui.upload = out.id;
    ui.uploadAligned = out.aligned;
    $("upload-preview").src = out.preview;
    $("upload-preview").hidden = false;
    $("project").disabled = false;
    $("project-status").textContent = out.aligned ? "aligned" : "cropped and resized";
    showError("");
  } catch (e) {
    $("project-status").textContent = "";
    showError(e.message);
  }
}

// A projection streams server-sent events over a POST; stopping it aborts the request and the server frees the job.
async function project() {
  const ctrl = new AbortController();
  ui.projecting = ctrl;
  $("project").disabled = true;
  $("project-stop").hidden = false;
  const bar = $("project-progress");
  bar.hidden = false;
  bar.value = 0;
  const body = {
    model: ui.model, upload: ui.upload, method: $("method").value, steps: int("steps"), space: $("space").value,
    pti: $("pti").checked,
  };
  try {
    const res = await api("/api/project", body, { signal: ctrl.signal });
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = frame.split("\n").find((l) => l.startsWith("data: "));
        if (data) onProjectEvent(JSON.parse(data.slice(6)));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
    else $("project-status").textContent = "stopped";
  } finally {
    ui.projecting = null;
    $("project").disabled = !ui.upload;
    $("project-stop").hidden = true;
    bar.hidden = true;
  }
}

function onProjectEvent(ev) {
  if (ev.event === "progress") {
    $("project-progress").value = ev.steps ? ev.step / ev.steps : 0;
    $("project-status").textContent = `${ev.stage} ${ev.step}/${ev.steps}` + (ev.loss != null ? ` loss ${ev.loss.toFixed(4)}` : "");
  } else if (ev.event === "done") {
    ui.code = ev.code;
    $("export-photo").disabled = !ui.uploadAligned;
    $("source-code").disabled = false;
    $("interp-kind").querySelector("option[value=code]").disabled = false;
    $("source-code").checked = true;
    $("code-info").textContent = `${ev.psnr.toFixed(1)} dB, ${ev.seconds.toFixed(1)} s`;
    $("project-status").textContent = `done: ${ev.method}${ev.steps ? ` + ${ev.steps} steps` : ""}${ev.pti ? " + PTI" : ""}`;
    changed();
    commit();
  } else if (ev.event === "error") {
    showError(ev.message);
    $("project-status").textContent = "failed";
  }
}

async function loadSamples(seed) {
  try {
    const res = await api("/api/samples", { model: ui.model, seed, count: 24, psi: 0.7 });
    const out = await res.json();
    const box = $("samples");
    box.innerHTML = "";
    ui.sampleSeed = seed;
    out.seeds.forEach((s, i) => {
      const img = document.createElement("img");
      img.src = out.images[i];
      img.dataset.seed = s;
      img.title = `seed ${s}: click to mark`;
      img.className = ui.marks[s] || "";
      img.addEventListener("click", () => {
        const next = { "": "pos", pos: "neg", neg: "" }[ui.marks[s] || ""];
        if (next) ui.marks[s] = next; else delete ui.marks[s];
        img.className = next;
      });
      box.appendChild(img);
    });
    $("samples-more").hidden = false;
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

async function fit() {
  const pos = Object.keys(ui.marks).filter((s) => ui.marks[s] === "pos").map(Number);
  const neg = Object.keys(ui.marks).filter((s) => ui.marks[s] === "neg").map(Number);
  try {
    const res = await api("/api/fit", { model: ui.model, name: $("fit-name").value, positive: pos, negative: neg, psi: 0.7 });
    const d = await res.json();
    ui.models[ui.model].directions.push(d);
    ui.fitted = d.key;
    const o = document.createElement("option");
    o.value = d.key;
    o.textContent = `${d.label} [fit]`;
    $("direction-pick").appendChild(o);
    addSlider(d.key);
    $("fit-save").disabled = false;
    $("fit-status").textContent = `fitted on ${pos.length} + ${pos.length ? neg.length : 0} samples` +
      (d.accuracy != null ? `, validation accuracy ${(100 * d.accuracy).toFixed(0)}%` : "");
    commit();
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

function bind() {
  const live = ["seed", "blend-a", "blend-b", "blend-t", "psi", "cutoff", "noise", "mix-coarse-on", "mix-coarse-seed",
    "mix-middle-on", "mix-middle-seed", "mix-fine-on", "mix-fine-seed", "interp-on", "interp-kind", "interp-seed", "interp-t"];
  for (const id of live) {
    $(id).addEventListener("input", () => { if (id === "psi") $("psi-out").textContent = parseFloat($("psi").value).toFixed(2); changed(); });
    $(id).addEventListener("change", commit);
  }
  document.querySelectorAll("input[name=source]").forEach((el) => el.addEventListener("change", () => { changed(); commit(); }));
  $("seed-random").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 100000); changed(); commit(); });
  $("noise-resample").addEventListener("click", () => { ui.noiseSeed = (ui.noiseSeed || 0) + 1; $("noise").value = "random"; changed(); commit(); });
  $("direction-add").addEventListener("click", () => { addSlider($("direction-pick").value); commit(); });
  $("undo").addEventListener("click", undo);
  $("reset").addEventListener("click", reset);
  $("export-png").addEventListener("click", () => download("/api/export/png", state()));
  $("export-codes").addEventListener("click", () => download("/api/export/codes", state()));
  $("export-photo").addEventListener("click", () => download("/api/export/photo", state()));
  $("export-sweep").addEventListener("click", () => download("/api/export/sweep", { state: state(), direction: 0, low: -3, high: 3, frames: 48 }));
  $("upload").addEventListener("change", (e) => upload(e.target.files[0]));
  $("project").addEventListener("click", project);
  $("project-stop").addEventListener("click", () => ui.projecting && ui.projecting.abort());
  $("samples-load").addEventListener("click", () => loadSamples(1000));
  $("samples-more").addEventListener("click", () => loadSamples((ui.sampleSeed || 1000) + 24));
  $("fit").addEventListener("click", fit);
  $("fit-save").addEventListener("click", () => download("/api/export/direction", { model: ui.model, key: ui.fitted }));
  $("model").addEventListener("change", () => { fillModel($("model").value); ui.history = []; commit(); changed(); });
}

async function main() {
  try {
    const res = await fetch("/api/models");
    const info = await res.json();
    ui.maxUploadMb = info.max_upload_mb;
    for (const m of info.models) {
      ui.models[m.name] = m;
      const o = document.createElement("option");
      o.value = o.textContent = m.name;
      $("model").appendChild(o);
    }
    $("align").disabled = !info.align;
    $("align").checked = info.align;
    $("model").value = info.default;
    fillModel(info.default);
    bind();
    commit();
    changed();
  } catch (e) {
    showError(`the server did not answer: ${e.message}`);
  }
}

main();
