"""The notifier: delivers events to webhook destinations, at least once and in order per flag."""
