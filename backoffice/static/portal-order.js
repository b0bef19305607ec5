/* carebox portal: the order form's price estimate as you type (the server's price is final). */
(function () {
  "use strict";
  var form = document.querySelector(".js-order-form");
  if (!form) return;
  var select = form.querySelector("select[name=service]");
  var weight = form.querySelector("input[name=weight]");
  var out = form.querySelector(".js-estimate");
  if (!select || !weight || !out) return;
  var money = new Intl.NumberFormat(document.documentElement.lang === "en" ? "en-ID" : "id-ID", {
    style: "currency", currency: "IDR", maximumFractionDigits: 0,
  });

  function update() {
    var opt = select.options[select.selectedIndex];
    var kg = parseFloat((weight.value || "").replace(",", "."));
    if (!opt || !opt.value || !(kg > 0)) { out.hidden = true; return; }
    var min = parseFloat(opt.dataset.min), max = parseFloat(opt.dataset.max);
    if (kg < min || kg > max) { out.hidden = true; return; }
    var price = parseFloat(opt.dataset.base) + parseFloat(opt.dataset.perKg) * Math.max(1, Math.ceil(kg));
    out.textContent = out.dataset.label + " " + money.format(price);
    out.hidden = false;
  }
  select.addEventListener("change", update);
  weight.addEventListener("input", update);
  update();
})();
