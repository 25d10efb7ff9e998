// Draws the what-if comparison charts from the json_script block the result
// partial carries, whenever htmx swaps a finished result in (or on page load).
(function () {
  "use strict";
  // No "Share chart": plotly.js 4 offers by default to upload a chart, with its data, to Plotly Cloud.
  var config = { responsive: true, displaylogo: false, showSendToCloud: false };

  function draw(root) {
    var data = (root || document).querySelector("#whatif-figures");
    if (!data || !window.Plotly) { return; }
    var figures = JSON.parse(data.textContent);
    document.querySelectorAll("[data-whatif-figure]").forEach(function (div) {
      var fig = figures[div.getAttribute("data-whatif-figure")];
      if (fig) {
        window.Plotly.react(div, fig.data, fig.layout, config);
        div.setAttribute("data-rendered", "true");
      }
    });
  }

  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
})();
