// LTI Platform Storage for launches whose browser drops the tool's cookie inside the
// LMS iframe. The page's #lti-storage element carries what the script needs in data
// attributes, so the pages hold no inline script and work under the bridge's CSP.
(function () {
  "use strict";
  const settings = document.getElementById("lti-storage");
  if (!settings) return;
  const data = settings.dataset;
  const frame = data.target === "_parent" ? window.parent : window.parent.frames[data.target];
  const messageId = "hpass-" + Math.random().toString(36).slice(2);
  const key = "hpass_state_" + data.state;
  const status = document.getElementById("status");

  function fail(message) {
    status.textContent = message;
  }

  if (data.mode === "put") {
    // Keep the state binding in the platform's frame, then continue to the platform's
    // authorisation URL. The timeout continues even if the platform never replies.
    let done = false;
    const go = () => {
      if (!done) {
        done = true;
        window.location.replace(data.authUrl);
      }
    };
    window.addEventListener("message", (event) => {
      const reply = event.data || {};
      if (event.origin === data.origin && reply.message_id === messageId &&
          reply.subject === "lti.put_data.response") go();
    });
    if (frame) {
      frame.postMessage({ subject: "lti.put_data", message_id: messageId, key: key,
                          value: data.binding }, data.origin);
    }
    setTimeout(go, 2000);
    return;
  }

  // mode "get": read the binding back and post the launch again from this page,
  // which has the tool's origin.
  const form = document.getElementById("relaunch");
  window.addEventListener("message", (event) => {
    const reply = event.data || {};
    if (event.origin !== data.origin || reply.message_id !== messageId) return;
    if (reply.subject !== "lti.get_data.response" || reply.error ||
        typeof reply.value !== "string") {
      fail(data.missingState);
      return;
    }
    form.elements.lti_storage_binding.value = reply.value;
    form.submit();
  });
  if (!frame) {
    fail(data.missingFrame);
    return;
  }
  frame.postMessage({ subject: "lti.get_data", message_id: messageId, key: key }, data.origin);
})();
