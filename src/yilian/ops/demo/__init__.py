"""A realistic demo county for trying Yilian out and for benchmarks (``yilian demo``)."""
