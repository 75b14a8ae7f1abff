"""``orderradar bench``: run the benchmark scripts under ``bench/`` and gather one report."""
