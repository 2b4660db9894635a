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

    def read():
        rows = {}
        for tr in driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr"):
            rows[tr.get_attribute("data-node")] = int(
                tr.find_element(By.CSS_SELECTOR, "td.rows").text.replace(",", "")
            )
        return rows

    time.sleep(1.0)
    first = read()
    time.sleep(1.5)
    second = read()
    swaps = []
    if len(sys.argv) > 3:
        open(sys.argv[3], "w").close()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#swaps li:not(.none)")
        )
        swaps = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#swaps li")]
    labels = {}
    for text in driver.find_elements(By.CSS_SELECTOR, "#graph text"):
        spans = text.find_elements(By.TAG_NAME, "tspan")
        if len(spans) > 2:
            labels[spans[0].text] = spans[2].text
    versions = {
        tr.get_attribute("data-node"): tr.find_element(By.CSS_SELECTOR, "td.version").text
        for tr in driver.find_elements(By.CSS_SELECTOR, "#nodes tbody tr")
    }
    driver.save_screenshot(screenshot)
    print(json.dumps({
        "first": first,
        "second": second,
        "labels": labels,
        "versions": versions,
        "swaps": swaps,
        "status": driver.find_element(By.ID, "status").text,
        "checkpoint": driver.find_element(By.ID, "checkpoint").text,
        "title": driver.title,
    }))
finally:
    driver.quit()
