"use strict";
// The page: upload a photo, show its depth with a colour map chosen here, the before/after
// comparison, the 3D view and the download links.

(() => {
  const $ = (id) => document.getElementById(id);
  const state = { info: null, luts: null, result: null, depth: null, width: 0, height: 0 };
  const viewer = new window.DepthViewer($("view"));
  let busy = false;
  let photoUrl = null;

  const megabytes = (bytes) => `${+(bytes / 2 ** 20).toPrecision(3)} MB`;
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

  function say(text, kind) {
    $("message").textContent = text;
    $("message").className = kind || "";
  }

  async function getJSON(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  async function start() {
    try {
      [state.info, state.luts] = await Promise.all([getJSON("/api/info"),
                                                    getJSON("/api/colormaps")]);
    } catch (error) {
      say(`Cannot reach the server (${error.message}).`, "error");
      return;
    }
    const info = state.info;
    $("model").textContent = `Model ${info.model}, working size ${info.input_size} px.`;
    $("limits").textContent = `JPEG, PNG or WebP, up to ${megabytes(info.max_bytes)} and ` +
      `${info.max_pixels / 1e6} megapixels.`;
    for (const name of info.colormaps) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name === "gray" ? "grey" : name;
      $("colormap").append(option);
    }
    for (const name of info.examples) {
      const button = document.createElement("button");
      button.type = "button";
      const thumb = document.createElement("img");
      thumb.src = `/api/examples/${name}`;
      thumb.alt = "";
      button.append(thumb, name);
      button.addEventListener("click", async () => {
        const response = await fetch(`/api/examples/${name}`);
        upload(new File([await response.blob()], `${name}.png`, { type: "image/png" }));
      });
      $("examples").append(button);
    }
    document.body.dataset.state = "ready";
  }

  function loadPhoto(file) {
    if (photoUrl) URL.revokeObjectURL(photoUrl);
    photoUrl = URL.createObjectURL(file);
    const image = new Image();
    image.src = photoUrl;
    return image.decode().then(() => image, () => null);
  }

  async function upload(file) {
    if (busy || !state.info) return;
    if (file.size === 0) return failed(`${file.name}: the file is empty (0 bytes).`);
    if (file.size > state.info.max_bytes) {
      return failed(`${file.name}: ${megabytes(file.size)} is over the limit of ` +
                    `${megabytes(state.info.max_bytes)}.`);
    }
    busy = true;
    document.body.dataset.state = "busy";
    say(`Predicting the depth of ${file.name} …`);
    const started = performance.now();
    try {
      const response = await fetch(`/api/predict?name=${encodeURIComponent(file.name)}`,
                                   { method: "POST", body: file });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
      const [depth, photo] = await Promise.all([fetch(answer.depth), loadPhoto(file)]);
      if (!depth.ok) throw new Error(`the depth map is gone (HTTP ${depth.status})`);
      state.width = +depth.headers.get("X-Depth-Width");
      state.height = +depth.headers.get("X-Depth-Height");
      state.depth = new Uint16Array(await depth.arrayBuffer());
      state.result = answer;
      $("result").hidden = false;
      const src = photo ? photo.src : "";
      $("photo").src = src;
      $("compare-photo").src = src;
      $("photo-caption").textContent = photo ? `photo: ${file.name}` :
        `${file.name}: this browser cannot show the photo itself`;
      drawDepth();
      await nextFrame();
      const seconds = (performance.now() - started) / 1000;
      window.mixdepthTiming = { uploadToDepth: seconds, prediction: answer.seconds };
      const [nh, nw] = answer.network;
      $("stats").textContent = `${answer.model} · photo ${answer.width}×${answer.height} · ` +
        `network input ${nw}×${nh} · prediction ${answer.seconds.toFixed(2)} s · ` +
        `upload to depth shown ${seconds.toFixed(2)} s`;
      say("");
      links();
      viewer.setData(state.depth, state.width, state.height, photo);
      document.body.dataset.state = "done";
    } catch (error) {
      failed(error.message);
    } finally {
      busy = false;
    }
  }

  function failed(message) {
    say(message, "error");
    document.body.dataset.state = "error";
  }

  function drawDepth() {
    const lut = state.luts[$("colormap").value];
    const { width, height, depth } = state;
    const canvas = $("depth");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    const image = context.createImageData(width, height);
    const data = image.data;
    for (let p = 0; p < width * height; p++) {
      const code = 3 * Math.round((depth[p] * 255) / 65535);
      data[4 * p] = lut[code];
      data[4 * p + 1] = lut[code + 1];
      data[4 * p + 2] = lut[code + 2];
      data[4 * p + 3] = 255;
    }
    context.putImageData(image, 0, 0);
    const compare = $("compare-depth");
    compare.width = width;
    compare.height = height;
    compare.getContext("2d").drawImage(canvas, 0, 0);
  }

  const LABELS = { png16: "16-bit PNG", pfm: "PFM (float32)", color: "colour PNG",
                   ply: "PLY point cloud" };
  const SUFFIXES = { png16: ".png", pfm: ".pfm", color: "_color.png", ply: ".ply" };

  function links() {
    const { result } = state;
    const list = $("downloads");
    list.replaceChildren();
    for (const [kind, url] of Object.entries(result.downloads)) {
      const name = result.name + SUFFIXES[kind];
      const link = document.createElement("a");
      link.id = `download-${kind}`;
      link.href = kind === "color" ? `${url}?colormap=${$("colormap").value}` : url;
      link.download = name;
      link.textContent = `${LABELS[kind]}: ${name}`;
      const item = document.createElement("li");
      item.append(link);
      list.append(item);
    }
  }

  // input: the drop zone, the file chooser
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", () => {
    if ($("file").files.length) upload($("file").files[0]);
    $("file").value = "";
  });

  // controls
  $("colormap").addEventListener("change", () => {
    if (!state.result) return;
    drawDepth();
    links();
  });
  const split = (percent) => {
    $("compare").style.setProperty("--split", `${percent}%`);
    $("compare-slider").value = percent;
  };
  $("compare-slider").addEventListener("input", () => split($("compare-slider").value));
  $("compare").addEventListener("pointermove", (event) => {
    if (!(event.buttons & 1)) return;
    const box = $("compare").getBoundingClientRect();
    split(Math.round(Math.max(0, Math.min(1, (event.clientX - box.left) / box.width)) * 100));
  });
  $("exaggeration").addEventListener("input", () => {
    const value = +$("exaggeration").value;
    $("exaggeration-value").textContent = `${value.toFixed(2)}×`;
    viewer.setExaggeration(value);
  });
  $("reset").addEventListener("click", () => viewer.reset());

  start();
})();
