"""A local single-node Apache Kafka (KRaft) for development, demos and the test suite."""
