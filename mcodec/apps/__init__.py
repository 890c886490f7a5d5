"""The seed's other uses of the codec's masked autoencoder: `restore` (rebuild damaged or
unwanted regions) and `anomaly` (score what the model cannot predict from its context).
Both use the codec's fill-in (`mcodec.codec.fill`), not a second model."""
