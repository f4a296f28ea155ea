// Who asks to see the user's presence (pending: Allow / Block) and who sees it (Block),
// from the presence.winfo subscription (see watcherinfo.js).

export class WatchersView {
  constructor({ pendingList, pendingEmpty, activeList, activeEmpty, template, onDecide }) {
    Object.assign(this, { pendingList, pendingEmpty, activeList, activeEmpty, template, onDecide });
  }

  /** Redraw both lists from a WatcherList, keeping the focus on a button that stays. */
  render(watchers) {
    const focused = document.activeElement;
    const refocus = focused && focused.closest(".watcher") ? focused.getAttribute("aria-label") : null;
    const active = watchers.withStatus("active");
    const activeUris = new Set(active.map((w) => w.uri));
    const pending = watchers.withStatus("pending", "waiting").filter((w) => !activeUris.has(w.uri));
    this.fill(this.pendingList, this.pendingEmpty, pending, true);
    this.fill(this.activeList, this.activeEmpty, active, false);
    if (refocus) {
      const again = document.querySelector(`.watcher button[aria-label="${CSS.escape(refocus)}"]`);
      if (again) again.focus();
    }
  }

  fill(list, empty, watchers, pending) {
    list.replaceChildren(...watchers.map((w) => this.makeRow(w, pending)));
    empty.hidden = watchers.length > 0;
  }

  makeRow(watcher, pending) {
    const row = this.template.content.firstElementChild.cloneNode(true);
    const label = watcher.displayName
      ? `${watcher.displayName} (${watcher.uri.replace(/^sip:/, "")})`
      : watcher.uri.replace(/^sip:/, "");
    row.dataset.uri = watcher.uri;
    row.querySelector(".who").textContent = label;
    const allow = row.querySelector(".allow-button");
    const block = row.querySelector(".block-button");
    allow.hidden = !pending;
    allow.setAttribute("aria-label", `Allow ${watcher.uri}`);
    block.setAttribute("aria-label", `Block ${watcher.uri}`);
    allow.addEventListener("click", () => this.decide(row, watcher.uri, "allow"));
    block.addEventListener("click", () => this.decide(row, watcher.uri, "block"));
    return row;
  }

  async decide(row, uri, handling) {
    const buttons = row.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await this.onDecide(uri, handling);
      // The server re-decides at once; the next winfo NOTIFY redraws this row.
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }
}
