// Sortable tables and self-checks, without any network: the page marks on <body> whether its
// script ran (data-js="ok") and whether every image decoded (data-images="ok N").
(function () {
  var body = document.body;
  window.addEventListener("error", function (e) { body.setAttribute("data-js", "error: " + e.message); });

  function key(cell) {
    var text = cell.getAttribute("data-sort");
    if (text === null) { text = cell.textContent; }
    var number = parseFloat(text);
    return { text: text, number: number, numeric: text !== "" && !isNaN(number) && isFinite(text) };
  }

  function sortTable(table, col, th) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var keys = rows.map(function (row) { return key(row.cells[col]); });
    var numeric = keys.every(function (k) { return k.numeric || k.text === ""; });
    var order = rows.map(function (row, i) { return i; });
    order.sort(function (a, b) {
      var x = keys[a], y = keys[b], c;
      if (numeric) {
        c = (x.text === "" ? -Infinity : x.number) - (y.text === "" ? -Infinity : y.number);
      } else {
        c = x.text.localeCompare(y.text);
      }
      return ascending ? c : -c;
    });
    order.forEach(function (i) { tbody.appendChild(rows[i]); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  try {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
        th.tabIndex = 0;
        th.title = "sort";
        th.addEventListener("click", function () { sortTable(table, col, th); });
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortTable(table, col, th); } });
      });
    });
    if (!body.hasAttribute("data-js")) { body.setAttribute("data-js", "ok"); }
  } catch (e) {
    body.setAttribute("data-js", "error: " + e);
  }

  // With #selftest in the address, sort the first numeric column (of the first table that has one) both ways
  // and say on <body> whether the order came out right (a browser test reads data-sort-check).
  function selfTest() {
    var tables = document.querySelectorAll("table.sortable");
    if (!tables.length) { body.setAttribute("data-sort-check", "no table"); return; }
    for (var t = 0; t < tables.length; t++) {
      var table = tables[t];
      var heads = table.tHead.rows[0].cells, rows = table.tBodies[0].rows;
      for (var col = 0; col < heads.length; col++) {
        if (rows.length > 1 && Array.prototype.every.call(rows, function (r) { return key(r.cells[col]).numeric; })) {
          var values = function () { return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return key(r.cells[col]).number; }); };
          heads[col].click();
          var up = values();
          heads[col].click();
          var down = values();
          var ok = up.every(function (v, i) { return i === 0 || up[i - 1] <= v; }) &&
                   down.every(function (v, i) { return i === 0 || down[i - 1] >= v; });
          body.setAttribute("data-sort-check", ok ? "ok" : "wrong order");
          return;
        }
      }
    }
    body.setAttribute("data-sort-check", "no numeric column");
  }
  if (window.location.hash === "#selftest") {
    try { selfTest(); } catch (e) { body.setAttribute("data-sort-check", "error: " + e); }
  }

  function checkImages() {
    var broken = [];
    Array.prototype.forEach.call(document.images, function (img) {
      if (!(img.complete && img.naturalWidth > 0)) { broken.push(img.alt || img.src.slice(0, 40)); }
    });
    body.setAttribute("data-images", broken.length ? "broken: " + broken.join(", ") : "ok " + document.images.length);
  }
  if (document.readyState === "complete") { checkImages(); } else { window.addEventListener("load", checkImages); }
})();
