"""Open a `snakemake --report` HTML file in headless Chromium as a person would: click through the
report's navigation by the links' text, and read back what the page then shows (`--dump-dom`).

Snakemake's report is a single-page app: what a click shows is rendered by its scripts, and a
file's DOM holds only the first page. So a copy of the report gets a small script that, once the
page has loaded, clicks each link in turn (the way a person does, by its visible text) and writes
what the page shows into attributes of <body>, which `--dump-dom` prints. A data: URI that the
page shows in an iframe (an HTML report item) is opened the same way on its own.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

CLICKER = """<script>
(function () {
  const steps = %s;
  function note(key, value) { document.body.setAttribute('data-lrstudy-' + key, value); }
  window.addEventListener('error', e => note('error', e.message));
  function click(step) {
    // a link by its text, or {row, icon}: the icon button (`eye`: view) of a listing's row
    const links = typeof step === 'string'
      ? Array.from(document.querySelectorAll('a'))
          .filter(a => a.innerText && a.innerText.trim() === step)
      : Array.from(document.querySelectorAll('tr'))
          .filter(tr => tr.cells.length && tr.cells[0].innerText.trim() === step.row)
          .map(tr => tr.querySelector(`a[iconname="${step.icon}"]`)).filter(a => a);
    if (links.length) links[0].click();
    return links.length;
  }
  function run(i) {
    if (i === steps.length) {
      note('text', document.getElementById('app').innerText);
      note('images', JSON.stringify(Array.from(document.querySelectorAll('img'))
        .map(img => [img.getAttribute('src').slice(0, 200), img.naturalWidth])));
      note('frames', JSON.stringify(Array.from(document.querySelectorAll('iframe'))
        .map(frame => frame.getAttribute('src'))));
      return;
    }
    note('step' + i, click(steps[i]));
    setTimeout(() => run(i + 1), 300);
  }
  window.addEventListener('load', () => setTimeout(() => run(0), 300));
})();
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(page: Path, timeout: int = 120) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
        + ["--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def click_through(report: Path, steps: list, work: Path) -> dict:
    """What the report shows after clicking `steps` in turn (a link's text, or {"row": text,
    "icon": "eye"}: a listing row's view button; none: the front page): {'text': visible text,
    'images': [[src, naturalWidth]], 'frames': [src], 'error': a script error, 'stepN': how many
    links matched}."""
    source = report.read_text()
    at = source.rfind("</body>")
    page = work / f"clicked-{len(list(work.glob('clicked-*')))}.html"
    page.write_text(source[:at] + CLICKER % json.dumps(steps) + source[at:])
    body = re.search(r"<body[^>]*>", dump_dom(page)).group(0)
    found = {
        k: html.unescape(v) for k, v in re.findall(r'data-lrstudy-([a-z0-9]+)="([^"]*)"', body)
    }
    for key in ("images", "frames"):
        found[key] = json.loads(found.get(key, "[]"))
    return found


def open_data_uri(uri: str, work: Path) -> str:
    """Chromium's DOM of an HTML data: URI that a report shows in an iframe."""
    page = work / "frame.html"
    page.write_bytes(base64.b64decode(uri.split("base64,", 1)[1]))
    return dump_dom(page)
