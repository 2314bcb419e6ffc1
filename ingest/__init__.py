"""MQTT in, InfluxDB out: decoding, batching, durable writes and the dead-letter path."""
