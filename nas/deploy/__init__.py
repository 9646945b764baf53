"""From a trial to a verified ``.tflite``: export, verification in LiteRT, per-layer comparison."""
