"""Renders a Mermaid flowchart (argv[2]) with Mermaid's own bundle
(argv[1], mermaid.min.js from npm) in headless Chromium, as GitHub and
docs sites do, and prints what it drew as JSON: `error` (Mermaid's parse
or render error, if any), and the text of each node and edge label."""
import json
import pathlib
import sys
import tempfile

from browser import chromium
from selenium.webdriver.support.ui import WebDriverWait

bundle, source = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).read_text()
page = pathlib.Path(tempfile.mkdtemp()) / "render.html"
page.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<script src="{bundle.as_uri()}"></script></head><body><div id="out"></div><script>
mermaid.initialize({{ startOnLoad: false }});
mermaid.render("graph", {json.dumps(source)})
  .then((r) => {{ document.getElementById("out").innerHTML = r.svg; document.title = "rendered"; }})
  .catch((e) => {{ document.title = "error: " + (e.message || e); }});
</script></body></html>""")
driver = chromium("--allow-file-access-from-files")
try:
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.title)
    title = driver.title
    nodes = driver.execute_script(
        "return [...document.querySelectorAll('#out g.node')].map(n => n.textContent.trim())")
    edges = driver.execute_script(
        "return [...document.querySelectorAll('#out path.flowchart-link, #out .edgePaths path')].length")
    labels = driver.execute_script(
        "return [...document.querySelectorAll('#out .edgeLabel')].map(n => n.textContent.trim()).filter(t => t)")
    print(json.dumps({
        "error": None if title == "rendered" else title,
        "nodes": nodes,
        "edges": edges,
        "edge_labels": labels,
    }))
finally:
    driver.quit()
