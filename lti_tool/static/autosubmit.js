// Submit the page's form marked data-autosubmit as soon as the page loads (the deep
// linking response goes back to the platform this way); <noscript> offers a button.
document.querySelector("form[data-autosubmit]")?.submit();
