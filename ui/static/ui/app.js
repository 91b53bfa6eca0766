// The pages' own behaviour, small on purpose: the light/dark toggle that remembers, toasts
// arriving through htmx (ui/_job_toasts.html), copy buttons, arrow keys in tables, and
// filters that apply themselves. Everything else is Bootstrap's or htmx's.
(function () {
  "use strict";
  const root = document.documentElement;

  // Light and dark: Bootstrap's data-bs-theme on <html>, remembered in localStorage (the
  // <head> of ui/base.html applies it before the first paint).
  const toggle = document.querySelector("[data-theme-toggle]");
  function showTheme() {
    if (!toggle) return;
    const dark = root.getAttribute("data-bs-theme") === "dark";
    toggle.setAttribute("aria-pressed", dark ? "true" : "false");
    toggle.setAttribute("aria-label", dark ? toggle.dataset.labelLight : toggle.dataset.labelDark);
    toggle.title = toggle.getAttribute("aria-label");
    toggle.querySelector("i").className = dark ? "bi bi-sun" : "bi bi-moon-stars";
  }
  if (toggle) {
    toggle.addEventListener("click", () => {
      const next = root.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
      root.setAttribute("data-bs-theme", next);
      try { localStorage.setItem("ui-theme", next); } catch (e) { /* private mode: this page only */ }
      showTheme();
      document.dispatchEvent(new CustomEvent("ui:theme", { detail: next }));
    });
    showTheme();
  }

  // Toasts: shown as they arrive (htmx calls onLoad for swapped-in content).
  function showToasts(element) {
    const toasts = element.matches && element.matches("[data-toast]") ? [element] : element.querySelectorAll ? element.querySelectorAll("[data-toast]") : [];
    toasts.forEach((toast) => {
      window.bootstrap.Toast.getOrCreateInstance(toast).show();
      toast.addEventListener("hidden.bs.toast", () => toast.remove());
    });
  }
  if (window.htmx) window.htmx.onLoad(showToasts);

  // Copy buttons: data-copy="text", or data-copy-from="#element".
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy], [data-copy-from]");
    if (!button) return;
    const text = button.dataset.copy ?? document.querySelector(button.dataset.copyFrom).textContent;
    const label = button.querySelector("[data-copy-label]") || button;
    const before = label.textContent;
    try { await navigator.clipboard.writeText(text); label.textContent = button.dataset.copied || "✓"; }
    catch (e) { label.textContent = button.dataset.copyFailed || "×"; }
    setTimeout(() => { label.textContent = before; }, 1500);
  });

  // Tables with data-keynav: one tab stop for the table, then up/down (j/k), Home/End move
  // between rows and Enter opens the row's link (its first, or the one marked data-row-link).
  document.querySelectorAll("table[data-keynav]").forEach((table) => {
    const rows = Array.from(table.querySelectorAll("tbody tr")).filter((row) => row.querySelector("a"));
    if (!rows.length) return;
    rows.forEach((row, i) => { row.tabIndex = i === 0 ? 0 : -1; row.dataset.keynavRow = ""; });
    const move = (from, to) => {
      to = Math.max(0, Math.min(rows.length - 1, to));
      rows[from].tabIndex = -1; rows[to].tabIndex = 0; rows[to].focus();
    };
    table.addEventListener("keydown", (event) => {
      const i = rows.indexOf(event.target);
      if (i < 0) return;
      const keys = { ArrowDown: i + 1, j: i + 1, ArrowUp: i - 1, k: i - 1, Home: 0, End: rows.length - 1 };
      if (event.key in keys) { event.preventDefault(); move(i, keys[event.key]); }
      else if (event.key === "Enter") {
        const link = rows[i].querySelector("a[data-row-link]") || rows[i].querySelector("a");
        if (link) { event.preventDefault(); link.click(); }
      }
    });
  });

  // Filter forms (data-autosubmit): apply a moment after the last keystroke or at once on a choice.
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    let timer = null;
    form.querySelectorAll("input[type=search]").forEach((input) => input.addEventListener("input", () => {
      clearTimeout(timer); timer = setTimeout(() => form.requestSubmit(), 400);
    }));
    form.querySelectorAll("select").forEach((select) => select.addEventListener("change", () => form.requestSubmit()));
    const field = form.querySelector("input[type=search]");
    if (field && field.value) { field.focus(); field.setSelectionRange(field.value.length, field.value.length); }
  });

  // A dialog opened by the server (a form with errors) opens on load: data-open-on-load.
  document.querySelectorAll(".modal[data-open-on-load]").forEach((modal) => window.bootstrap.Modal.getOrCreateInstance(modal).show());
})();
