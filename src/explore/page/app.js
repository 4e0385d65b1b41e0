// latentlab explore: the browser page. Plain ES2020 with no dependencies; it talks only to the
// same-origin JSON API of docs/explore-api.md, with relative URLs.
"use strict";

(() => {
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const MAP_SIZE = 420;                                // CSS px of the map canvas
  const PLOT = { x: 40, y: 10, w: 370, h: 370 };       // the plane's rectangle inside it
  const GRID = 12;                                     // decoded background: GRID × GRID codes
  const HIT_PX = 5;                                    // how close a click must be to a dot
  const PICKS = 16;
  const FRAMES = 24;
  const FPS = 12;
  const POLL_MS = 2000;

  const $ = (id) => document.getElementById(id);

  /** The state of the run on show; replaced on a run switch, so late answers check `s === S`. */
  let S = null;

  // ---------------------------------------------------------------- helpers

  /** Create an element with attributes and children. */
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      // The server's CSP refuses style attributes; CSSOM assignments are allowed.
      if (k === "style") e.style.cssText = v;
      else e.setAttribute(k, v);
    }
    e.append(...children);
    return e;
  }

  /** GET (no body) or POST (JSON body) to the API; throws the server's `error` message. */
  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new Error(`${path}: the server does not answer (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    try { data = JSON.parse(text); } catch { /* not JSON: reported below if it is an error */ }
    if (!res.ok) throw new Error(`${path}: ${data && data.error ? data.error : `HTTP ${res.status}`}`);
    return data;
  }

  const runPath = (s, rest) => `api/runs/${encodeURIComponent(s.run.id)}/${rest}`;

  function showError(message) {
    $("error-text").textContent = message;
    $("error").hidden = false;
  }

  const report = (e) => showError(e instanceof Error ? e.message : String(e));

  /** An event handler whose failures (sync or async) land in #error. */
  const guard = (fn) => (...args) => {
    try {
      Promise.resolve(fn(...args)).catch(report);
    } catch (e) {
      report(e);
    }
  };

  /** A handler of a deliberate user action (click, choice): it first clears the previous error. */
  const action = (fn) => guard((...args) => {
    $("error").hidden = true;
    return fn(...args);
  });

  /** A freshness check for one kind of request: only the newest answer of `key` may be shown. */
  function ticket(s, key) {
    const t = (s.tickets[key] || 0) + 1;
    s.tickets[key] = t;
    return () => s === S && s.tickets[key] === t;
  }

  /**
   * Wrap an async `send(job)` so that at most one runs at a time; jobs arriving meanwhile replace
   * each other and only the newest is sent when the running one returns.
   */
  function latestOnly(send) {
    let busy = false;
    let next = null;
    return (job) => {
      next = job;
      if (busy) return;
      busy = true;
      (async () => {
        while (next) {
          const j = next;
          next = null;
          try { await send(j); } catch (e) { report(e); }
        }
        busy = false;
      })();
    };
  }

  const dot = (a, b) => a.reduce((acc, x, i) => acc + x * b[i], 0);
  const mean = (codes) => codes[0].map((_, j) => codes.reduce((acc, c) => acc + c[j], 0) / codes.length);
  /** [min, max] of `values`, widened when they are all equal. */
  function span(values) {
    const lo = values.reduce((a, b) => Math.min(a, b), Infinity);
    const hi = values.reduce((a, b) => Math.max(a, b), -Infinity);
    return hi > lo ? [lo, hi] : [lo - 1, lo + 1];
  }
  const fmt = (x) => (Math.abs(x) < 0.005 ? "0.00" : x.toFixed(2));

  /** `steps` codes from a to b inclusive, as `viz::walk::interpolate` computes them. */
  function interpolate(a, b, steps, slerp) {
    const na = Math.sqrt(dot(a, a));
    const nb = Math.sqrt(dot(b, b));
    const omega = Math.acos(Math.min(1, Math.max(-1, dot(a, b) / Math.max(na * nb, 1e-12))));
    const out = [];
    for (let i = 0; i < steps; i++) {
      if (i === 0) { out.push(a.slice()); continue; }
      if (i === steps - 1) { out.push(b.slice()); continue; }
      const t = i / (steps - 1);
      // Slerp degenerates to lerp for (nearly) parallel codes.
      const [wa, wb] = slerp && Math.abs(Math.sin(omega)) > 1e-6
        ? [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)]
        : [1 - t, t];
      out.push(a.map((x, j) => wa * x + wb * b[j]));
    }
    return out;
  }

  /** Round tick positions covering [lo, hi], about `count` of them. */
  function niceTicks(lo, hi, count = 5) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw);
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const ticks = [];
    for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
      ticks.push({ value: t, label: t.toFixed(digits) });
    }
    return { ticks, step };
  }

  /**
   * Give `canvas` width × height CSS pixels' worth of device pixels and return a cleared context
   * that draws in CSS pixels. The displayed size comes from the style sheet (height: auto keeps
   * the aspect ratio when a small screen shrinks it).
   */
  function setupCanvas(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    const [w, h] = [Math.round(width * ratio), Math.round(height * ratio)];
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return ctx;
  }

  const loadImage = (src) => new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("an image from the server could not be read"));
    img.src = src;
  });

  // ---------------------------------------------------------------- run selection

  function newSession(run) {
    return {
      run,
      space: null,
      label: 0,                 // the class decoded with, for conditional models
      caption: "",              // text models: the caption decoded with (empty: the class)
      attrs: "",                // attribute models: e.g. "Smiling,-Male" (empty: each at its average)
      code: null,               // the current (fixed) code
      codeImage: null,          // its decoded image, once known
      source: null,             // the test image it came from: {index, label, image, edited}
      grid: null,               // canvas of the decoded background
      pickOffset: 0,            // first test index of the strip (encoder models)
      seed: 0,                  // prior sheet of the strip (GANs)
      walk: { a: null, b: null, frames: null, frame: 0, dir: 1, timer: null },
      groups: { a: [], b: [], c: [] },
      collecting: null,         // the arithmetic group that clicked pictures go to
      metrics: { next: 0, records: [], timer: null },
      tickets: {},
      requestDecode: null,
    };
  }

  async function start() {
    wireControls();
    const { runs } = await api("api/runs");
    if (!runs.length) throw new Error("the server explores no runs");
    const select = $("run");
    select.replaceChildren(...runs.map((r) => el("option", { value: r.id }, r.id)));
    $("run-picker").hidden = runs.length < 2;
    const wanted = new URLSearchParams(location.hash.slice(1)).get("run");
    const run = runs.find((r) => r.id === wanted) || runs[0];
    select.value = run.id;
    select.addEventListener("change", () => {
      location.hash = `run=${encodeURIComponent(select.value)}`;
      selectRun(runs.find((r) => r.id === select.value));
    });
    selectRun(run);
  }

  function selectRun(run) {
    if (S) {
      clearTimeout(S.metrics.timer);
      stopPlaying(S);
    }
    const s = newSession(run);
    S = s;
    s.requestDecode = latestOnly((job) => decodeToView(s, job));
    document.body.dataset.ready = "0";
    $("error").hidden = true;
    resetPanels();
    showRunInfo(run);
    pollMetrics(s);
    if (run.error) {
      $("unavailable").textContent = `This run cannot be explored yet: ${run.error}. ` +
        "Its training curves are below; the page loads the model once a checkpoint appears.";
      document.body.dataset.ready = "1";
      return;
    }
    loadExplorer(s).catch(report);
  }

  function showRunInfo(run) {
    $("run-model").textContent = run.model ?? "–";
    $("run-dataset").textContent = run.dataset ?? "–";
    $("run-latent").textContent = run.latent_dim ?? "–";
    showProgress(run.status, run.step, run.epoch);
    for (const [id, href] of [["link-eval", run.eval], ["link-report", run.report]]) {
      $(id).hidden = !href;
      if (href) $(id).href = href;
    }
    const classes = run.classes || [];
    $("class-picker").hidden = !run.conditional;
    $("caption-picker").hidden = !run.text;
    $("caption").value = "";
    if (run.caption_example) $("caption").placeholder = run.caption_example;
    const attrs = run.attributes || [];
    $("attr-picker").hidden = attrs.length === 0;
    $("attrs").value = "";
    // A chip per attribute: a click cycles it through present, absent and unstated.
    $("attr-chips").replaceChildren(...attrs.map((name) =>
      el("button", { type: "button", "data-name": name, "data-state": "any", title: "present / absent / either" }, name)));
    $("class").replaceChildren(...classes.map((name, k) => el("option", { value: k }, name)));
    document.body.classList.toggle("unavailable", Boolean(run.error));
    $("unavailable").hidden = !run.error;
    $("picks-new").textContent = run.has_encoder ? "Next 16 test images" : "New samples";
  }

  function showProgress(status, step, epoch) {
    if (status !== undefined) $("run-status").textContent = status;
    if (step !== undefined) $("run-step").textContent = step;
    if (epoch !== undefined) $("run-epoch").textContent = epoch;
  }

  /** Empty every panel that shows something of the previous run. */
  function resetPanels() {
    for (const id of ["decoded", "source", "walk-a", "walk-b", "walk-frame", "latest-samples"]) {
      $(id).removeAttribute("src");
    }
    for (const id of ["walk-a", "walk-b", "walk-frame", "source-figure", "latest-figure", "warnings"]) {
      $(id).hidden = true;
    }
    for (const id of ["sliders", "picks", "legend", "arith-result", "warnings", "group-a", "group-b", "group-c"]) {
      $(id).replaceChildren();
    }
    for (const id of ["decoded-caption", "map-note", "map-pos"]) $(id).textContent = "";
    delete $("arith-result").dataset.done;
    $("walk-caption").textContent = "Choose both ends.";
    $("walk-t").disabled = $("walk-play").disabled = true;
    $("pick-a").checked = true;
    setCollecting(null);
    drawCurves(null);
    setupCanvas($("map"), MAP_SIZE, MAP_SIZE);
  }

  async function loadExplorer(s) {
    const space = await api(runPath(s, "space?n=2000"));
    if (s !== S) return;
    space.points = space.points || { u: [], v: [], label: [], index: [] };
    s.space = space;
    s.code = space.center.slice();
    $("map-note").textContent = space.note || "";
    $("show-grid").checked = space.points.u.length === 0;  // GANs have no dots: show the decodes
    buildLegend(s);
    buildSliders(s);
    buildArithOptions(s);
    updateSliders(s);
    drawMap(s);
    const [picks] = await Promise.all([loadPicks(s), $("show-grid").checked ? loadGrid(s) : null]);
    if (s !== S) return;
    // Start from a real picture (test image 0's code) rather than the blurry mean of all codes.
    if (s.run.has_encoder && picks && picks.length) {
      const p = picks[0];
      setCode(s, p.code, { index: p.index, label: p.label, image: p.image });
    }
    await showCurrentNow(s);
    if (s === S) document.body.dataset.ready = "1";
  }

  // ---------------------------------------------------------------- decoding

  /** Decode `codes` with the chosen class (conditional models). */
  function decodeCodes(s, codes) {
    const body = { codes, format: "json" };
    if (s.run.text && s.caption) body.caption = s.caption;
    else if (s.run.conditional) body.labels = s.label;
    else if (s.attrs) body.attrs = s.attrs;
    return api(runPath(s, "decode"), body);
  }

  /** Decode the current code now (not throttled) and show it. */
  async function showCurrentNow(s) {
    const code = s.code;
    const r = await decodeCodes(s, [code]);
    if (s !== S || s.code !== code) return;
    s.codeImage = r.images[0];
    showDecoded(r.images[0], "current", currentCaption(s));
  }

  /** One throttled job of #decoded: {code, preview, caption}. */
  async function decodeToView(s, job) {
    const r = await decodeCodes(s, [job.code]);
    if (s !== S) return;
    if (!job.preview && job.code === s.code) s.codeImage = r.images[0];
    showDecoded(r.images[0], job.preview ? "preview" : "current", job.caption || currentCaption(s));
  }

  function showDecoded(src, kind, caption) {
    const img = $("decoded");
    img.src = src;
    img.dataset.kind = kind;
    img.dataset.version = String(Number(img.dataset.version || 0) + 1);
    $("decoded-caption").textContent = caption;
  }

  const planeCode = (sp, u, v) => sp.center.map((c, j) =>
    c + u * sp.directions[0][j] + (sp.directions[1] ? v * sp.directions[1][j] : 0));

  /** The coefficient of `code` along direction i, measured from the center. */
  const coefficient = (sp, code, i) => dot(code.map((x, j) => x - sp.center[j]), sp.directions[i]);

  /** Where `code` projects onto the map plane (v = 0 for a 1-d latent). */
  const planeOf = (sp, code) => [coefficient(sp, code, 0), sp.directions[1] ? coefficient(sp, code, 1) : 0];

  function currentCaption(s) {
    const base = codeCaption(s);
    if (s.run.text && s.caption) return `${base}, drawn for “${s.caption}”`;
    return s.attrs ? `${base}, drawn with ${s.attrs}` : base;
  }

  function codeCaption(s) {
    const [u, v] = planeOf(s.space, s.code);
    const at = `(${fmt(u)}, ${s.space.directions[1] ? fmt(v) : "–"})`;
    if (!s.source) return `Current code at ${at}`;
    const what = `test image #${s.source.index}`;
    if (s.source.edited) return `${what}, moved with the sliders, at ${at}`;
    // A conditional model's code holds the style; drawn as another class it is a style transfer.
    if (s.run.conditional && s.source.label != null && s.source.label !== s.label) {
      return `The style of ${what} (class ${className(s, s.source.label)}) drawn as class ${className(s, s.label)}`;
    }
    return `Reconstruction of ${what} at ${at}`;
  }

  /** Make `code` the current code: sliders, marker and #decoded follow. */
  function setCode(s, code, source = null) {
    s.code = code;
    s.codeImage = null;
    s.source = source;
    $("source-figure").hidden = !source;
    if (source) {
      $("source").src = source.image;
      $("source-caption").textContent = `Test image #${source.index}` +
        (source.label != null ? ` (class ${className(s, source.label)})` : "");
    }
    updateSliders(s);
    drawMap(s);
    s.requestDecode({ code, preview: false });
    // A conditional model reconstructs a test image with its own class; pick another to transfer its style.
    if (s.run.conditional && source && source.label != null && source.label !== s.label) {
      $("class").value = String(source.label);
      $("class").dispatchEvent(new Event("change"));
    }
  }

  const className = (s, k) => (s.run.classes && s.run.classes[k] != null ? s.run.classes[k] : String(k));
  const axisName = (s, i) => (s.space.basis === "pca" ? `PC${i + 1}` : `z${i + 1}`);

  // ---------------------------------------------------------------- the map

  function mapExtent(sp) {
    const widen = ([lo, hi]) => (hi > lo ? [lo, hi] : [lo - 1, lo + 1]);
    return { u: widen(sp.extent.u), v: widen(sp.extent.v) };
  }

  function toPx(sp, u, v) {
    const e = mapExtent(sp);
    return [PLOT.x + ((u - e.u[0]) / (e.u[1] - e.u[0])) * PLOT.w,
      PLOT.y + ((e.v[1] - v) / (e.v[1] - e.v[0])) * PLOT.h];
  }

  function fromPx(sp, x, y) {
    const e = mapExtent(sp);
    return [e.u[0] + ((x - PLOT.x) / PLOT.w) * (e.u[1] - e.u[0]),
      e.v[1] - ((y - PLOT.y) / PLOT.h) * (e.v[1] - e.v[0])];
  }

  /** The pointer position in the map's CSS pixels (the canvas may be shrunk on small screens). */
  function mapPoint(event) {
    const r = $("map").getBoundingClientRect();
    return [((event.clientX - r.left) / r.width) * MAP_SIZE, ((event.clientY - r.top) / r.height) * MAP_SIZE];
  }

  const insidePlot = ([x, y]) =>
    x >= PLOT.x && x <= PLOT.x + PLOT.w && y >= PLOT.y && y <= PLOT.y + PLOT.h;

  function drawMap(s) {
    const sp = s.space;
    const ctx = setupCanvas($("map"), MAP_SIZE, MAP_SIZE);
    if (!sp) return;
    ctx.fillStyle = "#fbfbfc";
    ctx.fillRect(PLOT.x, PLOT.y, PLOT.w, PLOT.h);
    ctx.save();
    ctx.beginPath();
    ctx.rect(PLOT.x, PLOT.y, PLOT.w, PLOT.h);
    ctx.clip();
    if ($("show-grid").checked && s.grid) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(s.grid, PLOT.x, PLOT.y, PLOT.w, PLOT.h);
    }
    const p = sp.points;
    const outline = Boolean(s.grid) && $("show-grid").checked;
    ctx.lineWidth = 0.75;
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    for (let i = 0; i < p.u.length; i++) {
      const [x, y] = toPx(sp, p.u[i], p.v[i]);
      ctx.fillStyle = p.label[i] == null ? "#555" : PALETTE[p.label[i] % PALETTE.length];
      ctx.beginPath();
      ctx.arc(x, y, 2.2, 0, 2 * Math.PI);
      ctx.fill();
      if (outline) ctx.stroke();
    }
    for (const end of ["a", "b"]) {
      const w = s.walk[end];
      if (w) drawLetter(ctx, toPx(sp, ...planeOf(sp, w.code)), end.toUpperCase());
    }
    if (s.code) drawMarker(ctx, toPx(sp, ...planeOf(sp, s.code)));
    ctx.restore();
    drawAxes(ctx, sp, s);
  }

  function drawMarker(ctx, [x, y]) {
    for (const [color, width] of [["#fff", 4], ["#111", 2]]) {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, 2 * Math.PI);
      ctx.moveTo(x - 12, y); ctx.lineTo(x - 4, y);
      ctx.moveTo(x + 4, y); ctx.lineTo(x + 12, y);
      ctx.moveTo(x, y - 12); ctx.lineTo(x, y - 4);
      ctx.moveTo(x, y + 4); ctx.lineTo(x, y + 12);
      ctx.stroke();
    }
  }

  function drawLetter(ctx, [x, y], letter) {
    ctx.font = "bold 13px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#fff";
    ctx.strokeText(letter, x, y);
    ctx.fillStyle = "#b00020";
    ctx.fillText(letter, x, y);
  }

  function drawAxes(ctx, sp, s) {
    const e = mapExtent(sp);
    ctx.strokeStyle = "#888";
    ctx.lineWidth = 1;
    ctx.strokeRect(PLOT.x + 0.5, PLOT.y + 0.5, PLOT.w - 1, PLOT.h - 1);
    ctx.fillStyle = "#444";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(e.u[0], e.u[1]).ticks) {
      const [x] = toPx(sp, t.value, 0);
      ctx.fillRect(x, PLOT.y + PLOT.h, 1, 4);
      ctx.fillText(t.label, x, PLOT.y + PLOT.h + 6);
    }
    ctx.fillText(axisName(s, 0), PLOT.x + PLOT.w / 2, PLOT.y + PLOT.h + 20);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(e.v[0], e.v[1]).ticks) {
      const [, y] = toPx(sp, 0, t.value);
      ctx.fillRect(PLOT.x - 4, y, 4, 1);
      ctx.fillText(t.label, PLOT.x - 6, y);
    }
    ctx.save();
    ctx.translate(10, PLOT.y + PLOT.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(sp.directions[1] ? axisName(s, 1) : "(1-d latent)", 0, 0);
    ctx.restore();
  }

  function buildLegend(s) {
    const labels = [...new Set(s.space.points.label.filter((k) => k != null))].sort((a, b) => a - b);
    $("legend").replaceChildren(...labels.map((k) => el("li", {},
      el("span", { class: "swatch", style: `background:${PALETTE[k % PALETTE.length]}` }),
      className(s, k))));
  }

  /** Decode a GRID × GRID sheet of codes over the extent as the map's background. */
  async function loadGrid(s) {
    const fresh = ticket(s, "grid");
    const sp = s.space;
    const e = mapExtent(sp);
    const codes = [];
    for (let row = 0; row < GRID; row++) {
      for (let col = 0; col < GRID; col++) {
        const u = e.u[0] + ((col + 0.5) / GRID) * (e.u[1] - e.u[0]);
        const v = e.v[1] - ((row + 0.5) / GRID) * (e.v[1] - e.v[0]);
        codes.push(planeCode(sp, u, v));
      }
    }
    const r = await decodeCodes(s, codes);
    const images = await Promise.all(r.images.map(loadImage));
    if (!fresh()) return;
    const [h, w] = [images[0].height, images[0].width];
    const canvas = el("canvas", { width: GRID * w, height: GRID * h });
    const ctx = canvas.getContext("2d");
    images.forEach((img, i) => ctx.drawImage(img, (i % GRID) * w, Math.floor(i / GRID) * h));
    s.grid = canvas;
    drawMap(s);
  }

  function onMapMove(event) {
    const s = S;
    if (!s || !s.space) return;
    const pt = mapPoint(event);
    if (!insidePlot(pt)) return;
    const [u, v] = fromPx(s.space, ...pt);
    const at = `(${fmt(u)}, ${fmt(v)})`;
    $("map-pos").textContent = `${axisName(s, 0)}, ${s.space.directions[1] ? axisName(s, 1) : "–"} = ${at}`;
    s.requestDecode({ code: planeCode(s.space, u, v), preview: true, caption: `Preview at ${at}` });
  }

  /** Leaving the map shows the current code again. */
  function onMapLeave() {
    const s = S;
    if (!s || !s.code) return;
    $("map-pos").textContent = "\u00a0";
    if (s.codeImage) showDecoded(s.codeImage, "current", currentCaption(s));
    else s.requestDecode({ code: s.code, preview: false });
  }

  async function onMapClick(event) {
    const s = S;
    if (!s || !s.space) return;
    const pt = mapPoint(event);
    if (!insidePlot(pt)) return;
    const hit = nearestPoint(s, pt);
    if (hit < 0 || !s.run.has_encoder) {
      setCode(s, planeCode(s.space, ...fromPx(s.space, ...pt)));
      return;
    }
    const p = s.space.points;
    const r = await api(runPath(s, "encode"), { indices: [p.index[hit]] });
    if (s !== S) return;
    const label = r.labels ? r.labels[0] : p.label[hit];
    setCode(s, r.codes[0], { index: p.index[hit], label, image: r.images[0] });
  }

  /** The dot within HIT_PX of `pt`, nearest first; -1 when none. */
  function nearestPoint(s, [x, y]) {
    const p = s.space.points;
    let best = -1;
    let bestD = HIT_PX * HIT_PX;
    for (let i = 0; i < p.u.length; i++) {
      const [px, py] = toPx(s.space, p.u[i], p.v[i]);
      const d = (px - x) ** 2 + (py - y) ** 2;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }

  // ---------------------------------------------------------------- sliders

  function buildSliders(s) {
    const rows = s.space.directions.map((_, i) => {
      const spread = s.space.spread[i] > 0 ? s.space.spread[i] : 1;
      const id = `slider-${i}`;
      const input = el("input", {
        type: "range", id, class: "slider", "data-index": i,
        min: -3 * spread, max: 3 * spread, step: spread / 50, value: 0,
      });
      input.addEventListener("input", () => moveSlider(s, i, Number(input.value)));
      return el("div", { class: "slider-row" },
        el("label", { for: id }, axisName(s, i)), input, el("output", { for: id, id: `${id}-value` }));
    });
    $("sliders").replaceChildren(...rows);
  }

  /** z ← z + (c_new − c_old)·d_i: only the coefficient along direction i changes. */
  function moveSlider(s, i, value) {
    if (s !== S || !s.code) return;
    const d = s.space.directions[i];
    const delta = value - coefficient(s.space, s.code, i);
    const source = s.source && { ...s.source, edited: true };
    setCode(s, s.code.map((x, j) => x + delta * d[j]), source);
  }

  function updateSliders(s) {
    s.space.directions.forEach((_, i) => {
      const c = coefficient(s.space, s.code, i);
      $(`slider-${i}`).value = String(c);
      $(`slider-${i}-value`).textContent = fmt(c);
    });
  }

  // ---------------------------------------------------------------- picks and the walk

  /** The strip: test images with their codes (encoder models) or prior samples (GANs). */
  async function loadPicks(s) {
    const fresh = ticket(s, "picks");
    let picks;
    if (s.run.has_encoder) {
      const indices = Array.from({ length: PICKS }, (_, i) => s.pickOffset + i);
      const r = await api(runPath(s, "encode"), { indices });
      picks = r.codes.map((code, i) =>
        ({ code, image: r.images[i], label: r.labels ? r.labels[i] : null, index: indices[i] }));
    } else {
      const label = s.run.conditional ? `&label=${s.label}` : s.attrs ? `&attrs=${encodeURIComponent(s.attrs)}` : "";
      const r = await api(runPath(s, `samples?n=${PICKS}&seed=${s.seed}${label}`));
      picks = r.codes.map((code, i) =>
        ({ code, image: r.images[i], label: r.labels ? r.labels[i] : null, index: null }));
    }
    if (!fresh()) return;
    $("picks").replaceChildren(...picks.map((p, i) => {
      const name = p.index != null ? `test image #${p.index}` : `sample ${i + 1} (seed ${s.seed})`;
      const button = el("button", { type: "button", class: "pick", title: name, "aria-label": name },
        el("img", { class: "pix", src: p.image, alt: "" }));
      button.addEventListener("click", action(() => onPick(s, p)));
      return button;
    }));
    return picks;
  }

  async function onPick(s, p) {
    if (s !== S) return;
    if (s.collecting) {
      addToGroup(s, s.collecting, p.code, p.image);
      return;
    }
    const source = p.index != null ? { index: p.index, label: p.label, image: p.image } : null;
    setCode(s, p.code, source);
    await setEnd(s, $("pick-b").checked ? "b" : "a", p.code, p.image);
  }

  /** Set walk end `end` ("a" or "b"); without an image, decode the code for its thumbnail. */
  async function setEnd(s, end, code, image) {
    if (end === "a") $("pick-b").checked = true;
    s.walk[end] = { code, image };
    drawMap(s);
    await Promise.all([computeWalk(s), showEnd(s, end, code, image)]);
  }

  async function showEnd(s, end, code, image) {
    if (!image) image = (await decodeCodes(s, [code])).images[0];
    if (s !== S || s.walk[end].code !== code) return;
    s.walk[end].image = image;
    const img = $(`walk-${end}`);
    img.src = image;
    img.hidden = false;
  }

  /** Decode the FRAMES codes from A to B in one request. */
  async function computeWalk(s) {
    const { a, b } = s.walk;
    if (!a || !b) return;
    const fresh = ticket(s, "walk");
    $("walk-caption").textContent = "Decoding the walk…";
    const slerp = $("walk-mode").value === "slerp";
    const r = await decodeCodes(s, interpolate(a.code, b.code, FRAMES, slerp));
    if (!fresh()) return;
    s.walk.frames = r.images;
    $("walk-t").disabled = $("walk-play").disabled = false;
    $("walk-frame").hidden = false;
    showFrame(s, Math.min(s.walk.frame, FRAMES - 1));
  }

  function showFrame(s, i) {
    s.walk.frame = i;
    const img = $("walk-frame");
    img.src = s.walk.frames[i];
    img.dataset.frame = String(i);
    $("walk-t").value = String(i);
    $("walk-caption").textContent = `t = ${(i / (FRAMES - 1)).toFixed(2)} (frame ${i + 1} of ${FRAMES})`;
  }

  function togglePlay() {
    const s = S;
    if (!s || !s.walk.frames) return;
    if (s.walk.timer) {
      stopPlaying(s);
      return;
    }
    s.walk.timer = setInterval(() => {
      if (!s.walk.frames) return;
      let i = s.walk.frame + s.walk.dir;
      if (i < 0 || i >= FRAMES) {
        s.walk.dir = -s.walk.dir;
        i = s.walk.frame + s.walk.dir;
      }
      showFrame(s, i);
    }, 1000 / FPS);
    $("walk-play").textContent = "Pause";
    $("walk-play").setAttribute("aria-pressed", "true");
  }

  function stopPlaying(s) {
    clearInterval(s.walk.timer);
    s.walk.timer = null;
    $("walk-play").textContent = "Play";
    $("walk-play").setAttribute("aria-pressed", "false");
  }

  // ---------------------------------------------------------------- arithmetic

  function buildArithOptions(s) {
    const means = s.space.class_means;
    ["a", "b", "c"].forEach((g, n) => {
      const options = (means || []).map((_, k) => {
        const name = className(s, k);
        return el("option", { value: `class:${k}` }, name === String(k) ? `class ${k}` : `class ${k} — ${name}`);
      });
      options.push(el("option", { value: "picked" }, "picked pictures"));
      const select = $(`arith-${g}`);
      select.replaceChildren(...options);
      select.value = means && n < means.length ? `class:${n}` : "picked";
    });
  }

  function addToGroup(s, g, code, image) {
    s.groups[g].push({ code, image });
    $(`arith-${g}`).value = "picked";
    renderGroup(s, g);
  }

  function renderGroup(s, g) {
    const list = s.groups[g];
    const thumbs = list.filter((p) => p.image)
      .map((p) => el("img", { class: "pix thumb", src: p.image, alt: "" }));
    $(`group-${g}`).replaceChildren(
      el("span", { class: "small" }, `${list.length} picture${list.length === 1 ? "" : "s"}`), ...thumbs);
  }

  /** Clicked pictures go to group `g` (null: they set walk ends again). */
  function setCollecting(g) {
    if (S) S.collecting = g;
    for (const b of document.querySelectorAll("button.collect")) {
      b.setAttribute("aria-pressed", String(b.dataset.group === g));
    }
  }

  function groupMean(s, g) {
    const value = $(`arith-${g}`).value;
    if (value.startsWith("class:")) return s.space.class_means[Number(value.slice(6))];
    const list = s.groups[g];
    if (!list.length) {
      throw new Error(`Group ${g.toUpperCase()} has no pictures: add the current code or click pictures in the strip.`);
    }
    return mean(list.map((p) => p.code));
  }

  async function computeArith() {
    const s = S;
    if (!s || !s.space) return;
    const result = $("arith-result");
    delete result.dataset.done;
    const [a, b, c] = ["a", "b", "c"].map((g) => groupMean(s, g));
    const sum = a.map((x, j) => x - b[j] + c[j]);
    const fresh = ticket(s, "arith");
    const r = await decodeCodes(s, [a, b, c, sum]);
    if (!fresh()) return;
    result.replaceChildren(...["A", "B", "C", "A − B + C"].map((name, i) =>
      el("figure", {}, el("img", { class: "pix medium", src: r.images[i], alt: name }), el("figcaption", {}, name))));
    result.dataset.done = "1";
  }

  // ---------------------------------------------------------------- training metrics

  async function pollMetrics(s) {
    let delay = POLL_MS;
    try {
      const r = await api(runPath(s, `metrics?from=${s.metrics.next}`));
      if (s !== S) return;
      const m = s.metrics;
      if (r.reset) {
        m.records = [];
        $("warnings").replaceChildren();
        $("warnings").hidden = true;
      }
      m.next = r.next;
      m.records = m.records.concat(r.records);
      const last = r.records.filter((x) => x.step !== undefined).pop();
      showProgress(r.status, last ? last.step : undefined, last && last.epoch !== undefined ? last.epoch : undefined);
      addWarnings(r.records.filter((x) => x.kind === "warning"));
      const epochs = r.records.filter((x) => x.kind === "epoch");
      if (r.reset || r.records.length) drawCurves(s);
      if (epochs.length || !$("latest-samples").getAttribute("src")) {
        refreshSamples(s, epochs.length ? epochs[epochs.length - 1].epoch : null);
      }
      if (epochs.length && s.run.error) await retryRun(s);
      if (r.records.length) delay = 100;  // more may wait beyond this chunk
    } catch (e) {
      report(e);
    } finally {
      if (s === S) s.metrics.timer = setTimeout(() => pollMetrics(s), delay);
    }
  }

  function addWarnings(records) {
    if (!records.length) return;
    const list = $("warnings");
    list.append(...records.map((w) => el("li", {}, `step ${w.step ?? "?"}: ${w.message ?? JSON.stringify(w)}`)));
    list.hidden = false;
  }

  /** Show the run's newest sample grid; `epoch` (when known) also keys the browser's cache. */
  function refreshSamples(s, epoch) {
    const img = $("latest-samples");
    img.onload = () => { $("latest-figure").hidden = false; };
    img.onerror = () => { $("latest-figure").hidden = true; };  // 404 until the first epoch ends
    img.src = runPath(s, `latest-samples.png?t=${epoch ?? Date.now()}`);
    $("latest-caption").textContent = epoch != null ? `Samples after epoch ${epoch}` : "Latest samples";
  }

  /** A run without a checkpoint becomes explorable once training has written one. */
  async function retryRun(s) {
    const { runs } = await api("api/runs");
    const run = runs.find((r) => r.id === s.run.id);
    if (s === S && run && !run.error) selectRun(run);
  }

  const isAdversarial = (run) => /^(adversarial|gan)$/i.test(run.family || "");

  /** Series of `field` (a function of a record) over the records of `kind`, as [step, value]. */
  function series(records, kind, field) {
    return records
      .filter((r) => r.kind === kind && Number.isFinite(r.step))
      .map((r) => [r.step, field(r)])
      .filter(([, y]) => Number.isFinite(y));
  }

  function drawCurves(s) {
    const canvas = $("curves");
    const width = Math.max(320, canvas.clientWidth);
    const records = s ? s.metrics.records : [];
    const train = (name) => (r) => (r.train ? r.train[name] : undefined);
    let panels;
    if (s && isAdversarial(s.run)) {
      panels = [
        { title: "Losses", lines: [
          { name: "d_loss", color: PALETTE[0], points: series(records, "step", train("d_loss")) },
          { name: "g_loss", color: PALETTE[1], points: series(records, "step", train("g_loss")) }] },
        { title: "Discriminator outputs", hline: 0.5, lines: [
          { name: "D(x)", color: PALETTE[2], points: series(records, "step", train("d_real")) },
          { name: "D(G(z))", color: PALETTE[3], points: series(records, "step", train("d_fake")) }] },
      ];
    } else {
      panels = [{ title: "Loss", lines: [
        { name: "train loss", color: PALETTE[0], points: series(records, "step", train("loss")) },
        { name: "test loss", color: PALETTE[3], dots: true,
          points: series(records, "epoch", (r) => (r.test ? r.test.loss : undefined)) }] }];
    }
    const height = 230;
    const ctx = setupCanvas(canvas, width, height * panels.length);
    panels.forEach((p, i) => drawPanel(ctx, { x: 0, y: i * height, w: width, h: height }, p));
  }

  function drawPanel(ctx, box, panel) {
    const plot = { x: box.x + 56, y: box.y + 28, w: box.w - 70, h: box.h - 62 };
    const all = panel.lines.flatMap((l) => l.points);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#222";
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(panel.title, plot.x, box.y + 16);
    if (!all.length) {
      ctx.fillStyle = "#777";
      ctx.fillText("No metrics logged yet.", plot.x, plot.y + 20);
      return;
    }
    const [x0, x1] = span(all.map((p) => p[0]));
    const [ylo, yhi] = span(all.map((p) => p[1]).concat(panel.hline !== undefined ? [panel.hline] : []));
    const yStep = niceTicks(ylo, yhi).step;
    const [y0, y1] = [Math.floor(ylo / yStep) * yStep, Math.ceil(yhi / yStep) * yStep];
    const X = (v) => plot.x + ((v - x0) / (x1 - x0)) * plot.w;
    const Y = (v) => plot.y + plot.h - ((v - y0) / (y1 - y0)) * plot.h;

    ctx.strokeStyle = "#999";
    ctx.lineWidth = 1;
    ctx.strokeRect(plot.x + 0.5, plot.y + 0.5, plot.w, plot.h);
    ctx.fillStyle = "#555";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of niceTicks(x0, x1).ticks) {
      ctx.fillRect(X(t.value), plot.y + plot.h, 1, 4);
      ctx.fillText(t.label, X(t.value), plot.y + plot.h + 6);
    }
    ctx.fillText("step", plot.x + plot.w / 2, plot.y + plot.h + 20);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of niceTicks(y0, y1).ticks) {
      ctx.fillRect(plot.x - 4, Y(t.value), 4, 1);
      ctx.fillText(t.label, plot.x - 6, Y(t.value));
    }

    if (panel.hline !== undefined) {
      ctx.strokeStyle = "#666";
      ctx.setLineDash([5, 4]);
      ctx.beginPath();
      ctx.moveTo(plot.x, Y(panel.hline));
      ctx.lineTo(plot.x + plot.w, Y(panel.hline));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.lineWidth = 1.5;
    for (const line of panel.lines) {
      ctx.strokeStyle = ctx.fillStyle = line.color;
      ctx.beginPath();
      line.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
      ctx.stroke();
      if (line.dots) {
        for (const [x, y] of line.points) {
          ctx.beginPath();
          ctx.arc(X(x), Y(y), 3, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
    // Legend, right-aligned above the plot.
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    let lx = plot.x + plot.w;
    for (const line of [...panel.lines].reverse()) {
      lx -= ctx.measureText(line.name).width + 26;
      ctx.fillStyle = line.color;
      ctx.fillRect(lx, box.y + 10, 12, 3);
      ctx.fillStyle = "#222";
      ctx.fillText(line.name, lx + 16, box.y + 16);
    }
  }

  // ---------------------------------------------------------------- wiring

  function wireControls() {
    $("error-close").addEventListener("click", () => { $("error").hidden = true; });
    const map = $("map");
    map.addEventListener("pointermove", guard(onMapMove));
    map.addEventListener("pointerleave", guard(onMapLeave));
    map.addEventListener("click", action(onMapClick));

    $("show-grid").addEventListener("change", action(async () => {
      if (!S || !S.space) return;
      drawMap(S);
      if ($("show-grid").checked && !S.grid) await loadGrid(S);
    }));

    // A caption (text models) replaces the class until it is emptied; typing decodes when the
    // caption settles, and an unknown word shows the server's message naming it.
    let captionTimer = null;
    $("caption").addEventListener("input", () => {
      clearTimeout(captionTimer);
      captionTimer = setTimeout(action(async () => {
        const s = S;
        if (!s || !s.space) return;
        s.caption = $("caption").value.trim();
        s.grid = null;
        s.codeImage = null;
        s.requestDecode({ code: s.code, preview: false });
        if ($("show-grid").checked) await loadGrid(s);
      }), 300);
    });

    // Attributes (attribute-conditioned models): typed or toggled, they re-decode the same code
    // once the list settles; an unknown name shows the server's message naming it.
    let attrTimer = null;
    const chipsFromText = () => {
      const stated = new Map($("attrs").value.split(",").map((t) => t.trim()).filter(Boolean)
        .map((t) => (t.startsWith("-") ? [t.slice(1), "off"] : [t.replace(/^\+/, ""), "on"])));
      for (const b of $("attr-chips").children) b.dataset.state = stated.get(b.dataset.name) || "any";
    };
    $("attrs").addEventListener("input", () => {
      chipsFromText();
      clearTimeout(attrTimer);
      attrTimer = setTimeout(action(async () => {
        const s = S;
        if (!s || !s.space) return;
        s.attrs = $("attrs").value.trim();
        s.grid = null;
        s.codeImage = null;
        s.requestDecode({ code: s.code, preview: false });
        if ($("show-grid").checked) await loadGrid(s);
      }), 300);
    });
    $("attr-chips").addEventListener("click", (e) => {
      const b = e.target.closest("button");
      if (!b) return;
      b.dataset.state = { any: "on", on: "off", off: "any" }[b.dataset.state];
      $("attrs").value = [...$("attr-chips").children].filter((c) => c.dataset.state !== "any")
        .map((c) => (c.dataset.state === "off" ? "-" : "") + c.dataset.name).join(",");
      $("attrs").dispatchEvent(new Event("input"));
    });

    $("class").addEventListener("change", action(async () => {
      const s = S;
      if (!s || !s.space) return;
      s.label = Number($("class").value);
      s.grid = null;
      s.codeImage = null;
      delete $("arith-result").dataset.done;
      $("arith-result").replaceChildren();
      s.requestDecode({ code: s.code, preview: false });
      drawMap(s);
      await Promise.all([
        $("show-grid").checked ? loadGrid(s) : null,
        s.run.has_encoder ? null : loadPicks(s),
        computeWalk(s),
      ]);
    }));

    $("picks-new").addEventListener("click", action(async () => {
      if (!S || !S.space) return;
      if (S.run.has_encoder) S.pickOffset += PICKS;
      else S.seed += 1;
      await loadPicks(S);
    }));
    for (const end of ["a", "b"]) {
      $(`walk-set-${end}`).addEventListener("click", action(async () => {
        if (S && S.code) await setEnd(S, end, S.code.slice(), S.codeImage);
      }));
    }
    $("walk-mode").addEventListener("change", action(() => S && computeWalk(S)));
    $("walk-t").addEventListener("input", () => {
      if (S && S.walk.frames) showFrame(S, Number($("walk-t").value));
    });
    $("walk-play").addEventListener("click", togglePlay);

    for (const b of document.querySelectorAll("button.add-current")) {
      b.addEventListener("click", action(async () => {
        const s = S;
        if (!s || !s.code) return;
        const code = s.code.slice();
        const image = s.codeImage || (await decodeCodes(s, [code])).images[0];
        if (s === S) addToGroup(s, b.dataset.group, code, image);
      }));
    }
    for (const b of document.querySelectorAll("button.collect")) {
      b.addEventListener("click", () => setCollecting(S && S.collecting === b.dataset.group ? null : b.dataset.group));
    }
    for (const b of document.querySelectorAll("button.clear")) {
      b.addEventListener("click", () => {
        if (!S) return;
        S.groups[b.dataset.group] = [];
        renderGroup(S, b.dataset.group);
      });
    }
    $("arith-go").addEventListener("click", action(computeArith));
    // Redraw the curves when their displayed width changes (the window, or the sample grid
    // appearing beside them); a change of height alone is the redraw's own doing.
    let curvesWidth = 0;
    new ResizeObserver(([entry]) => {
      const width = Math.round(entry.contentRect.width);
      if (!S || width === curvesWidth) return;
      curvesWidth = width;
      requestAnimationFrame(() => S && drawCurves(S));
    }).observe($("curves"));
    window.addEventListener("unhandledrejection", (e) => report(e.reason));
  }

  document.addEventListener("DOMContentLoaded", () => start().catch(report));
})();
