// Small enhancements over pages that work without JavaScript: the copy buttons.
document.addEventListener("DOMContentLoaded", () => {
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
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus();
});
