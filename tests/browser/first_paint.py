"""First paint of the board: navigation start to the cards drawn (the page's
`board-cards-drawn` mark), in headless Chromium, over 7 cold loads. Prints one line:
the median and the slowest, in milliseconds. Used by `cargo run --release --example bench
board`. Usage: python3 tests/browser/first_paint.py URL"""

import statistics
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

MARK = "return (performance.getEntriesByName('board-cards-drawn')[0] || {}).startTime"


def main():
    url = sys.argv[1]
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    samples = []
    try:
        for _ in range(7):
            driver.get("about:blank")
            driver.get(url)
            WebDriverWait(driver, 20, poll_frequency=0.05).until(lambda d: d.execute_script(MARK))
            cards = driver.execute_script("return document.querySelectorAll('article.card').length")
            if cards != 50:
                raise SystemExit(f"expected 50 cards, saw {cards}")
            samples.append(driver.execute_script(MARK))
    finally:
        driver.quit()
    print(f"median {statistics.median(samples):.0f} ms, slowest {max(samples):.0f} ms over {len(samples)} loads")


if __name__ == "__main__":
    main()
