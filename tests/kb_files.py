"""Real policy files for the knowledge-base tests: .docx written with python-docx and .pdf printed
by headless Chromium with a CJK font, from corpus text."""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path

from conftest import CORPUS_DIR

REGISTERED_CAPITAL = CORPUS_DIR / "regulations" / "gongsi-fa-zhuce-ziben-dengji-guanli-guiding.md"
REGISTERED_CAPITAL_ID = "gongsi-fa-zhuce-ziben-dengji-guanli-guiding"

# A local normative document with 文号 and 有效期, in the form 厦门 issues them; its facts appear in no
# corpus document, so only it can answer questions about 首贷贴息.
LOCAL_NOTICE = [
    "厦门市人民政府办公厅关于印发厦门市中小企业首贷续贷贴息办法的通知",
    "厦府办规〔2024〕5号",
    "各区人民政府，市直各委、办、局：",
    "经市政府同意，现将《厦门市中小企业首贷续贷贴息办法》印发给你们，请认真贯彻执行。",
    "第一条 为缓解中小企业融资难融资贵问题，支持中小企业首次贷款和续贷，制定本办法。",
    "第二条 本办法所称首贷，是指在本市登记注册的中小企业首次从银行业金融机构获得的流动资金贷款。",
    "第三条 对中小企业首贷，按照贷款实际发生额给予年化百分之一的贴息，单户企业年度贴息最高五十万元。",
    "第四条 对中小企业无还本续贷，按照续贷金额给予年化百分之零点五的贴息，单户企业年度贴息最高二十万元。",
    "第五条 企业申请贴息，应当在贷款发放之日起六个月内通过“i厦门”平台提交申请材料。",
    "第六条 市财政局会同市地方金融监督管理局负责贴息资金的审核和拨付，审核时限为十五个工作日。",
    "第七条 本办法自2024年3月1日起施行，有效期五年。",
    "厦门市人民政府办公厅",
    "2024年2月1日",
]


def registered_capital_lines() -> list[str]:
    """The corpus's 注册资本登记管理制度的规定, from its first article, one paragraph per line."""
    body = REGISTERED_CAPITAL.read_text("utf-8").split("<!-- INFO END -->", 1)[1]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return lines[next(i for i, line in enumerate(lines) if line.startswith("第一条")):]


def revised_registered_capital() -> list[str]:
    """A 2026 revision of it: 第八条 changed, and a stated effective date."""
    lines = [line.replace("满3年未向公司登记机关申请注销", "满2年未向公司登记机关申请注销")
             .replace("公告期限不少于60日", "公告期限不少于90日") for line in registered_capital_lines()]
    lines = [line for line in lines if not line.startswith("第九条")]
    return ["国务院关于实施《中华人民共和国公司法》注册资本登记管理制度的规定（2026年修订）",
            "中华人民共和国国务院令第999号", *lines, "第九条 本规定自2026年10月1日起施行。"]


def write_docx(path: Path, lines: list[str]) -> Path:
    import docx

    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    document.save(path)
    return path


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_pdf(path: Path, lines: list[str]) -> Path:
    """Print the lines as an A4 PDF with Chromium (wrapped lines, page numbers in the footer)."""
    page = path.with_suffix(".html")
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    page.write_text(
        "<html><head><meta charset='utf-8'><style>body{font-family:'Noto Serif CJK SC','Noto Sans CJK SC';"
        "font-size:16pt} p{margin:0 0 8pt 0; text-indent:2em}</style></head>"
        f"<body>{paragraphs}</body></html>", encoding="utf-8")
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={path}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    return path
