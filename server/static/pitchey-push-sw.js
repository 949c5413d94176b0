// Pitchey Comms service worker for Web Push, served at /api/push/sw.js with APP_URL
// written in. Register it with PitcheyClient.registerPush(url) (docs/browser-client.md).
//
// Each push is a JSON object {title, body, path, tag, type, ...} (README "Web Push"). A
// click focuses a window already showing APP_URL + path, or opens one; only paths inside
// APP_URL are ever opened, whatever a push says.

const APP_URL = "__APP_URL__";

function target(path) {
  const base = new URL(APP_URL + "/");
  let url;
  try {
    url = new URL(String(path || "/").replace(/^\/+/, ""), base);
  } catch {
    return base.href;
  }
  return url.origin === base.origin ? url.href : base.href;
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "Pitchey", body: event.data ? event.data.text() : "" };
  }
  const title = typeof data.title === "string" && data.title ? data.title : "Pitchey";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: typeof data.body === "string" ? data.body : "",
      tag: typeof data.tag === "string" ? data.tag : undefined,
      renotify: typeof data.tag === "string",
      data: { url: target(data.path), type: data.type },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || target("/");
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const client of windows) {
        if (client.url === url && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
