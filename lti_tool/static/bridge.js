// Small enhancements over pages that work without JavaScript: the copy buttons, the
// guard against double submits, the activity fieldset of the rule form and the live
// backfill progress.
document.addEventListener("DOMContentLoaded", () => {
  guardDoubleSubmits();
  for (const fieldset of document.querySelectorAll("fieldset[data-rule-activities]")) {
    followRuleKind(fieldset);
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    if (!navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      const status = button.closest(".copy-field").querySelector(".copy-status");
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = status.dataset.copied;
      } catch (error) {
        field.select();
      }
    });
  }
  // An error summary, or else the notice that confirms a revocation or another form
  // (marked data-confirmation), or else a rule preview, takes the focus that the page
  // reload after a form would leave on the page's body. Each of them has
  // tabindex="-1" for this. A form without a summary, such as the learner's portfolio
  // link, gives the focus to its first invalid field. The browser then scrolls that
  // field's error into view, and a screen reader reads the error with the field.
  const summary =
    document.getElementById("error-summary") ||
    document.getElementById("revoke-error-summary") ||
    document.getElementById("revoke-notice") ||
    document.querySelector("[data-confirmation]") ||
    document.getElementById("rule-preview") ||
    document.querySelector('[aria-invalid="true"]');
  if (summary) summary.focus();
  const backfills = document.querySelector("[data-progress-url]");
  if (backfills) followBackfills(backfills);
});

// A second submit of a form while its first is on the way would repeat the action: a
// double click on "Create badge" created two badges, each awarded to the learners.
// So a posted form submits once per page view. Every post returns a new page,
// and a page restored by the back button takes submits again.
function guardDoubleSubmits() {
  for (const form of document.querySelectorAll("form")) {
    if (form.method !== "post") continue;
    form.addEventListener("submit", (event) => {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "true";
    });
  }
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    for (const form of document.querySelectorAll("form[data-submitted]")) {
      delete form.dataset.submitted;
    }
  });
}

// Disable the activity fieldset of a rule form while the chosen rule kind uses no
// activities, so its inputs can be neither ticked nor reached by Tab. A disabled
// fieldset is announced as unavailable by screen readers. Its values are then not
// submitted, which changes nothing: the server ignores them for such a kind.
function followRuleKind(fieldset) {
  const radios = fieldset.form.querySelectorAll('input[type="radio"][name="rule_kind"]');
  const update = () => {
    const chosen = [...radios].find((radio) => radio.checked);
    fieldset.disabled = Boolean(chosen) && !("usesActivities" in chosen.dataset);
  };
  for (const radio of radios) radio.addEventListener("change", update);
  // A page restored by the back button keeps the radio last chosen.
  window.addEventListener("pageshow", update);
  update();
}

// Poll the course's backfill progress every 3 s while a job is active.
function followBackfills(section) {
  const active = () => section.querySelector('[data-status="pending"], [data-status="running"]');
  const update = async () => {
    if (!active()) return;
    try {
      const response = await fetch(section.dataset.progressUrl, { credentials: "same-origin" });
      if (response.ok) {
        for (const job of (await response.json()).backfills) {
          const item = section.querySelector(`[data-backfill="${job.id}"]`);
          if (!item) continue;
          item.dataset.status = job.status;
          item.querySelector(".backfill-status").textContent = job.status_text;
          item.querySelector(".backfill-counts").textContent = job.counts_text;
          if (!job.active) {
            const bar = item.querySelector("progress");
            bar.max = 1;
            bar.value = 1;
            item.querySelector("form")?.remove();
          }
        }
      }
    } catch (error) {
      // A failed poll leaves the page as it is; the next one tries again.
    }
    setTimeout(update, 3000);
  };
  setTimeout(update, 3000);
}
