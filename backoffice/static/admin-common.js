/* carebox back office: behaviour that Flask-Admin's templates put in inline
   handlers, which the Content-Security-Policy blocks. No inline script anywhere. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-admin-action]");
    if (!link) { return; }
    event.preventDefault();
    if (window.modelActions) {
      window.modelActions.execute(link.getAttribute("data-admin-action"));
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  /* Links that only open a dropdown or add a filter: never navigate. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[href='#']");
    if (link) { event.preventDefault(); }
  });

  /* Flask-Admin's menu gives its dropdown toggles href="javascript:void(0)" and stops
     their clicks from bubbling, so the browser then tries the javascript: URL, which
     the CSP refuses (an error on every click). Cancel it on the way down instead. */
  document.addEventListener("click", function (event) {
    if (event.target.closest("a[href^='javascript:']")) { event.preventDefault(); }
  }, true);
})();
