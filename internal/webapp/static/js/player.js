// The player: a <video> fed by a playback session's signed URL. It resumes
// where the profile stopped, sends the session's heartbeat with the
// position, and stops the session when the viewer leaves.

import * as api from "./api.js";
import { h, link, render, errorBox, clock } from "./dom.js";

export async function playerView(ctx) {
  const titleId = ctx.params.id;
  const episodeId = ctx.query.get("episode") || "";
  const profile = ctx.profile;
  document.title = "Watch · Marquee";

  const [session, title] = await Promise.all([
    api
      .call("POST", "/api/v1/playback/sessions", { body: { profile_id: profile.id, title_id: titleId, episode_id: episodeId || undefined } })
      .catch((err) => ({ error: err })),
    api.get(`/api/v1/titles/${encodeURIComponent(titleId)}` + api.q({ profile_id: profile.id })).catch(() => null),
  ]);
  const name = title ? title.name : "";
  if (session.error) {
    if (!ctx.alive()) return;
    const err = session.error;
    if (err.status === 401) throw err;
    const kids = profile.maturity_level === "kids";
    render(
      h(
        "section",
        { class: "page narrow" },
        h("h1", null, name ? `Cannot play “${name}”` : "Cannot play this title"),
        errorBox(err),
        err.code === "NOT_ENTITLED" && !kids ? h("p", null, link("/plans", { class: "button" }, "Choose a plan")) : null,
        h("p", null, link(`/title/${encodeURIComponent(titleId)}`, null, "Back to the title")),
      ),
    );
    return;
  }
  const sid = session.session_id;
  const stop = (pos) =>
    api.call("DELETE", `/api/v1/playback/sessions/${encodeURIComponent(sid)}` + api.q({ position_seconds: pos > 0 ? pos : "" }), { keepalive: true }).catch(() => {});
  if (!ctx.alive()) {
    stop(0);
    return;
  }

  let episodeName = "";
  if (title && session.episode_id) {
    for (const s of title.seasons || []) {
      for (const e of s.episodes || []) {
        if (e.id === session.episode_id) episodeName = `S${s.number} E${e.number} · ${e.name}`;
      }
    }
  }
  const resume = Math.max(0, Number(session.resume_position_seconds) || 0);
  const video = h("video", {
    class: "video",
    controls: true,
    playsinline: true,
    preload: "auto",
    src: session.stream_url,
    "aria-label": name ? `Video: ${name}` : "Video",
    dataset: { sessionId: sid, resume: resume },
  });
  const info = h("p", { class: "muted", role: "status" });
  render(
    h(
      "section",
      { class: "page player" },
      h("div", { class: "player-head" }, link(`/title/${encodeURIComponent(titleId)}`, { class: "back" }, "← Back"), h("h1", null, name || "Now playing", episodeName ? h("span", { class: "muted small" }, " " + episodeName) : null)),
      video,
      info,
    ),
  );

  video.addEventListener(
    "loadedmetadata",
    () => {
      // The resume position may lie past the end of this video (the demo
      // videos are shorter than the titles they stand for): clamp it.
      const d = video.duration;
      let at = resume;
      if (Number.isFinite(d) && d > 0) at = Math.min(resume, Math.max(0, d - 1));
      if (at > 0) {
        video.currentTime = at;
        info.textContent = `Resuming at ${clock(at)}.`;
      }
      video.dataset.startAt = String(at);
      video.play().catch(() => {
        info.textContent = (at > 0 ? `Resuming at ${clock(at)}. ` : "") + "Press play to start.";
      });
    },
    { once: true },
  );
  const onError = () => {
    info.replaceChildren(errorBox({ message: "The video could not be played. Go back and try again." }));
  };
  video.addEventListener("error", onError);

  let ended = false;
  const position = () => Math.floor(video.currentTime || 0);
  const report = async () => {
    if (ended) return;
    try {
      await api.call("POST", `/api/v1/playback/sessions/${encodeURIComponent(sid)}/progress`, { body: { position_seconds: position() } });
    } catch (err) {
      if (err.status === 404) {
        ended = true;
        clearInterval(timer);
        info.textContent = "This playback session has ended. Go back and press play to continue.";
      }
    }
  };
  const every = Math.min(Math.max(Number(session.heartbeat_interval_seconds) || 15, 5), 60);
  const timer = setInterval(report, every * 1000);
  video.addEventListener("pause", report);

  // Closing the tab: a last best-effort stop, kept alive by the browser.
  const onHide = () => {
    if (!ended) stop(position());
  };
  window.addEventListener("pagehide", onHide);

  ctx.onLeave(async () => {
    clearInterval(timer);
    window.removeEventListener("pagehide", onHide);
    video.removeEventListener("pause", report);
    video.removeEventListener("error", onError);
    const pos = position();
    video.pause();
    video.removeAttribute("src");
    video.load();
    if (!ended) {
      ended = true;
      await stop(pos);
    }
  });
}
