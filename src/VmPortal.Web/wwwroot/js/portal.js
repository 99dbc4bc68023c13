// Small browser helpers for the portal (theme preference, clipboard).
window.vmportal = {
  getDarkMode: function () {
    const v = localStorage.getItem("vmportal.darkMode");
    if (v === null) return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return v === "true";
  },
  setDarkMode: function (dark) { localStorage.setItem("vmportal.darkMode", dark ? "true" : "false"); },
  copy: function (text) { return navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.resolve(); }
};
