// usersync's own few lines of script (htmx does the fetching). No inline scripts: the pages'
// Content-Security-Policy allows scripts from this server only.
"use strict";

// "Sync on": changing a card's toggle opens its confirmation dialog. Cancel (the button or
// Escape) closes the dialog and puts the toggle back as it was.
document.addEventListener("change", (event) => {
  const toggle = event.target.closest("[data-sync-toggle]");
  if (!toggle) return;
  const dialog = document.getElementById(toggle.dataset.syncToggle);
  dialog.dataset.toggle = toggle.id;
  dialog.showModal();
});

document.addEventListener("click", (event) => {
  const cancel = event.target.closest("[data-dialog-cancel]");
  if (cancel) cancel.closest("dialog").close();
});

// "close" does not bubble: listen in the capture phase.
document.addEventListener(
  "close",
  (event) => {
    const dialog = event.target;
    if (!(dialog instanceof HTMLDialogElement) || !dialog.dataset.toggle) return;
    const toggle = document.getElementById(dialog.dataset.toggle);
    toggle.checked = !toggle.checked;
    toggle.focus();
  },
  true,
);

// The folder tree: "+" loads a folder's subfolders once (htmx, hx-trigger="click once");
// after that it shows and hides them.
document.addEventListener("htmx:afterSwap", (event) => {
  const list = event.detail.target;
  const button = document.querySelector(`[data-expand][aria-controls="${list.id}"]`);
  if (!button || button.dataset.loaded) return;
  button.dataset.loaded = "true";
  setExpanded(button, list, true);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-expand]");
  if (!button || !button.dataset.loaded) return;
  const list = document.getElementById(button.getAttribute("aria-controls"));
  setExpanded(button, list, button.getAttribute("aria-expanded") !== "true");
});

function setExpanded(button, list, expanded) {
  list.hidden = !expanded;
  button.setAttribute("aria-expanded", String(expanded));
  button.textContent = expanded ? "−" : "+";
  button.setAttribute(
    "aria-label",
    button.getAttribute("aria-label").replace(/^(Show|Hide)/, expanded ? "Hide" : "Show"),
  );
}

// The sync wizard. The time zone field starts as the browser's own zone when it is empty.
document.addEventListener("DOMContentLoaded", () => {
  const zone = document.querySelector("[data-browser-zone]");
  if (zone && !zone.value) {
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    zone.dispatchEvent(new Event("change", { bubbles: true }));
  }
});

// The mapping: the row of the column chosen to hold the userId is not a property.
document.addEventListener("change", (event) => {
  const select = event.target.closest("[data-user-id-column]");
  if (!select) return;
  for (const row of select.form.querySelectorAll("tr[data-column]")) {
    const holdsId = row.dataset.column === select.value;
    row.classList.toggle("is-user-id", holdsId);
    for (const field of row.querySelectorAll("input, select")) field.disabled = holdsId;
  }
});

// "Copy" buttons (data-copy: the id of the element whose text they copy). Where the browser
// keeps the clipboard from the page (an http:// address other than localhost), the text is
// selected instead, for Ctrl+C.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    window.getSelection().selectAllChildren(source);
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => {
    button.textContent = label;
  }, 3000);
});

// A button or link whose page waits on a server (a connection test waits up to the SSH
// timeout) says so at once: a spinner and its `data-busy` words, and no second submit.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  if (!button || !button.dataset.busy || event.defaultPrevented) return;
  showBusy(button);
  setTimeout(() => { button.disabled = true; });
});
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-busy]");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  showBusy(link);
});
function showBusy(control) {
  control.dataset.idle = control.textContent;
  control.setAttribute("aria-busy", "true");
  control.textContent = control.dataset.busy;
}
// Back to a page kept in the browser's cache: its controls are idle again.
window.addEventListener("pageshow", () => {
  for (const control of document.querySelectorAll("[data-busy][aria-busy]")) {
    control.removeAttribute("aria-busy");
    control.disabled = false;
    control.textContent = control.dataset.idle;
  }
});
