"""The worker's sinks: where a batch's outputs go, each with the encoder of its wire format.

``sink.py`` (the ``Sink`` protocol and a batch's one ``Fence``), ``influx.py`` (points, and
``influx-dlq`` for what InfluxDB did not take), ``topic.py`` (messages), ``changelog.py``
(the table and its value codec), ``line_protocol.py`` (InfluxDB's line protocol) and
``outbox.py`` (the fenced Kafka producer they send through).
"""
