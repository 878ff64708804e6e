"""api: the HTTPS read API — bars (JSON, CSV, Parquet), profiles, inventory, run status — with
the Redis/Upstash cache in front of the buckets (barlake.api). Private (IAM invoker) unless
Terraform opens it; optional X-API-Key on top (BARLAKE_API_KEYS). Imports stay light: the app
(pyarrow, the adapters, JSON logging) is built on the first request."""

from barlake.api.function import api

__all__ = ["api"]
