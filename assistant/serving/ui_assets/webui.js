// Behaviour for the answers rendered by webui.py (loaded into the page <head> by page_head()).
// Everything works by event delegation on the document, because Gradio re-renders chat messages and
// sanitises their HTML (no inline handlers, no data-* or aria-* attributes): the markup carries
// classes, and buttons carry what they act on in their `value` (a citation's n, the text to copy).
(() => {
  "use strict";

  const PHONE = window.matchMedia("(max-width: 640px)");
  const scrolledAnswers = new Set();
  let userMessages = 0;

  /** The element that scrolls the chat (Gradio's message list), or null when the page scrolls. */
  function scroller(el) {
    for (let node = el.parentElement; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (/(auto|scroll)/.test(style.overflowY) && node.scrollHeight > node.clientHeight + 1) return node;
    }
    return null;
  }

  /** Bring el's top into view: inside the chat box on desktop, in the page on a phone. */
  function revealTop(el, margin = 36) { // the margin clears the chat's floating icon bar
    const box = scroller(el);
    if (box) {
      box.scrollTop += el.getBoundingClientRect().top - box.getBoundingClientRect().top - margin;
    }
    const top = el.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.6) {
      window.scrollBy(0, top - margin);
    }
  }

  /** [n] → open the answer's sources, scroll to source n and flash it. */
  function openSource(cite) {
    const answer = cite.closest(".pq-answer");
    const sources = answer && answer.querySelector(".pq-sources");
    if (!sources) return;
    sources.open = true;
    const n = parseInt(cite.value || cite.textContent.replace(/\D/g, ""), 10);
    const target = sources.querySelector(`.pq-src-${n}`);
    if (!target) return;
    answer.querySelectorAll(".pq-source.pq-target").forEach((s) => s.classList.remove("pq-target"));
    target.classList.add("pq-target");
    target.scrollIntoView({ block: "start", behavior: "smooth" });
    target.focus({ preventScroll: true });
  }

  /** Copy text; the Clipboard API needs a secure context, so plain-http deployments fall back. */
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (err) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      return ok;
    }
  }

  async function onCopy(button) {
    const ok = await copyText(button.value || "");
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    button.textContent = ok ? "已复制" : "复制失败";
    button.classList.toggle("pq-copied", ok);
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove("pq-copied");
    }, 1500);
  }

  /** Gradio's own "copy message" button would copy an answer's HTML: copy its text instead. */
  function interceptBuiltInCopy(event) {
    const button = event.target.closest(".message-buttons button");
    const label = button ? `${button.getAttribute("aria-label") || ""} ${button.title || ""}` : "";
    if (!/copy|复制/i.test(label)) return;
    const row = button.closest(".message-buttons").previousElementSibling;
    const answer = row && row.querySelector(".pq-answer");
    if (!answer) return;
    event.preventDefault();
    event.stopPropagation();
    const reply = answer.querySelector(".pq-copy-reply");
    const lines = answer.querySelector(".pq-lines");
    copyText(reply ? reply.value : (lines ? lines.innerText : answer.innerText));
  }

  document.addEventListener("click", interceptBuiltInCopy, true);

  document.addEventListener("click", (event) => {
    const cite = event.target.closest(".pq-cite");
    if (cite) {
      event.preventDefault();
      openSource(cite);
      return;
    }
    const copy = event.target.closest("button.pq-copy");
    if (copy) {
      event.preventDefault();
      onCopy(copy);
    }
  });

  /** Ctrl+K (⌘K): go to the operator tab and focus its search box. */
  function focusSearch() {
    const tab = [...document.querySelectorAll('button[role="tab"]')].find((b) => b.textContent.includes("条文检索"));
    if (tab && tab.getAttribute("aria-selected") !== "true") tab.click();
    let tries = 0;
    const attempt = () => {
      const box = document.querySelector("#search-query textarea, #search-query input");
      if (box && box.offsetParent !== null) {
        box.focus();
        box.select();
      } else if (tries++ < 50) {
        setTimeout(attempt, 40);
      }
    };
    attempt();
  }

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
      event.preventDefault();
      focusSearch();
    }
  });

  /** New answers: sources stay closed on a phone (open on desktop, as rendered); the chat shows the
   * answer's start rather than the end of its sources, and a new question once it is sent. */
  function onChatChange() {
    document.querySelectorAll(".pq-sources:not([data-init])").forEach((details) => {
      details.dataset.init = "1";
      if (PHONE.matches) details.open = false;
    });
    const chat = document.getElementById("chatbot");
    if (!chat) return;
    const users = chat.querySelectorAll('[data-testid="user"]');
    if (users.length > userMessages) {
      userMessages = users.length;
      revealTop(users[users.length - 1]);
    } else if (users.length < userMessages) {
      userMessages = users.length; // chat cleared
    }
    chat.querySelectorAll(".pq-answer").forEach((answer) => {
      const id = [...answer.classList].find((c) => c.startsWith("pq-aid-"));
      if (!id || scrolledAnswers.has(id)) return;
      scrolledAnswers.add(id);
      // Show the question with the start of its answer (users.length > 0 once a question was asked).
      const question = users.length ? users[users.length - 1] : null;
      const bubble = question || answer.closest('[data-testid="bot"]') || answer;
      requestAnimationFrame(() => revealTop(bubble));
    });
  }

  function start() {
    let pending = false;
    new MutationObserver(() => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        onChatChange();
      });
    }).observe(document.body, { childList: true, subtree: true });
    onChatChange();
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
