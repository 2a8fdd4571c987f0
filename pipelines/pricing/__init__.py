"""Pricing, the innovation stage's model family: competitor price monitoring, price elasticity and
dynamic pricing.

- :mod:`.site` serves the simulated world's rival shops on 127.0.0.1; :mod:`.crawl` crawls rival
  sites politely and reads image prices with Tesseract (:mod:`.ocr`); :mod:`.monitor` lands what it
  read as ``competitor_prices`` through the landing contract.
- :mod:`.dataset`, :mod:`.estimators`, :mod:`.evaluate` and :mod:`.family` estimate per-SKU own-price
  and cross (competitor) elasticities on the shared model layer (:mod:`pipelines.ml`).
- :mod:`.optimise` picks each SKU's next price from a ladder with SciPy's HiGHS solver;
  :mod:`.replay` measures pricing policies against the simulator's true demand.
"""
