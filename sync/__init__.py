"""Moving records upstream over MQTT, and the reference receiver on the customs side."""
