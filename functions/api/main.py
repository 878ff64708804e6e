"""api: the HTTPS read API — bars (JSON, CSV, Parquet), profiles, inventory, run status — with
the Redis/Upstash cache in front of the buckets (barlake.api). Private (IAM invoker) unless
Terraform opens it; optional X-API-Key on top (BARLAKE_API_KEYS)."""

from barlake import cloudfn
from barlake.api.function import api

cloudfn.configure_logging()

__all__ = ["api"]
