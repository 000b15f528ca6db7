// The queue's counts: loaded after the page is shown (each is a capped count query; the list does not wait on them).
(function () {
  "use strict";
  var total = document.getElementById("queue-total");
  if (!total) return;
  fetch(total.getAttribute("data-counts"), { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error(response.status);
      return response.json();
    })
    .then(function (counts) {
      total.textContent = counts.current;
      document.querySelectorAll("[data-count-of]").forEach(function (span) {
        var count = counts.views[span.getAttribute("data-count-of")];
        if (count !== undefined) span.textContent = count;
      });
    })
    .catch(function () {
      total.textContent = "?";
    });
})();
