"use strict";
// A small point-cloud renderer on a 2D canvas: the photo's pixels on a grid, each lifted by
// its relative depth, projected in perspective and drawn as squares with a depth buffer.

const GRID_SIDE = 240; // points on the longer side of the photo
const BACKGROUND = [17, 19, 24];

class DepthViewer {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.exaggeration = 1;
    this.points = null;
    this.pending = false;
    this.reset();
    this.clear();
    let last = null;
    canvas.addEventListener("pointerdown", (event) => {
      last = [event.clientX, event.clientY];
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      this.yaw += (event.clientX - last[0]) * 0.01;
      this.pitch = Math.max(-1.5, Math.min(1.5, this.pitch + (event.clientY - last[1]) * 0.01));
      last = [event.clientX, event.clientY];
      this.request();
    });
    const release = () => { last = null; };
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoom = Math.max(0.3, Math.min(8, this.zoom * Math.exp(-event.deltaY * 0.001)));
      this.request();
    }, { passive: false });
    canvas.addEventListener("dblclick", () => this.reset());
  }

  reset() {
    this.yaw = -0.45;
    this.pitch = 0.3;
    this.zoom = 1;
    this.request();
  }

  setExaggeration(value) {
    this.exaggeration = value;
    this.request();
  }

  // depth: Uint16Array (dw * dh), near = high; photo: an image or canvas, or null
  setData(depth, dw, dh, photo) {
    const scale = GRID_SIDE / Math.max(dw, dh);
    const gw = Math.max(2, Math.round(dw * scale));
    const gh = Math.max(2, Math.round(dh * scale));
    let colours = null;
    if (photo) {
      const small = document.createElement("canvas");
      small.width = gw;
      small.height = gh;
      const context = small.getContext("2d", { willReadFrequently: true });
      context.drawImage(photo, 0, 0, gw, gh);
      colours = context.getImageData(0, 0, gw, gh).data;
    }
    const n = gw * gh;
    const span = 2 / Math.max(gw, gh); // the longer side spans 2 units
    const xyz = new Float32Array(3 * n);
    const rgb = new Uint8Array(3 * n);
    for (let j = 0; j < gh; j++) {
      const row = Math.min(dh - 1, Math.floor(((j + 0.5) * dh) / gh));
      for (let i = 0; i < gw; i++) {
        const k = j * gw + i;
        const column = Math.min(dw - 1, Math.floor(((i + 0.5) * dw) / gw));
        const value = depth[row * dw + column] / 65535;
        xyz[3 * k] = (i + 0.5 - gw / 2) * span;
        xyz[3 * k + 1] = (gh / 2 - j - 0.5) * span;
        xyz[3 * k + 2] = value - 0.5;
        for (let c = 0; c < 3; c++) {
          rgb[3 * k + c] = colours ? colours[4 * k + c] : 40 + 215 * value;
        }
      }
    }
    this.points = { n, xyz, rgb, span };
    this.render();
  }

  request() {
    if (this.pending || !this.points) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  clear() {
    const { width, height } = this.canvas;
    this.image = this.context.createImageData(width, height);
    this.nearest = new Float32Array(width * height);
    const data = this.image.data;
    for (let p = 0; p < width * height; p++) {
      data[4 * p] = BACKGROUND[0];
      data[4 * p + 1] = BACKGROUND[1];
      data[4 * p + 2] = BACKGROUND[2];
      data[4 * p + 3] = 255;
    }
    this.nearest.fill(0);
    this.context.putImageData(this.image, 0, 0);
  }

  render() {
    this.clear();
    if (!this.points) return;
    const { width, height } = this.canvas;
    const { n, xyz, rgb, span } = this.points;
    const data = this.image.data;
    const nearest = this.nearest;
    const cy = Math.cos(this.yaw), sy = Math.sin(this.yaw);
    const cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    const distance = 3.2 / this.zoom;
    const focal = 1.25 * Math.min(width, height);
    const lift = 0.6 * this.exaggeration;
    for (let k = 0; k < n; k++) {
      const x = xyz[3 * k], y = xyz[3 * k + 1], z = xyz[3 * k + 2] * lift;
      const x1 = cy * x + sy * z;
      const z1 = -sy * x + cy * z;
      const y2 = cp * y - sp * z1;
      const z2 = sp * y + cp * z1;
      const d = distance - z2; // the camera looks down -z from +distance
      if (d < 0.05) continue;
      const inverse = 1 / d;
      const size = Math.min(8, Math.max(1, Math.ceil(1.3 * focal * span * inverse)));
      const left = Math.round(width / 2 + focal * x1 * inverse - size / 2);
      const top = Math.round(height / 2 - focal * y2 * inverse - size / 2);
      for (let v = Math.max(0, top); v < Math.min(height, top + size); v++) {
        for (let u = Math.max(0, left); u < Math.min(width, left + size); u++) {
          const p = v * width + u;
          if (inverse <= nearest[p]) continue;
          nearest[p] = inverse;
          data[4 * p] = rgb[3 * k];
          data[4 * p + 1] = rgb[3 * k + 1];
          data[4 * p + 2] = rgb[3 * k + 2];
        }
      }
    }
    this.context.putImageData(this.image, 0, 0);
  }
}

window.DepthViewer = DepthViewer;
