// Sortable tables: click (or Enter on) a column header to sort by it, again to reverse. A cell
// sorts by its data-v number if it has one, a numeric (class "num") cell by the number its text
// starts with ("80.42 ± 0.17" by 80.42); numeric cells without a number ("n/a") go last; the
// others sort by text. A link ending in #sort=<table id>:<column index>[:desc] opens the page
// sorted so.
(function () {
  "use strict";
  var lead = /^\s*([+-]?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)/i;
  function num(td) {
    if (!td) { return null; }
    var v = td.getAttribute("data-v");
    if (v !== null) { return v === "" ? null : parseFloat(v); }
    if (!td.classList.contains("num")) { return null; }
    var m = lead.exec(td.textContent);
    return m ? parseFloat(m[1]) : null;
  }
  function sortTable(table, col, desc) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ca = a.cells[col], cb = b.cells[col];
      var x = num(ca), y = num(cb);
      if (x !== null || y !== null) {
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        return desc ? y - x : x - y;
      }
      var r = (ca ? ca.textContent : "").localeCompare(cb ? cb.textContent : "", undefined, { numeric: true });
      return desc ? -r : r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) {
      if (i === col) { heads[i].setAttribute("aria-sort", desc ? "descending" : "ascending"); }
      else { heads[i].removeAttribute("aria-sort"); }
    }
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    if (!table.tHead) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      var go = function () { sortTable(table, col, th.getAttribute("aria-sort") === "ascending"); };
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
      });
    });
  });
  var m = /^#sort=([A-Za-z0-9_-]+):([0-9]+)(:desc)?$/.exec(window.location.hash);
  if (m) {
    var t = document.getElementById(m[1]);
    if (t && t.classList.contains("sortable")) { sortTable(t, parseInt(m[2], 10), !!m[3]); }
  }
  document.body.setAttribute("data-ready", String(tables.length));
})();
