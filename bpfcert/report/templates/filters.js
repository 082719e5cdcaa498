// Filters of report.html: status, profile, target, from the form or the URL fragment (#status=fail&target=6.1).
// Without this script the form stays hidden and every row shows.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var names = ["status", "profile", "target"];
  function chosen() {
    var params = new URLSearchParams(location.hash.slice(1)), out = {};
    names.forEach(function (n) { out[n] = params.get(n) || ""; });
    return out;
  }
  function has(list, value) { return (list || "").split(" ").indexOf(value) >= 0; }
  function apply() {
    var f = chosen(), shown = 0, total = 0;
    names.forEach(function (n) { form.elements[n].value = f[n]; });
    document.querySelectorAll("[data-col]").forEach(function (cell) {
      cell.hidden = f.target !== "" && cell.dataset.col !== f.target;
    });
    document.querySelectorAll("tr.req").forEach(function (row) {
      var cells = Array.prototype.filter.call(row.querySelectorAll("td[data-col]"), function (c) { return !c.hidden; });
      var status = f.status === "" || cells.some(function (c) { return has(c.dataset.statuses, f.status); });
      row.hidden = !status || (f.profile !== "" && !has(row.dataset.profiles, f.profile));
      total += 1;
      shown += row.hidden ? 0 : 1;
    });
    document.querySelectorAll(".row-detail").forEach(function (d) {
      d.hidden = (f.status !== "" && d.dataset.status !== f.status) || (f.target !== "" && d.dataset.target !== f.target)
        || (f.profile !== "" && !has(d.dataset.profiles, f.profile));
    });
    document.querySelectorAll("[data-profile]").forEach(function (row) {
      row.hidden = f.profile !== "" && row.dataset.profile !== f.profile;
    });
    document.querySelectorAll("[data-target-row]").forEach(function (row) {
      row.hidden = f.target !== "" && row.dataset.targetRow !== f.target;
    });
    document.getElementById("shown").textContent = shown + " of " + total + " requirement rows shown";
  }
  form.addEventListener("change", function () {
    var params = new URLSearchParams();
    names.forEach(function (n) { if (form.elements[n].value) { params.set(n, form.elements[n].value); } });
    history.replaceState(null, "", "#" + params.toString());
    apply();
  });
  window.addEventListener("hashchange", apply);
  form.hidden = false;
  apply();
})();
