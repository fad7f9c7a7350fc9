"""Benchmarks: emtrack against peer trackers, timings and scores."""
