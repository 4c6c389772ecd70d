// fivelayer web app: draw the charts of a result and show that a run is in progress. No other logic.
(function () {
  "use strict";
  var data = document.getElementById("figures");
  if (data && window.Plotly) {
    var figures = JSON.parse(data.textContent);
    Object.keys(figures).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) { return; }
      window.Plotly.newPlot(el, figures[id].data, figures[id].layout, {responsive: true, displaylogo: false})
        .then(function () { el.setAttribute("data-rendered", "true"); });
    });
  }
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var button = event.submitter;
      if (button && (button.value === "run" || button.id === "run")) {
        form.classList.add("running");
        button.textContent = "Running…";
      }
    });
  });
})();
