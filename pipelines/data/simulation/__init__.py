"""The simulated world's parts, drawn by :func:`pipelines.data.generate.generate_world`.

- ``signals``: what the whole world shares, drawn once from one stream (calendar, weather, social
  trends, products, customers, warehouses).
- ``skus``: one chunk of SKUs over the whole window (prices, promotions, competitors, demand,
  inventory), from the chunk's own stream, as a :class:`~pipelines.data.simulation.skus.SkuChunk`.
- ``tables``: a chunk cut into contract rows (sales, orders, returns, tickets, clickstream...) and
  its ground truth.
- ``sink``: contract-typed row groups streamed into Parquet files.

The causal model's constants and formulas live in :mod:`pipelines.data.world`.
"""
