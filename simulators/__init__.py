"""A synthetic city: its districts, grid cells, devices and their signals, published over MQTT."""
