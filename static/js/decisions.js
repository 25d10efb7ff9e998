// Decision timeline: clicking a decision marker (◆) on the replicas chart opens that
// decision's explanation in the side panel, as clicking a timeline row does (htmx).
(function () {
  "use strict";

  function panel() { return document.getElementById("decision-panel"); }

  function open(decisionId) {
    var target = panel();
    if (!target || !window.htmx || decisionId === undefined || decisionId === null) { return; }
    var url = target.getAttribute("data-decision-url").replace(/0\/$/, String(decisionId) + "/");
    window.htmx.ajax("GET", url, { target: "#decision-panel", swap: "innerHTML" });
  }

  function markSelected(decisionId) {
    document.querySelectorAll("tr[data-decision-id].selected").forEach(function (row) {
      row.classList.remove("selected");
    });
    var row = document.querySelector('tr[data-decision-id="' + decisionId + '"]');
    if (row) { row.classList.add("selected"); }
  }

  document.addEventListener("charts:rendered", function () {
    var chart = document.getElementById("chart-replicas");
    if (!chart || chart.getAttribute("data-decision-clicks") || typeof chart.on !== "function") { return; }
    chart.setAttribute("data-decision-clicks", "true");
    chart.on("plotly_click", function (evt) {
      var point = evt && evt.points && evt.points.find(function (p) { return p.customdata !== undefined; });
      if (point) { open(point.customdata); markSelected(point.customdata); }
    });
  });

  // Keep the chosen row highlighted, including after the timeline's periodic refresh.
  var selected = null;
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest("a.decision-link");
    if (link) {
      var row = link.closest("tr[data-decision-id]");
      selected = row && row.getAttribute("data-decision-id");
      markSelected(selected);
    }
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (selected && evt.detail && evt.detail.target && evt.detail.target.id === "decisions") {
      markSelected(selected);
    }
  });
})();
