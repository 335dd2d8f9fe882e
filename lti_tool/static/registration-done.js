// LTI Dynamic Registration 1.0: tell the platform's window that registration ended,
// so the platform closes its dialog and reloads its list of tools.
(window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
