// Loads the console client bundle (console/console.js + .css, built by scripts/build-web-assets.sh) once and mounts
// it: a small ES module so Blazor components can `import` it (scripts in components do not run).
let loading = null;

function load() {
  if (window.vmConsole) return Promise.resolve();
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (!document.querySelector('link[data-vm-console]')) {
        const css = document.createElement('link');
        css.rel = 'stylesheet';
        css.href = '/console/console.css';
        css.dataset.vmConsole = '';
        document.head.appendChild(css);
      }
      const s = document.createElement('script');
      s.src = '/console/console.js';
      s.onload = () => (window.vmConsole ? resolve() : reject(new Error('console.js did not define vmConsole')));
      s.onerror = () => { loading = null; reject(new Error('console.js could not be loaded')); };
      document.head.appendChild(s);
    });
  }
  return loading;
}

/** Mounts the console into element; returns the client's handle (call dispose() on it). */
export async function mount(element, options) {
  await load();
  return window.vmConsole.mount(element, options);
}
