/* Convolution-arithmetic explorer: plain JavaScript, shipped with the book, nothing fetched.
 *
 * Every <div class="conv-explorer"> becomes a small form (input size, kernel size, stride,
 * padding, dilation, transposed, output_padding) that shows the output size, the formula with
 * the numbers filled in (the same text as cnnlib.geometry's conv_output_formula and
 * conv_transpose_output_formula), a "does not fit" note where the lectures say so, and the
 * window stepping over the (padded) input. A transposed convolution is drawn as its equivalent
 * direct convolution (cnnlib.geometry.transposed_as_conv): zeros inserted between the inputs,
 * padded by d(k - 1) - p, stride 1. Start values come from the div's data-* attributes.
 */
(function () {
  "use strict";

  // name, label, minimum, maximum offered by the control
  var FIELDS = [
    ["n", "input size", 1, 16], ["k", "kernel size", 1, 7], ["s", "stride", 1, 4],
    ["p", "padding", 0, 6], ["d", "dilation", 1, 4], ["op", "output_padding", 0, 3]
  ];
  var MAX_CELLS = 40;  // larger grids are described, not drawn
  var SVG = "http://www.w3.org/2000/svg";
  var counter = 0;

  function effective(v) { return v.d * (v.k - 1) + 1; }

  function convFormula(v) {
    var f = v.d === 1 ? String(v.k) : "(" + v.d + "*(" + v.k + " - 1) + 1)";
    var p = v.p ? " + 2*" + v.p : "";
    return "(" + v.n + p + " - " + f + ")/" + v.s + " + 1";
  }

  function transposeFormula(v) {
    return "(" + v.n + " - 1)*" + v.s + " - 2*" + v.p + " + " + v.d + "*(" + v.k +
      " - 1) + " + v.op + " + 1";
  }

  function checkInts(v, transposed) {
    for (var i = 0; i < FIELDS.length; i++) {
      var name = FIELDS[i][0], min = FIELDS[i][2];
      if (name === "op" && !transposed) continue;
      if (!Number.isInteger(v[name]) || v[name] < min) {
        return FIELDS[i][1] + " must be an integer >= " + min + ", got " + v.raw[name];
      }
    }
    return null;
  }

  /* Output size, formula, a note, and the one-axis geometry to draw. */
  function compute(v, transposed) {
    var r = { size: null, formula: "", note: "", error: checkInts(v, transposed) };
    if (r.error) return r;
    var e = effective(v);
    if (!transposed) {
      var span = v.n + 2 * v.p - e;
      r.formula = convFormula(v);
      if (span < 0) {
        r.error = "kernel of size " + e + " is larger than the padded input of size " +
          (v.n + 2 * v.p) + ": it does not fit at all";
        return r;
      }
      r.size = Math.floor(span / v.s) + 1;
      var left = span % v.s;
      if (left) {
        r.note = "Stride " + v.s + " does not fit: " + r.formula + " = " +
          (span / v.s + 1).toFixed(2) + " is not an integer. The last " + left +
          " row(s) and column(s) of the padded input are never covered; PyTorch drops them " +
          "and rounds down.";
      }
      r.axis = { len: v.n, before: v.p, after: v.p, step: v.s, zerosEvery: 1 };
      return r;
    }
    r.formula = transposeFormula(v);
    if (v.op >= Math.max(v.s, v.d)) {
      r.error = "output_padding must be smaller than either stride or dilation, got " +
        "output_padding=" + v.op + ", stride=" + v.s + ", dilation=" + v.d;
      return r;
    }
    var size = (v.n - 1) * v.s - 2 * v.p + v.d * (v.k - 1) + v.op + 1;
    if (size < 1) {
      r.error = r.formula + " = " + size + " is not positive: padding " + v.p + " is too large";
      return r;
    }
    r.size = size;
    var before = v.d * (v.k - 1) - v.p;
    r.axis = { len: (v.n - 1) * v.s + 1, before: before, after: before + v.op, step: 1,
               zerosEvery: v.s };
    if (before < 0) r.note = "Padding " + v.p + " exceeds d(k - 1) = " + (before + v.p) +
      ": the equivalent direct convolution crops the stretched input.";
    return r;
  }

  function kind(axis, i) {
    if (i < 0 || i >= axis.len) return "pad";
    return i % axis.zerosEvery ? "zero" : "input";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svgGrid(cells, title) {
    var unit = 12;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + cells * unit + " " + cells * unit);
    svg.setAttribute("width", Math.min(cells * unit * 1.5, 320));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", title);
    svg.rects = [];
    for (var y = 0; y < cells; y++) {
      for (var x = 0; x < cells; x++) {
        var rect = document.createElementNS(SVG, "rect");
        rect.setAttribute("x", x * unit);
        rect.setAttribute("y", y * unit);
        rect.setAttribute("width", unit);
        rect.setAttribute("height", unit);
        svg.appendChild(rect);
        svg.rects.push(rect);
      }
    }
    return svg;
  }

  function Explorer(root) {
    this.root = root;
    this.step = 0;
    this.timer = null;
    var id = "ce" + (++counter);
    var form = el("form", { "class": "ce-controls", "aria-label": "convolution settings" });
    this.inputs = {};
    var self = this;
    FIELDS.forEach(function (f) {
      var box = el("label", { "class": "ce-field ce-" + f[0] });
      box.appendChild(document.createTextNode(f[1] + " "));
      var input = el("input", { type: "number", min: f[2], max: f[3], step: 1, name: f[0],
                                id: id + "-" + f[0], value: root.dataset[f[0]] || f[2] });
      box.appendChild(input);
      form.appendChild(box);
      self.inputs[f[0]] = input;
    });
    var tbox = el("label", { "class": "ce-field ce-transposed" });
    this.transposed = el("input", { type: "checkbox", name: "transposed" });
    this.transposed.checked = root.dataset.transposed === "true";
    tbox.appendChild(this.transposed);
    tbox.appendChild(document.createTextNode(" transposed"));
    form.appendChild(tbox);
    form.addEventListener("input", function () { self.step = 0; self.update(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    root.appendChild(form);

    var result = el("p", { "class": "ce-result" });
    result.appendChild(document.createTextNode("Output size: "));
    this.size = el("strong", { "class": "ce-size" });
    result.appendChild(this.size);
    this.joiner = document.createTextNode(" = ");
    result.appendChild(this.joiner);
    this.formula = el("code", { "class": "ce-formula" });
    result.appendChild(this.formula);
    root.appendChild(result);
    this.note = el("p", { "class": "ce-note", role: "status", "aria-live": "polite" });
    root.appendChild(this.note);

    var buttons = el("div", { "class": "ce-buttons" });
    this.prev = el("button", { type: "button", "class": "ce-prev" }, "previous window");
    this.play = el("button", { type: "button", "class": "ce-play" }, "play");
    this.next = el("button", { type: "button", "class": "ce-next" }, "next window");
    [this.prev, this.play, this.next].forEach(function (b) { buttons.appendChild(b); });
    this.prev.addEventListener("click", function () { self.move(-1); });
    this.next.addEventListener("click", function () { self.move(1); });
    this.play.addEventListener("click", function () { self.toggle(); });
    root.appendChild(buttons);
    this.where = el("p", { "class": "ce-where" });
    root.appendChild(this.where);
    this.pictures = el("div", { "class": "ce-pictures" });
    root.appendChild(this.pictures);
    this.update();
  }

  Explorer.prototype.values = function () {
    var v = { raw: {} };
    for (var name in this.inputs) {
      var text = this.inputs[name].value.trim();
      v.raw[name] = JSON.stringify(text);
      v[name] = /^-?\d+$/.test(text) ? parseInt(text, 10) : NaN;
    }
    return v;
  };

  Explorer.prototype.update = function () {
    var transposed = this.transposed.checked;
    this.inputs.op.disabled = !transposed;
    this.root.classList.toggle("ce-is-transposed", transposed);
    var v = this.values();
    var r = compute(v, transposed);
    this.result = r;
    this.size.textContent = r.size === null ? "none" : r.size + " x " + r.size;
    this.root.dataset.outputSize = r.size === null ? "" : String(r.size);
    this.formula.textContent = r.formula || "?";
    // A stride that does not fit: the size is the formula's whole part, not the formula.
    this.joiner.textContent = !transposed && r.note && r.size !== null ? ", the whole part of " : " = ";
    this.note.textContent = r.error ? "Not allowed: " + r.error + "." : r.note;
    this.note.className = "ce-note" + (r.error ? " ce-error" : r.note ? " ce-warning" : "");
    this.draw(v);
  };

  Explorer.prototype.draw = function (v) {
    var r = this.result;
    this.pictures.textContent = "";
    this.where.textContent = "";
    var running = r.size !== null;
    [this.prev, this.play, this.next].forEach(function (b) { b.disabled = !running; });
    if (!running) { this.stop(); return; }
    var a = r.axis, cells = a.before + a.len + a.after;
    if (cells > MAX_CELLS || r.size > MAX_CELLS) {
      this.where.textContent = "(Too large to draw: " + cells + " cells a side.)";
      return;
    }
    var label = (v.n + "x" + v.n + " input") + (a.before || a.after ?
      " with " + Math.abs(a.before) + " and " + Math.abs(a.after) +
      (a.before < 0 ? " cells cropped" : " zeros padded") + " before and after" : "") +
      (a.zerosEvery > 1 ? ", " + (a.zerosEvery - 1) + " zeros inserted between inputs" : "");
    this.inGrid = svgGrid(cells, label);
    this.outGrid = svgGrid(r.size, r.size + "x" + r.size + " output");
    var wrap = function (svg, caption) {
      var fig = el("figure", { "class": "ce-grid" });
      fig.appendChild(svg);
      fig.appendChild(el("figcaption", {}, caption));
      return fig;
    };
    var what = this.transposed.checked ?
      "stretched and padded input (the equivalent direct convolution)" :
      (v.p ? "input " + v.n + "x" + v.n + " padded with zeros" : "input " + v.n + "x" + v.n);
    this.pictures.appendChild(wrap(this.inGrid, what));
    this.pictures.appendChild(wrap(this.outGrid, "output " + r.size + "x" + r.size));
    this.v = v;
    this.paint();
  };

  Explorer.prototype.paint = function () {
    var r = this.result, a = r.axis, v = this.v, out = r.size;
    var cells = a.before + a.len + a.after;
    var oy = Math.floor(this.step / out), ox = this.step % out;
    var taps = {};
    for (var i = 0; i < v.k; i++) {
      for (var j = 0; j < v.k; j++) {
        taps[(oy * a.step + i * v.d) + "," + (ox * a.step + j * v.d)] = true;
      }
    }
    for (var y = 0; y < cells; y++) {
      for (var x = 0; x < cells; x++) {
        var ky = kind(a, y - a.before), kx = kind(a, x - a.before);
        var type = ky === "pad" || kx === "pad" ? "pad" :
          ky === "zero" || kx === "zero" ? "zero" : "input";
        var cls = "ce-cell ce-" + type + (taps[y + "," + x] ? " ce-tap" : "");
        this.inGrid.rects[y * cells + x].setAttribute("class", cls);
      }
    }
    for (var c = 0; c < out * out; c++) {
      this.outGrid.rects[c].setAttribute("class", "ce-cell ce-out" +
        (c === this.step ? " ce-tap" : c < this.step ? " ce-done" : ""));
    }
    this.where.textContent = "Window " + (this.step + 1) + " of " + out * out +
      ": output row " + oy + ", column " + ox + " (counted from 0, as in the text).";
  };

  Explorer.prototype.move = function (delta) {
    var total = this.result.size * this.result.size;
    this.step = (this.step + delta + total) % total;
    this.paint();
  };

  Explorer.prototype.toggle = function () {
    if (this.timer) { this.stop(); return; }
    var self = this;
    this.play.textContent = "pause";
    this.timer = window.setInterval(function () { self.move(1); }, 600);
  };

  Explorer.prototype.stop = function () {
    if (this.timer) window.clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "play";
  };

  function start() {
    var roots = document.querySelectorAll("div.conv-explorer");
    for (var i = 0; i < roots.length; i++) {
      if (!roots[i].explorer) roots[i].explorer = new Explorer(roots[i]);
    }
  }

  window.convExplorer = { compute: compute, start: start };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
