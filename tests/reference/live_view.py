"""Opens weir's live view (argv[1], a URL) in headless Chromium driven by
Selenium and Debian's chromedriver, as a user's browser would: waits for
the page to show every node, reads the table and the figures drawn into
the graph twice, 1.5 s apart, keeps a screenshot (argv[2]) and prints
what it saw as JSON. With a third argument, a file: once the first
reading is done it creates that file (the test swaps a plugin then) and
waits for the swap to show in the page's hot-swap list."""
import json
import sys
import time

from browser import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, screenshot = sys.argv[1], sys.argv[2]
driver = chromium("--window-size=1280,900")
try:
    driver.get(url)
    WebDriverWait(driver, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
        and d.find_element(By.ID, "status").text == "live"
    )

    # The page redraws itself from every event, so read it in one script:
    # page scripts cannot run in between, and no element goes stale.
    def read():
        return driver.execute_script("""
            const rows = {}, versions = {}, labels = {};
            for (const tr of document.querySelectorAll("#nodes tbody tr")) {
              rows[tr.dataset.node] = parseInt(
                tr.querySelector("td.rows").textContent.replaceAll(",", ""), 10);
              versions[tr.dataset.node] = tr.querySelector("td.version").textContent;
            }
            for (const text of document.querySelectorAll("#graph text")) {
              const spans = text.querySelectorAll("tspan");
              if (spans.length > 2) labels[spans[0].textContent] = spans[2].textContent;
            }
            const swaps = [...document.querySelectorAll("#swaps li:not(.none)")]
              .map((li) => li.textContent);
            const text = (id) => document.getElementById(id).textContent;
            return {rows, versions, labels, swaps,
                    status: text("status"), checkpoint: text("checkpoint")};
        """)

    time.sleep(1.0)
    first = read()["rows"]
    time.sleep(1.5)
    second = read()["rows"]
    if len(sys.argv) > 3:
        open(sys.argv[3], "w").close()
        WebDriverWait(driver, 30).until(lambda d: read()["swaps"])
    last = read()
    swaps, labels, versions = last["swaps"], last["labels"], last["versions"]
    driver.save_screenshot(screenshot)
    print(json.dumps({
        "first": first,
        "second": second,
        "labels": labels,
        "versions": versions,
        "swaps": swaps,
        "status": last["status"],
        "checkpoint": last["checkpoint"],
        "title": driver.title,
    }))
finally:
    driver.quit()
