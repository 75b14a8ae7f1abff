"""Kafka plumbing: the batch source, producer outbox, changelog restore, commits, fencing and topic administration."""
