// Fovea demo page: pick a photo, run a task endpoint, draw the answer on the photo.
// Plain browser JavaScript, no build step and nothing loaded from elsewhere.
"use strict";

const MAX_SIDE = 1600; // photos larger than this are downsized before upload
const MAX_BYTES = 2.5e6; // ...and so are files larger than this
const KEY_STORE = "fovea.apiKey";

const TASKS = {
  classify: { path: "/v1/classify", modelTask: "classification", images: 1 },
  detect: { path: "/v1/detect", modelTask: "detection", images: 1 },
  segment: { path: "/v1/segment", modelTask: "segmentation", images: 1 },
  caption: { path: "/v1/caption", modelTask: "captioning", images: 1 },
  vqa: { path: "/v1/vqa", modelTask: "vqa", images: 1 },
  "faces-detect": { path: "/v1/faces/detect", modelTask: "face_detection", images: 1 },
  verify: { path: "/v1/faces/verify", modelTask: "face_embedding", images: 2 },
  identify: { path: "/v1/faces/identify", modelTask: "face_embedding", images: 1 },
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const state = { slots: [null, null], models: [], busy: false };
window.fovea = { last: null }; // what was drawn last, for tests and the curious

// ---- helpers ---------------------------------------------------------------------------------

function colour(i) {
  const hue = (i * 0.618033988749895) % 1;
  return `hsl(${Math.round(hue * 360)}, 85%, 50%)`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function pct(p) {
  return `${(100 * p).toFixed(p >= 0.1 ? 0 : 1)}%`;
}

function kb(bytes) {
  return bytes > 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${Math.round(bytes / 1e3)} kB`;
}

function currentTask() {
  return $("input[name=task]:checked").value;
}

function headers() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("#error").hidden = true;
  $("#error").textContent = "";
}

async function call(method, url, body) {
  let response;
  try {
    response = await fetch(url, { method, body, headers: headers() });
  } catch (err) {
    throw new Error(`the server did not answer (${err.message})`);
  }
  const text = await response.text();
  let doc = null;
  try {
    doc = JSON.parse(text);
  } catch (_) {
    /* not JSON: reported below */
  }
  if (!response.ok) {
    const why = doc && doc.error ? `${doc.error} (${doc.code})` : text.slice(0, 300);
    const id = response.headers.get("x-request-id");
    throw new Error(`${response.status}: ${why}${id ? ` [request ${id}]` : ""}`);
  }
  return doc;
}

// ---- models ----------------------------------------------------------------------------------

async function loadModels() {
  const list = $("#model-list");
  try {
    const doc = await call("GET", "/v1/models");
    state.models = doc.models;
  } catch (err) {
    list.textContent = `unavailable: ${err.message}`;
    return;
  }
  list.replaceChildren(
    ...state.models.map((m) =>
      el("span", { class: `chip ${m.state}`, title: m.reason || m.task || "" }, `${m.name}: ${m.state}`),
    ),
  );
  list.classList.remove("muted");
  fillModelChoice();
  updateCamOption();
  if (state.models.some((m) => m.state === "loading")) setTimeout(loadModels, 1000);
}

function fillModelChoice() {
  const task = TASKS[currentTask()].modelTask;
  const select = $("#model");
  const keep = select.value;
  const ready = state.models.filter((m) => m.task === task && m.state === "ready");
  select.replaceChildren(
    el("option", { value: "" }, "task default"),
    ...ready.map((m) => el("option", { value: m.name }, m.name)),
  );
  if (ready.some((m) => m.name === keep)) select.value = keep;
}

// The CAM switch shows only for a classifier whose config says it can explain itself.
function updateCamOption() {
  $("#cam-option").hidden = !(currentTask() === "classify" && chosenModel()?.config?.explain);
}

function chosenModel() {
  const name = $("#model").value;
  const task = TASKS[currentTask()].modelTask;
  return (
    state.models.find((m) => m.name === name) ||
    state.models.find((m) => m.task === task && m.state === "ready" && m.config?.default_for_task) ||
    state.models.find((m) => m.task === task && m.state === "ready")
  );
}

// ---- images ----------------------------------------------------------------------------------

function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    const url = URL.createObjectURL(blob);
    img.onload = () => resolve(img);
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("this file is not an image the browser can open"));
    };
    img.src = url;
  });
}

// A photo as the server will receive it: downsized (JPEG) when it is big, so phones upload
// a few hundred kB instead of 4 MB; results then come back in the downsized image's pixels.
async function prepare(blob) {
  const img = await loadImage(blob);
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
  if (scale === 1 && blob.size <= MAX_BYTES) {
    return { blob, img, width: w, height: h, note: `${w}×${h}, ${kb(blob.size)}` };
  }
  const canvas = el("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
  const small = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.9));
  const smallImg = await loadImage(small);
  const note = `${w}×${h}, ${kb(blob.size)} → sent as ${canvas.width}×${canvas.height}, ${kb(small.size)}`;
  return { blob: small, img: smallImg, width: canvas.width, height: canvas.height, note };
}

async function setSlot(index, blob) {
  clearError();
  let prepared;
  try {
    prepared = await prepare(blob);
  } catch (err) {
    showError(err.message);
    return;
  }
  state.slots[index] = prepared;
  const slot = $(`#slot-${index}`);
  slot.classList.add("filled");
  $(".info", slot).textContent = prepared.note;
  drawBase(index);
  $("#result").replaceChildren();
  updateRunButton();
}

function drawBase(index) {
  const slot = state.slots[index];
  const canvas = $(`#canvas-${index}`);
  if (!slot) {
    canvas.hidden = true;
    return null;
  }
  canvas.width = slot.width;
  canvas.height = slot.height;
  canvas.hidden = false;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(slot.img, 0, 0, slot.width, slot.height);
  return ctx;
}

function wireSlot(index) {
  const slot = $(`#slot-${index}`);
  for (const input of $$("input.file", slot)) {
    input.addEventListener("change", () => input.files[0] && setSlot(index, input.files[0]));
  }
  const zone = $(".drop", slot);
  for (const target of [zone, $(`#canvas-${index}`)]) {
    target.addEventListener("dragover", (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
    target.addEventListener("dragleave", () => zone.classList.remove("over"));
    target.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      const file = e.dataTransfer.files[0];
      if (file) setSlot(index, file);
    });
  }
  for (const button of $$("button[data-sample]", slot)) {
    button.addEventListener("click", async () => {
      try {
        const response = await fetch(`/static/${button.dataset.sample}`);
        setSlot(index, await response.blob());
      } catch (err) {
        showError(`could not load the sample: ${err.message}`);
      }
    });
  }
}

// ---- drawing ---------------------------------------------------------------------------------

function lineWidth(ctx) {
  return Math.max(2, Math.round(Math.max(ctx.canvas.width, ctx.canvas.height) / 300));
}

function drawBox(ctx, box, text, stroke, ink = "#fff") {
  const [x1, y1, x2, y2] = box;
  const lw = lineWidth(ctx);
  ctx.lineWidth = lw;
  ctx.strokeStyle = stroke;
  ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
  if (!text) return;
  const size = Math.max(12, lw * 6);
  ctx.font = `${size}px sans-serif`;
  const width = ctx.measureText(text).width + 6;
  const top = y1 - size - 4 >= 0 ? y1 - size - 4 : y1;
  ctx.fillStyle = stroke;
  ctx.fillRect(x1 - lw / 2, top, width, size + 4);
  ctx.fillStyle = ink;
  ctx.fillText(text, x1 + 3 - lw / 2, top + size);
}

function drawPoints(ctx, points, fill) {
  ctx.fillStyle = fill;
  const r = lineWidth(ctx);
  for (const [x, y] of points) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function drawPng(ctx, b64, alpha, transparentBlack) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const off = el("canvas");
      off.width = ctx.canvas.width;
      off.height = ctx.canvas.height;
      const octx = off.getContext("2d");
      octx.imageSmoothingEnabled = !transparentBlack; // class maps: keep edges sharp
      octx.drawImage(img, 0, 0, off.width, off.height);
      if (transparentBlack) {
        const data = octx.getImageData(0, 0, off.width, off.height);
        const px = data.data;
        for (let i = 0; i < px.length; i += 4) {
          if (px[i] + px[i + 1] + px[i + 2] === 0) px[i + 3] = 0;
        }
        octx.putImageData(data, 0, 0);
      }
      ctx.globalAlpha = alpha;
      ctx.drawImage(off, 0, 0);
      ctx.globalAlpha = 1;
      resolve();
    };
    img.onerror = () => reject(new Error("the server sent an image the browser cannot read"));
    img.src = `data:image/png;base64,${b64}`;
  });
}

// The class activation map, when asked for (explain=cam, explain_png=true): the server sends the
// top label's map already blended over the photo, and a box around the evidence per label.
async function drawCam(ctx, result) {
  const top = result.predictions[0];
  if (result.explain_png) await drawPng(ctx, result.explain_png, 1, false);
  if (top?.cam?.box) drawBox(ctx, top.cam.box, `${top.label}: evidence`, "#ff0", "#000");
  return Boolean(result.explain_png || top?.cam);
}

function scoreList(items, textOf, valueOf) {
  return el(
    "ol",
    { class: "scores" },
    ...items.map((item) =>
      el(
        "li",
        {},
        el("span", { class: "label" }, textOf(item)),
        el("span", { class: "bar", style: `--w: ${(100 * valueOf(item)).toFixed(1)}%` }),
        el("span", { class: "value" }, pct(valueOf(item))),
      ),
    ),
  );
}

// ---- rendering of each task's answer --------------------------------------------------------

const RENDER = {
  async classify(doc, out) {
    const r = doc.results[0];
    const ctx = drawBase(0);
    const cam = await drawCam(ctx, r);
    const list = scoreList(r.predictions, (p) => p.label, (p) => p.probability);
    list.id = "labels";
    out.append(el("h2", {}, "Top labels"), list);
    if (cam) out.append(el("p", { class: "muted" }, "Overlay: where the model looked (CAM)."));
    return { labels: r.predictions.map((p) => p.label), cam };
  },

  async detect(doc, out) {
    const r = doc.results[0];
    const ctx = drawBase(0);
    const boxes = r.detections.map((d) => {
      const stroke = colour(d.class_id);
      drawBox(ctx, d.box, `${d.label} ${pct(d.score)}`, stroke);
      return { box: d.box, label: d.label, stroke };
    });
    out.append(
      el("h2", {}, `${r.detections.length} object${r.detections.length === 1 ? "" : "s"}`),
      el(
        "ul",
        { id: "detections" },
        ...r.detections.map((d) =>
          el("li", {}, `${d.label} ${pct(d.score)} at [${d.box.map(Math.round).join(", ")}]`),
        ),
      ),
    );
    return { boxes };
  },

  async segment(doc, out) {
    const r = doc.results[0];
    const ctx = drawBase(0);
    if (r.mask_png) await drawPng(ctx, r.mask_png, 0.55, true);
    const present = r.classes.filter((c) => c.label !== doc.labels[0]);
    out.append(
      el("h2", {}, "Classes present"),
      el(
        "ul",
        { id: "classes" },
        ...r.classes.map((c) => el("li", {}, `${c.label}: ${pct(c.fraction)} of the image`)),
      ),
    );
    return { classes: present.map((c) => c.label) };
  },

  async caption(doc, out) {
    drawBase(0);
    const caps = doc.results[0].captions;
    out.append(
      el("h2", {}, "Caption"),
      el("ol", { id: "captions" }, ...caps.map((c) => el("li", {}, c.text))),
    );
    return { captions: caps.map((c) => c.text) };
  },

  async vqa(doc, out) {
    drawBase(0);
    for (const r of doc.results) {
      const list = scoreList(r.answers, (a) => a.label, (a) => a.probability);
      list.id = "answers";
      out.append(el("h2", {}, r.question), list);
      if (r.unknown_words) out.append(el("p", { class: "muted" }, `${r.unknown_words} word(s) unknown to the model`));
    }
    return { answers: doc.results[0].answers.map((a) => a.label) };
  },

  async "faces-detect"(doc, out) {
    const faces = doc.results[0].faces;
    const ctx = drawBase(0);
    const boxes = faces.map((f, i) => {
      const stroke = colour(i + 1);
      drawBox(ctx, f.box, pct(f.score), stroke);
      drawPoints(ctx, f.landmarks, stroke);
      return { box: f.box, stroke };
    });
    out.append(el("h2", {}, `${faces.length} face${faces.length === 1 ? "" : "s"}`));
    return { boxes };
  },

  async verify(doc, out) {
    const boxes = doc.faces.map((f, i) => {
      const ctx = drawBase(i);
      drawBox(ctx, f.box, `face ${i + 1}`, "#0a0");
      return { box: f.box, stroke: "#0a0" };
    });
    const same = doc.same_person;
    out.append(
      el("h2", { id: "verdict", class: same ? "yes" : "no" }, same ? "Same person" : "Different people"),
      el(
        "p",
        {},
        `similarity ${doc.similarity.toFixed(3)} ${same ? "≥" : "<"} threshold ${doc.threshold}` +
          ` (faces found: ${doc.faces_found.join(" and ")}; the largest of each was compared)`,
      ),
    );
    return { boxes, same };
  },

  async identify(doc, out) {
    const faces = doc.results[0].faces;
    const ctx = drawBase(0);
    const boxes = faces.map((f, i) => {
      const known = f.identity !== "unknown";
      const stroke = known ? colour(i + 2) : "#888";
      drawBox(ctx, f.box, known ? `${f.identity} ${f.similarity.toFixed(2)}` : "unknown", stroke);
      return { box: f.box, stroke, identity: f.identity };
    });
    out.append(
      el("h2", {}, `${faces.length} face${faces.length === 1 ? "" : "s"}`),
      el(
        "ul",
        { id: "identities" },
        ...faces.map((f) =>
          el(
            "li",
            {},
            `${f.identity}` +
              (f.matches.length
                ? ` — nearest: ${f.matches.map((m) => `${m.identity} ${m.similarity.toFixed(2)}`).join(", ")}`
                : " — the gallery is empty"),
          ),
        ),
      ),
    );
    return { boxes };
  },
};

// ---- running a task --------------------------------------------------------------------------

function query(task) {
  const params = new URLSearchParams();
  const model = $("#model").value;
  if (model) params.set("model", model);
  const k = $("#top-k").value;
  if (task === "classify") {
    params.set("top_k", k);
    if (chosenModel()?.config?.explain && $("#cam").checked) {
      params.set("explain", "cam");
      params.set("explain_png", "true");
    }
  }
  if (task === "detect") {
    params.set("max_detections", k);
    params.set("score_threshold", $("#score").value);
  }
  if (task === "identify") params.set("top_k", Math.min(Number(k), 5));
  if (task === "segment") params.set("mask_format", "png");
  return params.toString();
}

async function run(event) {
  event.preventDefault();
  if (state.busy) return;
  const task = currentTask();
  const spec = TASKS[task];
  clearError();
  const body = new FormData();
  for (let i = 0; i < spec.images; i++) {
    if (!state.slots[i]) {
      showError(spec.images === 2 ? "choose two photos" : "choose a photo first");
      return;
    }
    body.append("image", state.slots[i].blob, `image-${i}.jpg`);
  }
  if (task === "vqa") body.append("question", $("#question").value);
  const qs = query(task);
  state.busy = true;
  $("#busy").textContent = "running…";
  const out = $("#result");
  out.replaceChildren();
  const started = performance.now();
  try {
    const doc = await call("POST", `${spec.path}${qs ? `?${qs}` : ""}`, body);
    const drawn = await RENDER[task](doc, out);
    const ms = Math.round(performance.now() - started);
    out.append(el("p", { class: "muted" }, `${doc.model} v${doc.version ?? "?"} · ${ms} ms round trip`));
    window.fovea.last = { task, response: doc, ...drawn };
  } catch (err) {
    showError(err.message);
    window.fovea.last = { task, error: err.message };
  } finally {
    state.busy = false;
    $("#busy").textContent = "";
  }
}

// ---- the face gallery ------------------------------------------------------------------------

async function loadGallery() {
  const list = $("#gallery-list");
  try {
    const doc = await call("GET", "/v1/faces/gallery");
    list.replaceChildren(
      ...doc.identities.map((p) => {
        const remove = el("button", { type: "button" }, "forget");
        remove.addEventListener("click", async () => {
          try {
            await call("DELETE", `/v1/faces/gallery/${encodeURIComponent(p.identity)}`);
          } catch (err) {
            showError(err.message);
          }
          loadGallery();
        });
        return el("li", {}, `${p.identity} (${p.photos} photo${p.photos === 1 ? "" : "s"}) `, remove);
      }),
    );
    if (!doc.identities.length) list.replaceChildren(el("li", { class: "muted" }, "nobody enrolled yet"));
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, err.message));
  }
}

async function enrol() {
  clearError();
  const name = $("#enrol-name").value.trim();
  if (!name) return showError("type a name to enrol");
  if (!state.slots[0]) return showError("choose a photo to enrol");
  const body = new FormData();
  body.append("image", state.slots[0].blob, "enrol.jpg");
  try {
    await call("POST", `/v1/faces/gallery/${encodeURIComponent(name)}`, body);
  } catch (err) {
    showError(err.message);
  }
  loadGallery();
}

// ---- wiring ----------------------------------------------------------------------------------

function updateRunButton() {
  const spec = TASKS[currentTask()];
  $("#run").disabled = state.slots.slice(0, spec.images).some((s) => !s);
}

function onTaskChange() {
  const task = currentTask();
  const spec = TASKS[task];
  $("#slot-1").hidden = spec.images < 2;
  for (const label of $$("#options [data-for]")) {
    label.hidden = !label.dataset.for.split(" ").includes(task);
  }
  $("#gallery").hidden = task !== "identify";
  updateCamOption();
  if (task === "identify") loadGallery();
  fillModelChoice();
  updateRunButton();
  $("#result").replaceChildren();
  if (state.slots[0]) drawBase(0);
}

function init() {
  const key = $("#api-key");
  key.value = localStorage.getItem(KEY_STORE) || "";
  key.addEventListener("change", () => {
    if (key.value) localStorage.setItem(KEY_STORE, key.value);
    else localStorage.removeItem(KEY_STORE);
    loadModels();
  });
  wireSlot(0);
  wireSlot(1);
  for (const radio of $$("input[name=task]")) radio.addEventListener("change", onTaskChange);
  $("#form").addEventListener("submit", run);
  $("#enrol").addEventListener("click", enrol);
  $("#model").addEventListener("change", updateCamOption);
  onTaskChange();
  loadModels();
}

init();
