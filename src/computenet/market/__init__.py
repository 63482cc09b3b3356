"""The compute market: compute units, measurement certificates (and, as they land, price
books, orders, the ledger and provider scorecards) as pure domain code."""
