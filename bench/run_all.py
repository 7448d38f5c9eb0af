"""Runs every benchmark in turn (`make bench`); each writes its figures to bench/results/."""

from __future__ import annotations

import sys

from bench import cold_start, ingestion_burst, serving_cost


def main() -> int:
    status = 0
    for benchmark in (serving_cost, ingestion_burst, cold_start):
        print(f"==> {benchmark.__name__}", flush=True)
        status |= benchmark.main([])
    return status


if __name__ == "__main__":
    sys.exit(main())
