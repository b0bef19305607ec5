// Report page: while an export is being prepared, refresh "Your exports" every few
// seconds (the table alone, from data-src) until none is waiting or running.
(function () {
  "use strict";
  function refresh() {
    var box = document.getElementById("export-jobs");
    if (!box || box.dataset.open !== "1") return;
    fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#export-jobs");
        if (fresh) box.replaceWith(fresh);
      })
      .catch(function () { /* the next round tries again */ })
      .finally(function () { window.setTimeout(refresh, 3000); });
  }
  window.setTimeout(refresh, 3000);
})();
