"""Transaction events from Event Hubs (its Kafka endpoint) or a Kafka broker into the lake, fresh
online features and real-time scores: the connection (`connection`), the events' contract
(`events`) and the Spark Structured Streaming job's micro-batch (`job`).

Layer 11 of the package layers in docs/ARCHITECTURE.md: above `serving` (the risk bands) and
`monitoring`, below `pipelines`.
"""
