// 知识库管理 tab: every action goes through the HTTP API (/api/documents), the same contract scripts use,
// so uploads are checked, size-limited and recorded in one place. Text from files is set with
// textContent, never as HTML.
(() => {
  const $ = (id) => document.getElementById(id);
  const STATUS_WARN = new Set(["superseded", "expired", "retired"]);

  async function call(path, options = {}) {
    // Header values must be ISO-8859-1: the operator's (Chinese) name travels percent-encoded.
    const operator = encodeURIComponent((($("kb-operator") || {}).value || "").trim());
    const headers = Object.assign({ "X-Admin-Token": ($("kb-token") || {}).value || "", "X-Operator": operator },
                                  options.headers || {});
    const response = await fetch(path, Object.assign({}, options, { headers }));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || (body.error && body.error.message) || `请求失败（${response.status}）`);
    return body;
  }

  function say(text, kind) {
    const box = $("kb-status");
    box.textContent = text;
    box.className = `kb-status ${kind || ""}`;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text == null || text === "" ? "—" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function table(columns, rows, fill) {
    const element = document.createElement("table");
    element.className = "kb-table";
    const head = element.createTHead().insertRow();
    for (const name of columns) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    }
    const body = element.createTBody();
    for (const row of rows) fill(body.insertRow(), row);
    return element;
  }

  async function refresh() {
    try {
      const records = await call("/api/documents/-/records");
      const box = $("kb-documents");
      box.replaceChildren(table(["文件", "编号", "文号", "施行日期", "有效期至", "状态", "条文数", ""], records, (row, r) => {
        cell(row, r.title);
        cell(row, r.doc_id, "kb-id");
        cell(row, r.doc_number);
        cell(row, r.effective);
        cell(row, r.valid_until);
        cell(row, r.status_zh, STATUS_WARN.has(r.status) ? "kb-warn" : "");
        cell(row, r.clause_count);
        const actions = cell(row, "");
        actions.textContent = "";
        if (r.status !== "retired") {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "kb-retire kb-button";
          button.value = r.doc_id;
          button.textContent = "下架";
          actions.appendChild(button);
        }
      }));
      const history = await call("/api/documents/-/history");
      const actions = { add: "添加", version: "添加新版本", retire: "下架" };
      $("kb-history").replaceChildren(history.length ? table(["时间", "操作人", "操作", "文件", "来源文件", "SHA-256"], history, (row, h) => {
        cell(row, h.at.replace("T", " ").replace("+00:00", " UTC"));
        cell(row, h.actor);
        cell(row, (actions[h.action] || h.action) + (h.replaces ? `（取代 ${h.replaces}）` : ""));
        cell(row, `${h.title}（${h.doc_id}）`);
        cell(row, h.file_name);
        cell(row, h.sha256 ? h.sha256.slice(0, 12) : "");
      }) : document.createTextNode("暂无变更记录。"));
    } catch (error) {
      say(error.message, "kb-error");
    }
  }

  function showPreview(preview) {
    const box = $("kb-preview-box");
    const rows = [
      ["标题", preview.title], ["编号", preview.doc_id], ["文号", preview.doc_number || "（未识别）"],
      ["发文机关", preview.issuer || "（未识别）"], ["类别", preview.category], ["施行日期", preview.effective || "（未识别）"],
      ["有效期至", preview.valid_until], ["条文数", preview.clause_count],
      ["首尾条文", `${preview.first_labels.join("、")} … ${preview.last_labels.join("、")}`],
      ["取代", preview.replaces],
      ["已被取代（旧版本）", preview.superseded_by],
    ];
    const list = document.createElement("dl");
    for (const [label, value] of rows) {
      if (value == null || value === "") continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      list.append(dt, dd);
    }
    const warnings = document.createElement("ul");
    warnings.className = "kb-warnings";
    for (const warning of preview.warnings) {
      const item = document.createElement("li");
      item.textContent = warning;
      warnings.appendChild(item);
    }
    const confirm = document.createElement("button");
    confirm.type = "button";
    confirm.id = "kb-confirm";
    confirm.className = "kb-button kb-primary";
    confirm.textContent = preview.replaces ? "确认添加为新版本" : "确认添加";
    box.replaceChildren(list, warnings, confirm);
    box.hidden = false;
  }

  function upload(confirm) {
    const file = $("kb-file").files[0];
    if (!file) throw new Error("请先选择文件");
    const form = new FormData();
    form.append("file", file, file.name);
    const query = new URLSearchParams();
    if (confirm) query.set("confirm", "true");
    const docId = $("kb-doc-id").value.trim();
    if (docId) query.set("doc_id", docId);
    return call(`/api/documents?${query}`, { method: "POST", body: form });
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("#kb-admin button");
    if (!button) return;
    try {
      if (button.id === "kb-preview") {
        say("正在解析文件…");
        showPreview(await upload(false));
        say("请核对预览，确认无误后点击“确认添加”。");
      } else if (button.id === "kb-confirm") {
        button.disabled = true;
        say("正在写入知识库并更新索引…");
        const result = await upload(true);
        $("kb-preview-box").hidden = true;
        say(`已添加《${result.preview.title}》（${result.preview.doc_id}），索引现有 ${result.clauses_in_index} 条条文。`, "kb-ok");
        await refresh();
      } else if (button.classList.contains("kb-retire")) {
        if (!window.confirm(`确认下架 ${button.value}？下架后答复不再引用该文件。`)) return;
        say("正在下架并更新索引…");
        const result = await call(`/api/documents/${encodeURIComponent(button.value)}`, { method: "DELETE" });
        say(`已下架《${result.change.title}》。`, "kb-ok");
        await refresh();
      }
    } catch (error) {
      button.disabled = false;
      say(error.message, "kb-error");
    }
  });

  // Load the lists when the tab first shows the panel (Gradio renders tabs lazily).
  const observer = new MutationObserver(() => {
    const panel = $("kb-documents");
    if (panel && !panel.dataset.loaded && panel.offsetParent !== null) {
      panel.dataset.loaded = "1";
      refresh();
    }
  });
  const start = () => observer.observe(document.body, { childList: true, subtree: true, attributes: true });
  if (document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
