// A small line chart on a canvas: one or two series over time, scaled to fit.

export class LineChart {
  constructor(canvas, series) {
    this.canvas = canvas;
    this.series = series; // [{label, color, format}]
    this.points = []; // [t, v0, v1...]
    this.limit = 300;
  }

  add(t, ...values) {
    this.points.push([t, ...values]);
    if (this.points.length > this.limit) this.points.shift();
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 600;
    const height = canvas.clientHeight || 180;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    g.font = "12px system-ui, sans-serif";
    const pad = { left: 8, right: 8, top: 18, bottom: 8 };
    const points = this.points;
    this.series.forEach((serie, index) => {
      const values = points.map((p) => p[index + 1]);
      const top = Math.max(1, ...values);
      g.strokeStyle = serie.color;
      g.fillStyle = serie.color;
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((point, i) => {
        const x = pad.left + (i / Math.max(1, this.limit - 1)) * (width - pad.left - pad.right);
        const y = height - pad.bottom - (point[index + 1] / top) * (height - pad.top - pad.bottom);
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
      const last = values.length ? values[values.length - 1] : 0;
      g.fillText(`${serie.label}: ${serie.format(last)} (max ${serie.format(top)})`, pad.left + index * 220, 12);
    });
  }
}
