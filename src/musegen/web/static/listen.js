// musegen listening test: pairs of excerpts, no labels; answers go to the server only.
"use strict";

const $ = (id) => document.getElementById(id);
const test = { pairs: 0, questions: [], index: 0, listener: "" };

function newListener() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function showPair() {
  if (test.index >= test.pairs) {
    $("trial").hidden = true;
    $("done").hidden = false;
    $("progress").textContent = "done";
    return;
  }
  $("progress").textContent = "pair " + (test.index + 1) + " of " + test.pairs;
  for (const slot of [1, 2]) {
    const audio = $("audio" + slot);
    audio.pause();
    audio.src = "/api/listen/audio/" + test.index + "/" + slot;
  }
  const form = $("questions");
  form.textContent = "";
  for (const q of test.questions) {
    const box = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = q.text;
    box.appendChild(legend);
    for (const slot of [1, 2]) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio";
      input.name = q.key;
      input.value = String(slot);
      label.appendChild(input);
      label.appendChild(document.createTextNode(" " + slot));
      box.appendChild(label);
    }
    form.appendChild(box);
  }
  $("message").textContent = "";
}

async function next() {
  const chosen = [];
  for (const q of test.questions) {
    const picked = document.querySelector("input[name='" + q.key + "']:checked");
    if (!picked) {
      $("message").textContent = "answer every question first";
      return;
    }
    chosen.push({ question: q.key, choice: Number(picked.value) });
  }
  $("next").disabled = true;
  try {
    for (const c of chosen) {
      const response = await fetch("/api/listen/answer", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ listener: test.listener, pair: test.index, question: c.question, choice: c.choice }),
      });
      if (!response.ok) throw new Error(((await response.json()) || {}).error || "the answer was not saved");
    }
    test.index += 1;
    showPair();
  } catch (e) {
    $("message").textContent = e.message;
  } finally {
    $("next").disabled = false;
  }
}

async function setup() {
  const info = await (await fetch("/api/listen/test")).json();
  test.pairs = info.pairs;
  test.questions = info.questions;
  test.listener = newListener();
  $("next").addEventListener("click", next);
  showPair();
}

document.addEventListener("DOMContentLoaded", () => setup().catch((e) => ($("message").textContent = e.message)));
