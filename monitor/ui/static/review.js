// The review queue's keyboard and buttons: r relevant, n not relevant, j/→ next, k/← previous,
// c note, ? help. Verdicts POST to /api/review with the X-Monitor-UI header (the server's CSRF
// guard). Everything shown is set with textContent: article text never becomes markup here.
(function () {
  "use strict";

  const queue = document.getElementById("queue");
  const statusBox = document.getElementById("status");
  const noteForm = document.getElementById("note-form");
  const noteInput = document.getElementById("note-input");
  const notePending = document.getElementById("note-pending");
  const pendingCount = document.getElementById("pending-count");
  const help = document.getElementById("help");
  const LABELS = { relevant: "✓ relevant", "not-relevant": "✗ not relevant" };

  let current = -1;
  let note = null; // kept for the next verdict
  let saving = false;

  function items() {
    return queue ? Array.from(queue.querySelectorAll(".item")) : [];
  }

  function say(text, kind) {
    statusBox.textContent = text;
    statusBox.className = "status" + (kind ? " " + kind : "");
  }

  function setCurrent(index, focus) {
    const all = items();
    if (index < 0 || index >= all.length) return;
    all.forEach(function (el, i) {
      el.classList.toggle("current", i === index);
      if (i === index) el.setAttribute("aria-current", "true");
      else el.removeAttribute("aria-current");
    });
    current = index;
    const el = all[index];
    if (focus !== false) {
      el.focus({ preventScroll: true });
      el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  }

  function move(step) {
    const all = items();
    if (!all.length) return;
    const next = current + step;
    if (next < 0 || next >= all.length) {
      say(step > 0 ? "That was the last item." : "This is the first item.", "info");
      return;
    }
    setCurrent(next);
  }

  // The next item without a verdict after `from`, wrapping around; -1 when none is left.
  function nextPending(from) {
    const all = items();
    for (let step = 1; step <= all.length; step++) {
      const i = (from + step) % all.length;
      if (!all[i].classList.contains("done")) return i;
    }
    return -1;
  }

  function showNote() {
    if (note) {
      notePending.hidden = false;
      notePending.textContent = "Note kept for the next verdict: " + note;
    } else {
      notePending.hidden = true;
      notePending.textContent = "";
    }
  }

  function openNote() {
    noteForm.hidden = false;
    noteInput.value = note || "";
    noteInput.focus();
  }

  function closeNote() {
    noteForm.hidden = true;
    const el = items()[current];
    if (el) el.focus({ preventScroll: true });
  }

  async function decide(verdict) {
    const el = items()[current];
    if (!el || saving) return;
    saving = true;
    el.classList.add("saving");
    el.classList.remove("failed");
    say("Saving…", "info");
    const title = el.querySelector(".title-text").textContent.trim();
    const itemError = el.querySelector(".item-error");
    itemError.hidden = true;
    try {
      const response = await fetch("/api/review", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Monitor-UI": "1" },
        body: JSON.stringify({
          article_id: el.dataset.articleId,
          topic_id: el.dataset.topicId,
          verdict: verdict,
          note: note,
        }),
      });
      let body = {};
      try {
        body = await response.json();
      } catch (ignored) {
        body = {};
      }
      if (!response.ok) {
        throw new Error((body && body.error) || "the server answered " + response.status);
      }
      const wasDone = el.classList.contains("done");
      el.classList.add("done");
      el.dataset.verdict = verdict;
      el.querySelector(".verdict-label").textContent = LABELS[verdict];
      if (!wasDone && pendingCount) {
        pendingCount.textContent = String(Math.max(0, Number(pendingCount.textContent) - 1));
      }
      const kept = note ? " (with note)" : "";
      note = null;
      showNote();
      const next = nextPending(current);
      if (next >= 0) {
        setCurrent(next);
        say("Saved: " + LABELS[verdict] + kept + " — " + title, "ok");
      } else {
        say("Saved: " + LABELS[verdict] + kept + " — " + title + ". Every item here has a verdict.", "ok");
      }
    } catch (err) {
      el.classList.add("failed");
      say("Not saved: " + err.message + " — the item stays; try again.", "error");
      // Also on the item itself: the status bar may be out of the reader's eye line.
      itemError.textContent = "Not saved: " + err.message;
      itemError.hidden = false;
    } finally {
      el.classList.remove("saving");
      saving = false;
    }
  }

  function toggleHelp() {
    if (!help) return;
    if (help.open) help.close();
    else help.showModal();
  }

  function act(action) {
    if (action === "relevant" || action === "not-relevant") decide(action);
    else if (action === "next") move(1);
    else if (action === "previous") move(-1);
    else if (action === "note") openNote();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") {
      if (event.key === "Escape" && event.target === noteInput) {
        event.preventDefault();
        closeNote();
      }
      return;
    }
    if (help && help.open && event.key !== "?") return; // the dialog handles Esc itself
    const action = {
      r: "relevant",
      n: "not-relevant",
      j: "next",
      ArrowRight: "next",
      k: "previous",
      ArrowLeft: "previous",
      c: "note",
    }[event.key];
    if (event.key === "?") {
      event.preventDefault();
      toggleHelp();
    } else if (action && items().length) {
      event.preventDefault();
      act(action);
    }
  });

  if (queue) {
    queue.addEventListener("click", function (event) {
      const el = event.target.closest(".item");
      if (!el) return;
      const index = items().indexOf(el);
      const button = event.target.closest("button[data-action]");
      if (index !== current) setCurrent(index, !button);
      if (button) act(button.dataset.action);
    });
  }

  noteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    note = noteInput.value.trim() || null;
    showNote();
    closeNote();
    say(note ? "Note kept: it goes with the next verdict." : "Note cleared.", "info");
  });

  const filter = document.getElementById("topic-filter");
  if (filter) {
    filter.addEventListener("change", function () {
      filter.form.submit();
    });
  }

  if (items().length) setCurrent(0, false);
  document.body.classList.add("js");
})();
