// The participant's side of a real-or-colorized test: questions, then one pair at a time.
// Every answer is sent the moment it is given; the server stores it before it answers.
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("t") || "";
  const key = "colorize-humantest-" + token.slice(0, 12);
  const $ = (id) => document.getElementById(id);
  let participant = localStorage.getItem(key);
  let step = null;
  let shownAt = 0;
  let timer = null;
  let busy = false;

  function url(path, extra) {
    const query = new URLSearchParams({ t: token, ...(extra || {}) });
    return path + "?" + query.toString();
  }

  async function call(method, path, body, extra) {
    const response = await fetch(url(path, extra), {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    const data = await response.json();
    if (!response.ok) {
      const error = new Error(data.error || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function show(id) {
    for (const section of ["intro", "trial", "feedback", "done"]) {
      $(section).hidden = section !== id;
    }
  }

  function fail(error) {
    $("error").textContent = "Something went wrong: " + error.message;
    $("error").hidden = false;
    busy = false;
  }

  function load(img, id) {
    return new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("a photo did not load"));
      img.src = url("img/" + id + ".png");
    });
  }

  async function nextPair() {
    step = await call("GET", "api/next", null, { participant });
    if (step.done) {
      localStorage.removeItem(key);
      show("done");
      return;
    }
    const left = $("left"), right = $("right");
    for (const button of [left, right]) {
      button.classList.remove("covered");
      button.querySelector(".hidden-note").hidden = true;
    }
    await Promise.all([load($("left-img"), step.left), load($("right-img"), step.right)]);
    const practice = Number($("practice-count").textContent) || 0;
    $("progress").textContent = step.practice
      ? "Practice " + (step.position + 1) + " of " + practice
      : "Pair " + (step.position + 1 - practice) + " of " + (step.total - practice);
    show("trial");
    shownAt = performance.now();
    busy = false;
    clearTimeout(timer);
    if (step.time_limit > 0) {
      timer = setTimeout(() => {
        for (const button of [left, right]) {
          button.classList.add("covered");
          button.querySelector(".hidden-note").hidden = false;
        }
      }, step.time_limit * 1000);
    }
  }

  async function answer(side) {
    if (busy || !step || step.done || $("trial").hidden) return;
    busy = true;
    clearTimeout(timer);
    const ms = Math.round(performance.now() - shownAt);
    try {
      const result = await call("POST", "api/answer", {
        participant, position: step.position, answer: side, ms,
      });
      if (result.practice) {
        $("feedback-text").textContent = (result.correct ? "Right: " : "Not this time: ")
          + "the original was on the " + result.original_side + ".";
        show("feedback");
        $("next").focus();
        return;
      }
      await nextPair();
    } catch (error) {
      if (error.status === 409) {
        await nextPair().catch(fail);  // answered before (another tab, a retry): go on
      } else {
        fail(error);
      }
    }
  }

  async function begin(event) {
    event.preventDefault();
    const form = new FormData($("questions"));
    try {
      const started = await call("POST", "api/start", {
        colour_vision: form.get("colour_vision"),
        expertise: form.get("expertise") || "",
      });
      participant = started.participant;
      localStorage.setItem(key, participant);
      await nextPair();
    } catch (error) {
      fail(error);
    }
  }

  async function init() {
    const info = await call("GET", "api/protocol");
    $("practice-count").textContent = String(info.practice);
    if (info.time_limit > 0) {
      $("timing").textContent = "Each pair is shown for " + info.time_limit
        + " s; then answer from memory, taking as long as you like.";
      $("timing").hidden = false;
    }
    if (participant) {
      try {
        await nextPair();  // a session begun before (a reload, a restarted server) goes on
        return;
      } catch (error) {
        participant = null;
        localStorage.removeItem(key);
      }
    }
    show("intro");
  }

  $("questions").addEventListener("submit", begin);
  $("left").addEventListener("click", () => answer("left"));
  $("right").addEventListener("click", () => answer("right"));
  $("next").addEventListener("click", () => { busy = true; nextPair().catch(fail); });
  document.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") answer("left");
    if (event.key === "ArrowRight") answer("right");
  });
  init().catch(fail);
})();
